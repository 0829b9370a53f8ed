"""grid_sampler_2d (F.grid_sample on 4-D input) as one IGridSampleLayer.

TensorRT-RTX's layer follows ONNX GridSample, whose definition is torch's (NVIDIA's operator
page gives a worked example; ONNX-TensorRT maps ONNX's modes the same way as below):

    torch mode      0 bilinear -> InterpolationMode.LINEAR    1 nearest -> NEAREST
    torch padding   0 zeros    -> SampleMode.FILL              1 border  -> CLAMP    2 reflection -> REFLECT
    align_corners   the same flag

Bicubic (mode 2) stays in PyTorch: torch pads each of its 16 taps and uses a = -0.75, and
nothing we can check here says TensorRT-RTX's CUBIC does the same.
"""
from __future__ import annotations

import tensorrt_rtx as trt
import torch

from torch_tensorrt_rtx.dynamo.conversion._context import node_dtype
from torch_tensorrt_rtx.dynamo.conversion._registry import converter
from torch_tensorrt_rtx.dynamo.conversion.converters._validators import float_tensors

aten = torch.ops.aten

INTERPOLATION = {0: trt.InterpolationMode.LINEAR, 1: trt.InterpolationMode.NEAREST}
PADDING = {0: trt.SampleMode.FILL, 1: trt.SampleMode.CLAMP, 2: trt.SampleMode.REFLECT}


def _grid_sample_ok(node):
    x, grid = (a.meta.get("val") for a in node.args[:2])
    mode, padding = node.args[2], node.args[3]
    return (float_tensors(node) and x.dim() == 4 and grid.dim() == 4 and x.dtype == grid.dtype
            and mode in INTERPOLATION and padding in PADDING)


@converter(aten.grid_sampler_2d.default, validator=_grid_sample_ok)
def grid_sampler_2d(ctx, node, args, kwargs):
    x, grid, mode, padding, align_corners = args[:5]
    dtype = node_dtype(node)
    layer = ctx.network.add_grid_sample(ctx.cast(x, dtype), ctx.cast(grid, dtype))
    layer.interpolation_mode = INTERPOLATION[mode]
    layer.sample_mode = PADDING[padding]
    layer.align_corners = bool(align_corners)
    return ctx.name(layer, "grid_sample").get_output(0)
