"""fmod, remainder (Python's %) and rounded division, for integer and floating-point tensors.

    torch.fmod(a, b)      = a - b * trunc(a / b)   (sign of a)
    torch.remainder(a, b) = a - b * floor(a / b)   (sign of b)
    torch.div(a, b, rounding_mode="floor" / "trunc") = floor(a / b) / trunc(a / b)

TensorRT-RTX has no modulo layer; both are composed from DIV / FLOOR_DIV, PROD and SUB. On
integers DIV truncates and FLOOR_DIV floors, which is exactly what each op needs. On floats the
quotient is rounded with FLOOR (and SIGN·FLOOR(|q|) for the truncation), computed in fp32 even
for fp16 tensors: a quotient rounded to fp16 first would be off by one for large ratios.
torchvision's `roll` (Swin's shifted windows) lowers to `index_select(x, d, fmod(arange + s, n))`.
"""
from __future__ import annotations

import tensorrt_rtx as trt
import torch

from torch_tensorrt_rtx.dynamo.conversion._context import FLOAT_DTYPES, node_dtype
from torch_tensorrt_rtx.dynamo.conversion._registry import converter
from torch_tensorrt_rtx.dynamo.conversion.converters._validators import all_of, numeric_tensors
from torch_tensorrt_rtx.dynamo.conversion.converters.elementwise import elementwise_tensors
from torch_tensorrt_rtx.dynamo.conversion.converters.unary import unary_tensor

aten = torch.ops.aten
Op = trt.ElementWiseOperation
U = trt.UnaryOperation

_FMOD = {aten.fmod.Scalar, aten.fmod.Tensor}
_REMAINDER = {aten.remainder.Scalar, aten.remainder.Tensor}


def _dtype_ok(node):
    val = node.meta.get("val")
    return isinstance(val, torch.Tensor) and val.dtype in FLOAT_DTYPES + (torch.int32, torch.int64)


def _quotient(ctx, a, b, dtype, floor: bool):
    """The rounded quotient a/b: floored (remainder) or truncated toward zero (fmod)."""
    if dtype not in FLOAT_DTYPES:
        return elementwise_tensors(ctx, a, b, Op.FLOOR_DIV if floor else Op.DIV, dtype)
    q = elementwise_tensors(ctx, a, b, Op.DIV, dtype)
    if floor:
        return unary_tensor(ctx, q, U.FLOOR)
    magnitude = unary_tensor(ctx, unary_tensor(ctx, q, U.ABS), U.FLOOR)
    return elementwise_tensors(ctx, unary_tensor(ctx, q, U.SIGN), magnitude, Op.PROD, dtype)


@converter(*_FMOD, *_REMAINDER, validator=all_of(numeric_tensors, _dtype_ok))
def modulo(ctx, node, args, kwargs):
    a, b, compute = _operands(ctx, node, args)
    q = _quotient(ctx, a, b, compute, floor=node.target in _REMAINDER)
    out = elementwise_tensors(ctx, a, elementwise_tensors(ctx, b, q, Op.PROD, compute), Op.SUB, compute)
    return ctx.cast(out, node_dtype(node))


def _operands(ctx, node, args):
    """Both operands as tensors of the node's rank in the compute dtype (fp32 for any float)."""
    compute = torch.float32 if node_dtype(node) in FLOAT_DTYPES else node_dtype(node)
    rank = node.meta["val"].dim()
    return ctx.as_tensor(args[0], compute, rank), ctx.as_tensor(args[1], compute, rank), compute


def _rounding_mode(node):
    return node.kwargs.get("rounding_mode", node.args[2] if len(node.args) > 2 else None)


@converter(aten.div.Tensor_mode, aten.div.Scalar_mode,
           validator=all_of(numeric_tensors, _dtype_ok, lambda n: _rounding_mode(n) in ("floor", "trunc")))
def rounded_div(ctx, node, args, kwargs):
    """torch.div(a, b, rounding_mode=...): EdgeNeXt's Fourier position encoding, index math."""
    a, b, compute = _operands(ctx, node, args)
    return ctx.cast(_quotient(ctx, a, b, compute, floor=_rounding_mode(node) == "floor"), node_dtype(node))
