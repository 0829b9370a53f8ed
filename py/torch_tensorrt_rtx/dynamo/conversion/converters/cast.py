"""Dtype casts (`tensor.to(dtype)` after lowering: aten._to_copy with only a dtype change)."""
from __future__ import annotations

import torch

from torch_tensorrt_rtx.dynamo.conversion._context import SUPPORTED_DTYPES, node_dtype
from torch_tensorrt_rtx.dynamo.conversion._registry import converter
from torch_tensorrt_rtx.dynamo.conversion.converters._validators import dtypes_in

aten = torch.ops.aten


def _to_copy_ok(node):
    supported = dtypes_in(node, SUPPORTED_DTYPES)
    if not supported:
        return supported  # the Refusal names the dtype
    src = node.args[0].meta.get("val")
    device = node.kwargs.get("device")
    if device is not None and src is not None and torch.device(device) != src.device:
        return False  # a device move is not a dtype cast
    if node.kwargs.get("layout") not in (None, torch.strided):
        return False
    return node.kwargs.get("memory_format") in (None, torch.preserve_format, torch.contiguous_format)


@converter(aten._to_copy.default, validator=_to_copy_ok)
def to_copy(ctx, node, args, kwargs):
    out = ctx.cast(args[0], node_dtype(node))
    if out is args[0]:
        out = ctx.name(ctx.network.add_identity(out), "identity").get_output(0)
    return out


@converter(torch.ops.prims.convert_element_type.default, validator=lambda n: dtypes_in(n, SUPPORTED_DTYPES))
def convert_element_type(ctx, node, args, kwargs):
    return to_copy(ctx, node, args, kwargs)
