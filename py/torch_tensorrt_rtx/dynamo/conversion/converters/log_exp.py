"""log1p and expm1 (softplus decomposes to log1p(exp(x))), accurate near 0 where log(1 + x) and
exp(x) - 1 lose every digit. TensorRT-RTX has no unary op for either, so both use Kahan's
corrections, computed in fp32 whatever the input dtype and rounded to it at the end:

    log1p(x) = x                            where 1 + x rounds to 1
             = log(u) * x / (u - 1)         otherwise, u = 1 + x (u = inf gives inf)
    expm1(x) = x                            where exp(x) rounds to 1
             = (u - 1) * x / log(u)         otherwise, u = exp(x) (-1 once u - 1 is -1, inf when u is)
"""
from __future__ import annotations

import tensorrt_rtx as trt
import torch

from torch_tensorrt_rtx.dynamo.conversion._context import node_dtype
from torch_tensorrt_rtx.dynamo.conversion._registry import converter
from torch_tensorrt_rtx.dynamo.conversion.converters._validators import float_tensors
from torch_tensorrt_rtx.dynamo.conversion.converters.elementwise import elementwise_tensors
from torch_tensorrt_rtx.dynamo.conversion.converters.unary import unary_tensor

aten = torch.ops.aten
Op = trt.ElementWiseOperation
U = trt.UnaryOperation
F32 = torch.float32


def _math(ctx, a, b, op):
    return elementwise_tensors(ctx, a, b, op, F32)


def _where(ctx, condition, then_value, else_value):
    layer = ctx.network.add_select(condition, then_value, else_value)
    return ctx.name(layer, "select").get_output(0)


def _is(ctx, x, value):
    return _math(ctx, x, value, Op.EQUAL)


@converter(aten.log1p.default, validator=float_tensors)
def log1p(ctx, node, args, kwargs):
    x = ctx.cast(args[0], F32)
    u = _math(ctx, x, 1.0, Op.SUM)
    ratio = _math(ctx, x, _math(ctx, u, 1.0, Op.SUB), Op.DIV)
    ratio = _where(ctx, _is(ctx, u, float("inf")), ctx.constant(1.0, F32, len(x.shape)), ratio)
    out = _math(ctx, unary_tensor(ctx, u, U.LOG), ratio, Op.PROD)
    out = _where(ctx, _is(ctx, u, 1.0), x, out)
    return ctx.cast(out, node_dtype(node))


@converter(aten.expm1.default, validator=float_tensors)
def expm1(ctx, node, args, kwargs):
    x = ctx.cast(args[0], F32)
    u = unary_tensor(ctx, x, U.EXP)
    less_one = _math(ctx, u, 1.0, Op.SUB)
    out = _math(ctx, less_one, _math(ctx, x, unary_tensor(ctx, u, U.LOG), Op.DIV), Op.PROD)
    out = _where(ctx, _is(ctx, u, float("inf")), u, out)
    out = _where(ctx, _is(ctx, less_one, -1.0), less_one, out)
    out = _where(ctx, _is(ctx, u, 1.0), x, out)
    return ctx.cast(out, node_dtype(node))
