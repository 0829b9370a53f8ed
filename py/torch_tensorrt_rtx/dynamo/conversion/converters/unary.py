"""Unary math and clamping: exp/log/sqrt/rsqrt/abs/neg/reciprocal/sin/cos/erf/floor/ceil/sign/round,
pow, clamp/hardtanh (elementwise MAX/MIN, so integer tensors work too), leaky_relu."""
from __future__ import annotations

import tensorrt_rtx as trt
import torch

from torch_tensorrt_rtx.dynamo.conversion._context import FLOAT_DTYPES, node_dtype
from torch_tensorrt_rtx.dynamo.conversion._registry import Precision, converter
from torch_tensorrt_rtx.dynamo.conversion.converters._validators import (float_tensors, numeric_tensors,
                                                                           output_is_float)
from torch_tensorrt_rtx.dynamo.conversion.converters.elementwise import elementwise_tensors

aten = torch.ops.aten
U = trt.UnaryOperation
Op = trt.ElementWiseOperation

_FLOAT_UNARY = {
    aten.exp.default: U.EXP, aten.log.default: U.LOG, aten.sqrt.default: U.SQRT,
    aten.reciprocal.default: U.RECIP, aten.sin.default: U.SIN, aten.cos.default: U.COS,
    aten.erf.default: U.ERF, aten.floor.default: U.FLOOR, aten.ceil.default: U.CEIL,
    aten.round.default: U.ROUND,
}
_SIGNED_UNARY = {aten.abs.default: U.ABS, aten.neg.default: U.NEG, aten.sign.default: U.SIGN}


def unary_tensor(ctx, x, op):
    return ctx.name(ctx.network.add_unary(x, op), op.name.lower()).get_output(0)


@converter(*_FLOAT_UNARY, validator=float_tensors)
def float_unary(ctx, node, args, kwargs):
    return unary_tensor(ctx, ctx.cast(args[0], node_dtype(node)), _FLOAT_UNARY[node.target])


def _signed_ok(node):
    # TensorRT's ABS/NEG/SIGN take float, int32 and int64; bool stays in PyTorch.
    return numeric_tensors(node) and node_dtype(node) != torch.bool


@converter(aten.abs.default, aten.neg.default, validator=_signed_ok, precision=Precision.FOLLOW)
@converter(aten.sign.default, validator=_signed_ok)
def signed_unary(ctx, node, args, kwargs):
    return unary_tensor(ctx, args[0], _SIGNED_UNARY[node.target])


@converter(aten.rsqrt.default, validator=float_tensors)
def rsqrt(ctx, node, args, kwargs):
    root = unary_tensor(ctx, ctx.cast(args[0], node_dtype(node)), U.SQRT)
    return unary_tensor(ctx, root, U.RECIP)


def _pow_ok(node):
    # A float result; an integer operand (Bloom's ALiBi slopes: float base ** int32 arange) is
    # cast to the result dtype, as torch's type promotion does.
    return output_is_float(node) and numeric_tensors(node)


@converter(aten.pow.Tensor_Scalar, aten.pow.Tensor_Tensor, aten.pow.Scalar, validator=_pow_ok)
def pow_(ctx, node, args, kwargs):
    base, exponent = args[0], args[1]
    dtype = node_dtype(node)
    if exponent == 2 and isinstance(base, trt.ITensor):  # x*x: exact where POW may not be
        base = ctx.cast(base, dtype)
        return elementwise_tensors(ctx, base, base, Op.PROD, dtype)
    return elementwise_tensors(ctx, base, exponent, Op.POW, dtype)


def _clamp_ok(node):
    dtype = node.meta["val"].dtype
    return numeric_tensors(node) and dtype in FLOAT_DTYPES + (torch.int32, torch.int64)


@converter(aten.clamp.default, aten.hardtanh.default, validator=_clamp_ok, precision=Precision.FOLLOW)
@converter(aten.clamp.Tensor, validator=_clamp_ok)
def clamp(ctx, node, args, kwargs):
    dtype = node_dtype(node)
    out = ctx.cast(args[0], dtype)
    if node.target == aten.hardtanh.default:
        lo = args[1] if len(args) > 1 else kwargs.get("min_val", -1.0)
        hi = args[2] if len(args) > 2 else kwargs.get("max_val", 1.0)
    else:
        lo = args[1] if len(args) > 1 else kwargs.get("min")
        hi = args[2] if len(args) > 2 else kwargs.get("max")
    if lo is not None:
        out = elementwise_tensors(ctx, out, lo, Op.MAX, dtype)
    if hi is not None:
        out = elementwise_tensors(ctx, out, hi, Op.MIN, dtype)
    if lo is None and hi is None:
        out = ctx.name(ctx.network.add_identity(out), "identity").get_output(0)
    return out


@converter(aten.leaky_relu.default, validator=float_tensors, precision=Precision.FOLLOW)
def leaky_relu(ctx, node, args, kwargs):
    slope = args[1] if len(args) > 1 else kwargs.get("negative_slope", 0.01)
    layer = ctx.network.add_activation(args[0], trt.ActivationType.LEAKY_RELU)
    layer.alpha = float(slope)
    return ctx.name(layer, "leaky_relu").get_output(0)
