"""Pooling: max_pool2d (values only), avg_pool2d, adaptive_avg_pool2d when the output divides the input.

adaptive_avg_pool2d whose output does not divide the (static) input (VGG, AlexNet at small
sizes: 1x1 -> 7x7) is two matrix products with constant averaging matrices, rows then columns:
row i of the [out, in] matrix averages torch's window floor(i*in/out) .. ceil((i+1)*in/out).

max_pool2d with ceil_mode (GoogLeNet, SqueezeNet) reads windows that hang past the input; torch
never starts a window in the right padding. The input is padded explicitly with -inf (ISliceLayer,
FILL) to exactly the windows PyTorch reads and max-pooled without padding; this needs the static
spatial size.

avg_pool2d in floor mode with the default divisor is one IPoolingLayer. With ceil_mode or a
divisor_override, PyTorch's divisor varies at the borders (windows that hang past the input
count only what torch counts); TensorRT's rules for such windows are not what PyTorch does, so
the input is padded explicitly (ISliceLayer, FILL with 0) to exactly the windows PyTorch reads,
pooled without padding (sum / window area), and rescaled by a constant per-position factor
window area / torch's divisor, computed on the host from the static spatial size.
"""
from __future__ import annotations

import operator

import tensorrt_rtx as trt
import torch

from torch_tensorrt_rtx.dynamo.conversion._context import node_dtype
from torch_tensorrt_rtx.dynamo.conversion._registry import Precision, converter
from torch_tensorrt_rtx.dynamo.conversion.converters import _layers
from torch_tensorrt_rtx.dynamo.conversion.converters._validators import all_of, float_tensors
from torch_tensorrt_rtx.dynamo.conversion.converters.elementwise import elementwise_tensors
from torch_tensorrt_rtx.dynamo.conversion.converters.linear import matmul_tensors

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
    x = node.args[0].meta["val"]
    if dilation != (1, 1) or x.dim() != 4:
        return False
    if ceil_mode and not all(isinstance(d, int) for d in list(x.shape[2:]) + list(node_output(node).shape[2:])):
        return False
    if node.target == aten.max_pool2d_with_indices.default:
        # Only the values output is produced by TensorRT; indices consumers stay in PyTorch.
        return all(u.target is operator.getitem and u.args[1] == 0 for u in node.users)
    return True


@converter(aten.max_pool2d_with_indices.default, aten.max_pool2d.default,
           validator=all_of(float_tensors, _max_pool_ok), precision=Precision.FOLLOW)
def max_pool2d(ctx, node, args, kwargs):
    kernel, stride, padding, _, ceil_mode = _max_pool_args(node)
    x = args[0]
    if ceil_mode:
        x = _pad_to_windows(ctx, x, node_output(node), kernel, stride, padding, float("-inf"))
        padding = (0, 0)
    layer = ctx.network.add_pooling_nd(x, trt.PoolingType.MAX, kernel)
    layer.stride_nd = stride
    layer.padding_nd = padding
    out = ctx.name(layer, "max_pool").get_output(0)
    if node.target == aten.max_pool2d_with_indices.default:
        return (out, None)
    return out


def node_output(node) -> torch.Tensor:
    """The (first) output's FakeTensor: max_pool2d_with_indices has (values, indices)."""
    val = node.meta["val"]
    return val[0] if isinstance(val, (tuple, list)) else val


def _pad_to_windows(ctx, x, out, kernel, stride, padding, value):
    """x sliced (FILL with `value`) to exactly the rows/cols the `out`-sized output's windows read:
    from -padding to the end of the last window, so pooling needs no padding of its own."""
    read = [(int(o) - 1) * s + k for o, s, k in zip(out.shape[2:], stride, kernel)]
    start = [0, 0] + [-p for p in padding]
    fill = ctx.constant(torch.tensor(value, dtype=out.dtype))
    return _layers.slice_tensor(ctx, x, start, _layers.dims(ctx, x)[:2] + read, [1] * 4,
                                mode=trt.SampleMode.FILL, fill=fill)


def _adaptive_ok(node):
    x = node.args[0].meta["val"]
    out = _pair(node.args[1])
    if x.dim() != 4 or not all(isinstance(d, int) for d in x.shape[2:]):
        return False
    return all(isinstance(o, int) and o > 0 for o in out)


def _averaging_matrix(size: int, out: int) -> torch.Tensor:
    """[out, size]: row i averages torch's adaptive window floor(i*size/out) .. ceil((i+1)*size/out)."""
    matrix = torch.zeros(out, size, dtype=torch.float64)
    for i in range(out):
        start, end = (i * size) // out, -((-(i + 1) * size) // out)
        matrix[i, start:end] = 1.0 / (end - start)
    return matrix


@converter(aten._adaptive_avg_pool2d.default, aten.adaptive_avg_pool2d.default,
           validator=all_of(float_tensors, _adaptive_ok))
def adaptive_avg_pool2d(ctx, node, args, kwargs):
    x = args[0]
    out = _pair(args[1])
    if any(h % o for h, o in zip(x.shape[2:], out)):
        dtype = node_dtype(node)
        rows, cols = (ctx.constant(_averaging_matrix(h, o), dtype) for h, o in zip(x.shape[2:], out))
        return matmul_tensors(ctx, matmul_tensors(ctx, rows, x, dtype), cols, dtype, transpose_b=True)
    window = tuple(h // o for h, o in zip(x.shape[2:], out))
    layer = ctx.network.add_pooling_nd(x, trt.PoolingType.AVERAGE, window)
    layer.stride_nd = window
    return ctx.name(layer, "adaptive_avg_pool").get_output(0)


def _avg_args(args, kwargs):
    args = list(args) + [None] * (7 - len(args))
    kernel = tuple(int(v) for v in _pair(args[1]))
    stride = tuple(int(v) for v in _pair(args[2])) if args[2] else kernel
    padding = tuple(int(v) for v in _pair(args[3])) if args[3] is not None else (0, 0)
    ceil_mode = bool(args[4] if args[4] is not None else kwargs.get("ceil_mode", False))
    include_pad = args[5] if args[5] is not None else kwargs.get("count_include_pad", True)
    divisor = args[6] if args[6] is not None else kwargs.get("divisor_override")
    return kernel, stride, padding, ceil_mode, bool(include_pad), divisor


def _avg_pool_ok(node):
    x = node.args[0].meta["val"]
    _, _, _, ceil_mode, _, divisor = _avg_args(node.args, node.kwargs)
    if x.dim() != 4:
        return False
    if ceil_mode or divisor is not None:  # the divisor map is built from the static spatial size
        return all(isinstance(d, int) for d in x.shape[2:])
    return True


def _divisors(size, out, kernel, stride, pad, include_pad):
    """torch's averaging divisor along one spatial dim, for each output position."""
    result = []
    for i in range(out):
        start = i * stride - pad
        end = min(start + kernel, size + pad)
        count = end - start if include_pad else min(end, size) - max(start, 0)
        result.append(count)
    return torch.tensor(result, dtype=torch.float64)


@converter(aten.avg_pool2d.default, validator=all_of(float_tensors, _avg_pool_ok))
def avg_pool2d(ctx, node, args, kwargs):
    kernel, stride, padding, ceil_mode, include_pad, divisor = _avg_args(args, kwargs)
    x = args[0]
    if not ceil_mode and divisor is None:
        layer = ctx.network.add_pooling_nd(x, trt.PoolingType.AVERAGE, kernel)
        layer.stride_nd = stride
        layer.padding_nd = padding
        layer.average_count_excludes_padding = not include_pad
        return ctx.name(layer, "avg_pool").get_output(0)
    dtype = node_dtype(node)
    out_hw = [int(d) for d in node.meta["val"].shape[2:]]
    spatial = [int(d) for d in x.shape[2:]]
    padded = _pad_to_windows(ctx, x, node.meta["val"], kernel, stride, padding, 0)
    layer = ctx.network.add_pooling_nd(padded, trt.PoolingType.AVERAGE, kernel)
    layer.stride_nd = stride
    pooled = ctx.name(layer, "avg_pool").get_output(0)
    if divisor is not None:
        counts = torch.full(out_hw, float(divisor), dtype=torch.float64)
    else:
        rows, cols = (_divisors(n, o, k, s, p, include_pad)
                      for n, o, k, s, p in zip(spatial, out_hw, kernel, stride, padding))
        counts = rows[:, None] * cols[None, :]
    factor = (kernel[0] * kernel[1] / counts).reshape(1, 1, *out_hw)
    return elementwise_tensors(ctx, pooled, ctx.constant(factor, torch.float32), trt.ElementWiseOperation.PROD,
                               dtype)
