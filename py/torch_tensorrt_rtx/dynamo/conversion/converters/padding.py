"""constant_pad_nd (F.pad with mode="constant"): an ISliceLayer in FILL mode that starts at
-pad_before and reads pad_before + size + pad_after elements; negative pads crop."""
from __future__ import annotations

import tensorrt_rtx as trt
import torch

from torch_tensorrt_rtx.dynamo.conversion._context import node_dtype
from torch_tensorrt_rtx.dynamo.conversion._registry import Precision, converter
from torch_tensorrt_rtx.dynamo.conversion.converters._layers import dims, shape_math, slice_tensor
from torch_tensorrt_rtx.dynamo.conversion.converters._validators import numeric_tensors

aten = torch.ops.aten
Op = trt.ElementWiseOperation


def _pad_ok(node):
    pads = node.args[1]
    return numeric_tensors(node) and all(isinstance(p, int) for p in pads) and len(pads) % 2 == 0


@converter(aten.constant_pad_nd.default, validator=_pad_ok, precision=Precision.FOLLOW)
def constant_pad_nd(ctx, node, args, kwargs):
    x, pads = args[0], list(args[1])
    value = args[2] if len(args) > 2 else kwargs.get("value", 0)
    rank = len(x.shape)
    start, size = [0] * rank, dims(ctx, x)
    for i in range(len(pads) // 2):
        axis = rank - 1 - i
        before, after = pads[2 * i], pads[2 * i + 1]
        start[axis] = -before
        size[axis] = shape_math(ctx, size[axis], before + after, Op.SUM)
    fill = ctx.constant(torch.tensor(value, dtype=node_dtype(node)))
    return slice_tensor(ctx, x, start, size, [1] * rank, mode=trt.SampleMode.FILL, fill=fill)
