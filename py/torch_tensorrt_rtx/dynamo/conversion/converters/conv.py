"""Convolution: 1-D, 2-D and 3-D, forward and transposed, kernel and bias as network tensors.

Kernel and bias go in as network tensors (set_input 1/2), not as layer weights, so bf16 and
fp16 programs stay strongly typed without numpy support for bf16. A 1-D convolution runs as a
2-D one over a unit height (input, kernel and output reshaped around it). Transposed
convolutions are IDeconvolutionLayers; PyTorch's output_padding becomes a smaller post-padding
(the extra rows and columns at the end), which is how TensorRT grows a deconvolution's output.
"""
from __future__ import annotations

import tensorrt_rtx as trt
import torch

from torch_tensorrt_rtx.dynamo.conversion._context import node_dtype
from torch_tensorrt_rtx.dynamo.conversion._registry import Precision, converter
from torch_tensorrt_rtx.dynamo.conversion.converters._validators import all_of, float_tensors

aten = torch.ops.aten


def _conv_ok(node):
    args = node.args
    transposed = args[6] if len(args) > 6 else False
    weight = args[1].meta.get("val") if hasattr(args[1], "meta") else None
    # The kernel shape must be static (it is in every real model); the channel dim of the
    # input too, since TensorRT needs it at build time.
    x = args[0].meta.get("val")
    if weight is None or weight.dim() not in (3, 4, 5) or not all(isinstance(d, int) for d in weight.shape):
        return False
    if not isinstance(x.shape[1], int):
        return False
    if transposed:
        spatial = weight.dim() - 2
        padding, output_padding = _tuple(args[4], spatial), _tuple(args[7], spatial)
        return weight.dim() in (3, 4) and all(0 <= op <= p for op, p in zip(output_padding, padding))
    return True


def _tuple(value, n):
    value = list(value)
    return tuple(value * n if len(value) == 1 else value)


def _unit_height(ctx, t, axis=2):
    axes = ctx.constant(torch.tensor([axis], dtype=torch.int64))
    return ctx.name(ctx.network.add_unsqueeze(t, axes), "as_2d").get_output(0)


@converter(aten.convolution.default, validator=all_of(float_tensors, _conv_ok), precision=Precision.REDUCED)
def convolution(ctx, node, args, kwargs):
    x, weight, bias, stride, padding, dilation, transposed, output_padding, groups = args[:9]
    dtype = node_dtype(node)
    x = ctx.cast(x, dtype)
    kernel = ctx.as_tensor(weight, dtype)
    one_d = len(kernel.shape) == 3
    spatial = len(kernel.shape) - 2
    stride, padding, dilation = (_tuple(v, spatial) for v in (stride, padding, dilation))
    output_padding = _tuple(output_padding, spatial) if transposed else (0,) * spatial
    if one_d:  # (N, C, L) -> (N, C, 1, L), kernel (O, I, K) -> (O, I, 1, K)
        x, kernel = _unit_height(ctx, x), _unit_height(ctx, kernel)
        stride, dilation = (1,) + stride, (1,) + dilation
        padding, output_padding = (0,) + padding, (0,) + output_padding
    window = tuple(kernel.shape[2:])
    if transposed:
        maps = int(kernel.shape[1]) * int(groups)
        layer = ctx.network.add_deconvolution_nd(x, maps, window, trt.Weights(), trt.Weights())
        layer.pre_padding = padding
        layer.post_padding = tuple(p - op for p, op in zip(padding, output_padding))
    else:
        layer = ctx.network.add_convolution_nd(x, int(kernel.shape[0]), window, trt.Weights(), trt.Weights())
        layer.padding_nd = padding
    layer.set_input(1, kernel)
    if bias is not None:
        layer.set_input(2, ctx.as_tensor(bias, dtype))
    layer.stride_nd = stride
    layer.dilation_nd = dilation
    layer.num_groups = int(groups)
    out = ctx.name(layer, "deconv" if transposed else "conv").get_output(0)
    if one_d:
        axes = ctx.constant(torch.tensor([2], dtype=torch.int64))
        out = ctx.name(ctx.network.add_squeeze(out, axes), "as_1d").get_output(0)
    return out
