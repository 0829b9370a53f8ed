"""Symbolic sizes: sym_size for any consumer, SymInt arithmetic (mul/add/sub/floordiv) and
reshapes whose sizes are such expressions (e.g. `x.view(bsz * num_heads, seq, head_dim)` in
nn.MultiheadAttention under a dynamic batch).

A SymInt value is carried through the network as a 1-element int64 shape tensor, so the engine
computes it at run time from IShapeLayer outputs; nothing is baked in at trace time.
"""
from __future__ import annotations

import operator

import tensorrt_rtx as trt
import torch
from torch.fx import Node

from torch_tensorrt_rtx.dynamo.conversion._context import normalize_axis
from torch_tensorrt_rtx.dynamo.conversion._registry import converter
from torch_tensorrt_rtx.dynamo.conversion.converters._layers import shape_math
from torch_tensorrt_rtx.dynamo.conversion.converters._validators import numeric_tensors

aten = torch.ops.aten
Op = trt.ElementWiseOperation
_ARITHMETIC = {operator.mul: Op.PROD, operator.add: Op.SUM, operator.sub: Op.SUB, operator.floordiv: Op.FLOOR_DIV}


def is_sym_int(value) -> bool:
    val = value.meta.get("val") if isinstance(value, Node) else value
    return isinstance(val, torch.SymInt)


def _sym_args(node):
    return is_sym_int(node) and all(isinstance(a, int) or is_sym_int(a) for a in node.args)


@converter(*_ARITHMETIC, validator=_sym_args)
def sym_arithmetic(ctx, node, args, kwargs):
    return shape_math(ctx, args[0], args[1], _ARITHMETIC[node.target])


# Below the compiler's own sym_size/reshape converters (which only serve reshapes of plain
# sizes): these take over for every other consumer and for size expressions.
@converter(aten.sym_size.int, priority=-1)
def sym_size_any_user(ctx, node, args, kwargs):
    x, axis = args
    return ctx.dim_of(x, normalize_axis(axis, len(x.shape)))


def _expression_sizes_ok(node):
    return numeric_tensors(node) and all(isinstance(s, int) or is_sym_int(s) for s in node.args[1])


@converter(aten.view.default, aten._unsafe_view.default, aten.reshape.default, priority=-1,
           validator=_expression_sizes_ok)
def reshape_with_expressions(ctx, node, args, kwargs):
    return ctx.reshape(args[0], [p if isinstance(p, trt.ITensor) else int(p) for p in args[1]])
