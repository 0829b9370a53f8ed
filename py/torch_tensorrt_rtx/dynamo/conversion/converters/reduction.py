"""Reductions (mean/sum/amax over dims) and softmax."""
from __future__ import annotations

import tensorrt_rtx as trt
import torch

from torch_tensorrt_rtx.dynamo.conversion._context import normalize_axis, node_dtype
from torch_tensorrt_rtx.dynamo.conversion._registry import converter
from torch_tensorrt_rtx.dynamo.conversion.converters._validators import all_of, float_tensors

aten = torch.ops.aten
_REDUCE = {aten.mean.dim: trt.ReduceOperation.AVG, aten.sum.dim_IntList: trt.ReduceOperation.SUM,
           aten.amax.default: trt.ReduceOperation.MAX}


def _axes_mask(dims, rank):
    dims = [dims] if isinstance(dims, int) else list(dims or range(rank))
    mask = 0
    for d in dims:
        mask |= 1 << normalize_axis(d, rank)
    return mask


def _reduce_ok(node):
    return node.kwargs.get("dtype") is None and (len(node.args) < 4 or node.args[3] is None)


@converter(*_REDUCE, validator=all_of(float_tensors, _reduce_ok))
def reduce(ctx, node, args, kwargs):
    x = args[0]
    rank = len(x.shape)
    dims = args[1] if len(args) > 1 else kwargs.get("dim")
    keepdim = bool(args[2] if len(args) > 2 else kwargs.get("keepdim", False))
    layer = ctx.network.add_reduce(x, _REDUCE[node.target], _axes_mask(dims, rank), keepdim)
    return ctx.name(layer, "reduce").get_output(0)


def _softmax_ok(node):
    if node.target == aten._softmax.default:
        return not node.args[2]  # half_to_float
    return len(node.args) < 3 or node.args[2] is None


@converter(aten._softmax.default, aten.softmax.int, validator=all_of(float_tensors, _softmax_ok))
def softmax(ctx, node, args, kwargs):
    x = ctx.cast(args[0], node_dtype(node))
    layer = ctx.network.add_softmax(x)
    layer.axes = 1 << normalize_axis(args[1], len(x.shape))
    return ctx.name(layer, "softmax").get_output(0)
