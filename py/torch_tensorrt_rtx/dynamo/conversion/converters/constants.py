"""Tensor factories whose size is only known at run time: arange/full/zeros/ones with symbolic
sizes, full_like/zeros_like/ones_like/empty_like/new_* of a network tensor, and tril/triu.

With all-static arguments these ops never reach a converter: the interpreter folds them on the
host. When a size is symbolic it arrives as a shape tensor and the value is built in the engine
(IFillLayer for ramps, a stride-0 ISliceLayer to broadcast a scalar).
"""
from __future__ import annotations

import tensorrt_rtx as trt
import torch
from torch.fx import Node

from torch_tensorrt_rtx.dynamo.conversion._context import SUPPORTED_DTYPES, node_dtype
from torch_tensorrt_rtx.dynamo.conversion._registry import Refusal, converter
from torch_tensorrt_rtx.dynamo.conversion.converters._layers import dims, fill_like, ramp, shape_math
from torch_tensorrt_rtx.dynamo.conversion.converters._validators import numeric_tensors
from torch_tensorrt_rtx.dynamo.conversion.converters.comparison import select_tensors
from torch_tensorrt_rtx.dynamo.conversion.converters.symbolic import is_sym_int

aten = torch.ops.aten
Op = trt.ElementWiseOperation


def _output_dtype_ok(node):
    val = node.meta.get("val")
    if isinstance(val, torch.Tensor) and val.dtype not in SUPPORTED_DTYPES:
        return Refusal(f"creates a {val.dtype} tensor: TensorRT-RTX has no such type")
    return isinstance(val, torch.Tensor)


def _arange_ok(node):
    bounds = [a for a in node.args if isinstance(a, Node)]
    dtype_ok = _output_dtype_ok(node)
    if not dtype_ok:
        return dtype_ok
    return (node_dtype(node) in (torch.int32, torch.int64, torch.float32)
            and all(is_sym_int(a) for a in bounds)
            and all(isinstance(a, int) for a in node.args if not isinstance(a, Node)))


@converter(aten.arange.default, aten.arange.start, aten.arange.start_step, validator=_arange_ok)
def arange(ctx, node, args, kwargs):
    if node.target == aten.arange.default:
        start, end, step = 0, args[0], 1
    else:
        start, end = args[0], args[1]
        step = args[2] if len(args) > 2 else 1
    if step == 0:
        raise ValueError("arange with step 0")
    # ceil(|end - start| / |step|) elements, or none when the range runs the other way
    distance = shape_math(ctx, end, start, Op.SUB) if step > 0 else shape_math(ctx, start, end, Op.SUB)
    span = shape_math(ctx, distance, abs(step) - 1, Op.SUM)
    length = shape_math(ctx, shape_math(ctx, span, abs(step), Op.FLOOR_DIV), 0, Op.MAX)
    return ramp(ctx, length, node_dtype(node), start, step)


def _sizes_ok(node, index):
    sizes = node.args[index]
    dtype_ok = _output_dtype_ok(node)
    if not dtype_ok:
        return dtype_ok
    return all(isinstance(s, int) or is_sym_int(s) for s in sizes)


@converter(aten.full.default, validator=lambda n: _sizes_ok(n, 0))
def full(ctx, node, args, kwargs):
    return fill_like(ctx, args[1], node_dtype(node), list(args[0]))


_FILL_VALUE = {aten.zeros.default: 0, aten.ones.default: 1, aten.empty.memory_format: 0}


@converter(*_FILL_VALUE, validator=lambda n: _sizes_ok(n, 0))
def zeros_ones(ctx, node, args, kwargs):
    return fill_like(ctx, _FILL_VALUE[node.target], node_dtype(node), list(args[0]))


_LIKE_VALUE = {aten.zeros_like.default: 0, aten.ones_like.default: 1, aten.empty_like.default: 0}


@converter(aten.full_like.default, *_LIKE_VALUE, validator=_output_dtype_ok)
def full_like(ctx, node, args, kwargs):
    value = args[1] if node.target == aten.full_like.default else _LIKE_VALUE[node.target]
    return fill_like(ctx, value, node_dtype(node), dims(ctx, args[0]))


_NEW_VALUE = {aten.new_zeros.default: 0, aten.new_ones.default: 1, aten.new_empty.default: 0}


@converter(aten.new_full.default, *_NEW_VALUE, validator=lambda n: _sizes_ok(n, 1))
def new_full(ctx, node, args, kwargs):
    value = args[2] if node.target == aten.new_full.default else _NEW_VALUE[node.target]
    return fill_like(ctx, value, node_dtype(node), list(args[1]))


def _triangle_ok(node):
    return numeric_tensors(node) and node.args[0].meta["val"].dim() >= 2


@converter(aten.tril.default, aten.triu.default, validator=_triangle_ok)
def triangle(ctx, node, args, kwargs):
    x = args[0]
    diagonal = int(args[1]) if len(args) > 1 else int(kwargs.get("diagonal", 0))
    rows_n, cols_n = dims(ctx, x)[-2:]
    rows = ctx.reshape(ramp(ctx, rows_n), [rows_n, 1])
    cols = ctx.reshape(ramp(ctx, cols_n), [1, cols_n])
    offset = ctx.name(ctx.network.add_elementwise(cols, rows, Op.SUB), "col_minus_row").get_output(0)
    bound = ctx.constant(torch.tensor([[diagonal]], dtype=torch.int64))
    if node.target == aten.tril.default:  # keep col - row <= diagonal
        drop = ctx.network.add_elementwise(offset, bound, Op.GREATER)
    else:  # keep col - row >= diagonal
        drop = ctx.network.add_elementwise(offset, bound, Op.LESS)
    drop = ctx.name(drop, "triangle_mask").get_output(0)
    dtype = node_dtype(node)
    return select_tensors(ctx, drop, 0, x, dtype)
