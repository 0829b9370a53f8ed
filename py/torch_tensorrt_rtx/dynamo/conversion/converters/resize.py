"""Upsampling (F.interpolate / nn.Upsample): nearest and bilinear 2-D, from scale factors or an
output size, as one IResizeLayer.

torch's "nearest" maps output pixel i to floor(i / scale) (ASYMMETRIC coordinates, FLOOR rounding);
bilinear uses half-pixel centres (or aligned corners). Scale factors go to the layer as scales so a
dynamic batch stays dynamic; an explicit output size becomes a shape tensor with the runtime batch
and channel dims.
"""
from __future__ import annotations

import tensorrt_rtx as trt
import torch

from torch_tensorrt_rtx.dynamo.conversion._registry import Precision, converter
from torch_tensorrt_rtx.dynamo.conversion.converters._layers import dims
from torch_tensorrt_rtx.dynamo.conversion.converters._validators import all_of, float_tensors

aten = torch.ops.aten
_NEAREST = (aten.upsample_nearest2d.vec, aten.upsample_nearest2d.default)
_BILINEAR = (aten.upsample_bilinear2d.vec, aten.upsample_bilinear2d.default)


def _parse(node_target, args, kwargs):
    """(output_size or None, scales or None, align_corners) for every supported overload."""
    if node_target == aten.upsample_nearest2d.vec:
        return args[1], args[2] if len(args) > 2 else kwargs.get("scale_factors"), False
    if node_target == aten.upsample_bilinear2d.vec:
        return args[1], args[3] if len(args) > 3 else kwargs.get("scale_factors"), bool(args[2])
    if node_target == aten.upsample_nearest2d.default:
        rest = list(args[2:4]) + [None] * 2
        scales = None if rest[0] is None or rest[1] is None else [rest[0], rest[1]]
        return args[1], scales, False
    rest = list(args[3:5]) + [None] * 2
    scales = None if rest[0] is None or rest[1] is None else [rest[0], rest[1]]
    return args[1], scales, bool(args[2])


def _resize_ok(node):
    x = node.args[0].meta["val"]
    if x.dim() != 4:
        return False
    size, scales, _ = _parse(node.target, node.args, node.kwargs)
    if scales is None:
        # Without scales the output size must be static and the input's spatial dims too (torch
        # then maps coordinates with in/out, which is what a fixed output shape gives TensorRT).
        return size is not None and all(isinstance(s, int) for s in size) and all(
            isinstance(d, int) for d in x.shape[2:])
    return True


_upsample_ok = all_of(float_tensors, _resize_ok)


@converter(aten.upsample_nearest2d.vec, aten.upsample_bilinear2d.vec, validator=_upsample_ok,
           precision=Precision.FOLLOW)
@converter(aten.upsample_nearest2d.default, aten.upsample_bilinear2d.default, validator=_upsample_ok)
def upsample(ctx, node, args, kwargs):
    x = args[0]
    size, scales, align_corners = _parse(node.target, args, kwargs)
    layer = ctx.network.add_resize(x)
    if node.target in _NEAREST:
        layer.resize_mode = trt.InterpolationMode.NEAREST
        layer.coordinate_transformation = trt.ResizeCoordinateTransformation.ASYMMETRIC
        layer.nearest_rounding = trt.ResizeRoundMode.FLOOR
    else:
        layer.resize_mode = trt.InterpolationMode.LINEAR
        layer.coordinate_transformation = (trt.ResizeCoordinateTransformation.ALIGN_CORNERS if align_corners
                                           else trt.ResizeCoordinateTransformation.HALF_PIXEL)
    if scales is not None:
        layer.scales = [1.0, 1.0] + [float(s) for s in scales]
    else:
        batch, channels = dims(ctx, x)[:2]
        target = [batch, channels] + [int(s) for s in size]
        if all(isinstance(p, int) for p in target):
            layer.shape = tuple(target)
        else:
            layer.set_input(1, ctx.shape_tensor(target))
    return ctx.name(layer, "resize").get_output(0)
