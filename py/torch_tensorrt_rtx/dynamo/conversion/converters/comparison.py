"""Comparisons (eq/ne/lt/le/gt/ge), logical ops, where, masked_fill, maximum/minimum.

Operands are compared in their promoted dtype (torch.result_type over the FX metadata), so an
int tensor compared with a float scalar behaves as in eager PyTorch.
"""
from __future__ import annotations

import tensorrt_rtx as trt
import torch
from torch.fx import Node

from torch_tensorrt_rtx.dynamo.conversion._context import node_dtype, to_torch_dtype
from torch_tensorrt_rtx.dynamo.conversion._registry import Precision, converter
from torch_tensorrt_rtx.dynamo.conversion.converters._validators import numeric_tensors
from torch_tensorrt_rtx.dynamo.conversion.converters.elementwise import elementwise_tensors

aten = torch.ops.aten
Op = trt.ElementWiseOperation
U = trt.UnaryOperation

_COMPARE = {
    "eq": (Op.EQUAL,), "ne": (Op.EQUAL, "not"), "lt": (Op.LESS,), "gt": (Op.GREATER,),
    "le": (Op.GREATER, "not"), "ge": (Op.LESS, "not"),
}
_TARGETS = {getattr(aten, name).Tensor: name for name in _COMPARE}
_TARGETS.update({getattr(aten, name).Scalar: name for name in _COMPARE})


def _meta(value):
    val = value.meta.get("val") if isinstance(value, Node) else value
    return val


def common_dtype(a, b) -> torch.dtype:
    """torch's type promotion between two FX args (nodes, tensors or Python scalars)."""
    a, b = _meta(a), _meta(b)
    a = a if isinstance(a, (torch.Tensor, int, float, bool)) else torch.tensor(a)
    b = b if isinstance(b, (torch.Tensor, int, float, bool)) else torch.tensor(b)
    return torch.result_type(a, b)


def _not(ctx, x):
    return ctx.name(ctx.network.add_unary(x, U.NOT), "not").get_output(0)


def _compare_ok(node):
    if not numeric_tensors(node):
        return False
    dtype = common_dtype(node.args[0], node.args[1])
    return dtype != torch.bool or _TARGETS[node.target] in ("eq", "ne")


@converter(*_TARGETS, validator=_compare_ok)
def compare(ctx, node, args, kwargs):
    op = _COMPARE[_TARGETS[node.target]]
    dtype = common_dtype(node.args[0], node.args[1])
    if dtype == torch.bool:  # TensorRT compares numbers: eq/ne on bools as int32
        dtype = torch.int32
    out = elementwise_tensors(ctx, args[0], args[1], op[0], dtype)
    return _not(ctx, out) if len(op) > 1 else out


_LOGICAL = {aten.logical_and.default: Op.AND, aten.logical_or.default: Op.OR, aten.logical_xor.default: Op.XOR,
            aten.bitwise_and.Tensor: Op.AND, aten.bitwise_or.Tensor: Op.OR, aten.bitwise_xor.Tensor: Op.XOR}


def _logical_ok(node):
    if not numeric_tensors(node):
        return False
    if node.target in (aten.bitwise_and.Tensor, aten.bitwise_or.Tensor, aten.bitwise_xor.Tensor):
        return all(_meta(a).dtype == torch.bool for a in node.args[:2] if isinstance(a, Node))
    return True


def _as_bool(ctx, x):
    if isinstance(x, trt.ITensor):
        if x.dtype == trt.bool:
            return x
        # x != 0, computed in x's own dtype
        zero = ctx.constant(0, dtype=to_torch_dtype(x.dtype), rank=len(x.shape))
        return _not(ctx, ctx.name(ctx.network.add_elementwise(x, zero, Op.EQUAL), "eq0").get_output(0))
    return ctx.constant(bool(x), dtype=torch.bool)


@converter(*_LOGICAL, validator=_logical_ok)
def logical(ctx, node, args, kwargs):
    a, b = ctx.broadcast_ranks(_as_bool(ctx, args[0]), _as_bool(ctx, args[1]))
    return ctx.name(ctx.network.add_elementwise(a, b, _LOGICAL[node.target]), "logical").get_output(0)


@converter(aten.logical_not.default, validator=numeric_tensors)
def logical_not(ctx, node, args, kwargs):
    return _not(ctx, _as_bool(ctx, args[0]))


@converter(aten.bitwise_not.default, validator=lambda n: numeric_tensors(n) and node_dtype(n) == torch.bool)
def bitwise_not(ctx, node, args, kwargs):
    return _not(ctx, args[0])


def select_tensors(ctx, condition, then_value, else_value, dtype):
    rank = max(len(t.shape) for t in (condition, then_value, else_value) if isinstance(t, trt.ITensor))
    condition = _as_bool(ctx, condition)
    then_value = ctx.as_tensor(then_value, dtype, rank)
    else_value = ctx.as_tensor(else_value, dtype, rank)
    parts = ctx.broadcast_ranks(condition, then_value, else_value)
    return ctx.name(ctx.network.add_select(*parts), "select").get_output(0)


def _where_ok(node):
    return numeric_tensors(node) and isinstance(node.meta.get("val"), torch.Tensor)


@converter(aten.where.self, validator=_where_ok, precision=Precision.FOLLOW)
@converter(aten.where.ScalarSelf, aten.where.ScalarOther, aten.where.Scalar, validator=_where_ok)
def where(ctx, node, args, kwargs):
    return select_tensors(ctx, args[0], args[1], args[2], node_dtype(node))


@converter(aten.masked_fill.Scalar, validator=_where_ok, precision=Precision.FOLLOW)
@converter(aten.masked_fill.Tensor, validator=_where_ok)
def masked_fill(ctx, node, args, kwargs):
    dtype = node_dtype(node)
    value = args[2]
    if isinstance(value, trt.ITensor) and len(value.shape) > 0:
        value = ctx.reshape(value, [])
    return select_tensors(ctx, args[1], value, args[0], dtype)


_MINMAX = {aten.maximum.default: Op.MAX, aten.minimum.default: Op.MIN}


@converter(*_MINMAX, validator=lambda n: numeric_tensors(n) and node_dtype(n) != torch.bool)
def maximum(ctx, node, args, kwargs):
    return elementwise_tensors(ctx, args[0], args[1], _MINMAX[node.target], node_dtype(node))
