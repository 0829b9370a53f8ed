"""Elementwise arithmetic: add/sub/mul/div with broadcasting and Python scalars.

Operands are cast to the node's result dtype (torch type promotion already decided it and
recorded it in `meta["val"]`), and ranks are aligned with IUnsqueezeLayer so broadcasting
also works with dynamic dimensions.
"""
from __future__ import annotations

import tensorrt_rtx as trt
import torch

from torch_tensorrt_rtx.dynamo.conversion._context import FLOAT_DTYPES, node_dtype
from torch_tensorrt_rtx.dynamo.conversion._registry import Precision, converter
from torch_tensorrt_rtx.dynamo.conversion.converters._validators import all_of, numeric_tensors

aten = torch.ops.aten
Op = trt.ElementWiseOperation

_OPS = {
    aten.add.Tensor: Op.SUM, aten.add.Scalar: Op.SUM,
    aten.sub.Tensor: Op.SUB, aten.sub.Scalar: Op.SUB,
    aten.mul.Tensor: Op.PROD, aten.mul.Scalar: Op.PROD,
    aten.div.Tensor: Op.DIV, aten.div.Scalar: Op.DIV,
}


def _output_dtype_ok(node):
    dtype = node.meta["val"].dtype
    # Integer true division yields a float in torch; TensorRT's DIV on ints truncates.
    if _OPS.get(node.target) == Op.DIV:
        return dtype in FLOAT_DTYPES
    return dtype in FLOAT_DTYPES + (torch.int32, torch.int64)


def _tensor_output(node):
    return isinstance(node.meta.get("val"), torch.Tensor)


_binary_ok = all_of(_tensor_output, numeric_tensors, _output_dtype_ok)


def elementwise_tensors(ctx, lhs, rhs, op, dtype):
    rank = max(len(t.shape) for t in (lhs, rhs) if isinstance(t, trt.ITensor))
    a = ctx.as_tensor(lhs, dtype, rank)
    b = ctx.as_tensor(rhs, dtype, rank)
    a, b = ctx.broadcast_ranks(a, b)
    return ctx.name(ctx.network.add_elementwise(a, b, op), op.name.lower()).get_output(0)


@converter(aten.add.Tensor, aten.add.Scalar, aten.sub.Tensor, aten.mul.Tensor, aten.mul.Scalar, aten.div.Tensor,
           validator=_binary_ok, precision=Precision.FOLLOW)
@converter(aten.sub.Scalar, aten.div.Scalar, validator=_binary_ok)
def binary(ctx, node, args, kwargs):
    dtype = node_dtype(node)
    lhs, rhs = args[0], args[1]
    alpha = kwargs.get("alpha", 1)
    if alpha != 1:
        rhs = elementwise_tensors(ctx, rhs, alpha, Op.PROD, dtype) if isinstance(rhs, trt.ITensor) else rhs * alpha
    if not isinstance(lhs, trt.ITensor) and not isinstance(rhs, trt.ITensor):
        raise TypeError(f"node {node.name}: no tensor operand")
    return elementwise_tensors(ctx, lhs, rhs, _OPS[node.target], dtype)
