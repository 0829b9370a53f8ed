"""Convolution (2-D and 3-D forward; 1-D and transposed stay in PyTorch for now) with the kernel and bias as tensors.

Kernel and bias go in as network tensors (set_input 1/2), not as layer weights, so bf16 and
fp16 programs stay strongly typed without numpy support for bf16.
"""
from __future__ import annotations

import tensorrt_rtx as trt
import torch

from torch_tensorrt_rtx.dynamo.conversion._context import node_dtype
from torch_tensorrt_rtx.dynamo.conversion._registry import converter
from torch_tensorrt_rtx.dynamo.conversion.converters._validators import all_of, float_tensors

aten = torch.ops.aten


def _conv_ok(node):
    args = node.args
    transposed = args[6] if len(args) > 6 else False
    weight = args[1].meta.get("val") if hasattr(args[1], "meta") else None
    # The kernel shape must be static (it is in every real model); the channel dim of the
    # input too, since TensorRT needs it at build time.
    x = args[0].meta.get("val")
    return (not transposed and weight is not None and weight.dim() in (4, 5)
            and all(isinstance(d, int) for d in weight.shape) and isinstance(x.shape[1], int))


def _tuple(value, n):
    value = list(value)
    return tuple(value * n if len(value) == 1 else value)


@converter(aten.convolution.default, validator=all_of(float_tensors, _conv_ok))
def convolution(ctx, node, args, kwargs):
    x, weight, bias, stride, padding, dilation, _transposed, _output_padding, groups = args[:9]
    dtype = node_dtype(node)
    x = ctx.cast(x, dtype)
    spatial = len(weight.shape) - 2
    kernel = ctx.as_tensor(weight, dtype)
    layer = ctx.network.add_convolution_nd(x, int(weight.shape[0]), tuple(weight.shape[2:]), trt.Weights(), trt.Weights())
    layer.set_input(1, kernel)
    if bias is not None:
        layer.set_input(2, ctx.as_tensor(bias, dtype))
    layer.stride_nd = _tuple(stride, spatial)
    layer.padding_nd = _tuple(padding, spatial)
    layer.dilation_nd = _tuple(dilation, spatial)
    layer.num_groups = int(groups)
    return ctx.name(layer, "conv").get_output(0)
