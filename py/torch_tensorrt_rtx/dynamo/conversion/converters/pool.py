"""Pooling: max_pool2d (values only), adaptive_avg_pool2d when the output divides the input."""
from __future__ import annotations

import operator

import tensorrt_rtx as trt
import torch

from torch_tensorrt_rtx.dynamo.conversion._registry import converter
from torch_tensorrt_rtx.dynamo.conversion.converters._validators import all_of, float_tensors

aten = torch.ops.aten


def _pair(value):
    value = list(value) if isinstance(value, (list, tuple)) else [value]
    return tuple(value * 2 if len(value) == 1 else value)


def _max_pool_args(node):
    args = list(node.args) + [None] * 6
    kernel = _pair(args[1])
    stride = _pair(args[2]) if args[2] else kernel
    padding = _pair(args[3]) if args[3] is not None else (0, 0)
    dilation = _pair(args[4]) if args[4] is not None else (1, 1)
    ceil_mode = bool(node.kwargs.get("ceil_mode", args[5] or False))
    return kernel, stride, padding, dilation, ceil_mode


def _max_pool_ok(node):
    _, _, _, dilation, ceil_mode = _max_pool_args(node)
    if dilation != (1, 1) or ceil_mode or node.args[0].meta["val"].dim() != 4:
        return False
    if node.target == aten.max_pool2d_with_indices.default:
        # Only the values output is produced by TensorRT; indices consumers stay in PyTorch.
        return all(u.target is operator.getitem and u.args[1] == 0 for u in node.users)
    return True


@converter(aten.max_pool2d_with_indices.default, aten.max_pool2d.default,
           validator=all_of(float_tensors, _max_pool_ok))
def max_pool2d(ctx, node, args, kwargs):
    kernel, stride, padding, _, _ = _max_pool_args(node)
    layer = ctx.network.add_pooling_nd(args[0], trt.PoolingType.MAX, kernel)
    layer.stride_nd = stride
    layer.padding_nd = padding
    out = ctx.name(layer, "max_pool").get_output(0)
    if node.target == aten.max_pool2d_with_indices.default:
        return (out, None)
    return out


def _adaptive_ok(node):
    x = node.args[0].meta["val"]
    out = _pair(node.args[1])
    if x.dim() != 4 or not all(isinstance(d, int) for d in x.shape[2:]):
        return False
    return all(o > 0 and h % o == 0 for h, o in zip(x.shape[2:], out))


@converter(aten._adaptive_avg_pool2d.default, aten.adaptive_avg_pool2d.default,
           validator=all_of(float_tensors, _adaptive_ok))
def adaptive_avg_pool2d(ctx, node, args, kwargs):
    x = args[0]
    out = _pair(args[1])
    window = tuple(h // o for h, o in zip(x.shape[2:], out))
    layer = ctx.network.add_pooling_nd(x, trt.PoolingType.AVERAGE, window)
    layer.stride_nd = window
    return ctx.name(layer, "adaptive_avg_pool").get_output(0)
