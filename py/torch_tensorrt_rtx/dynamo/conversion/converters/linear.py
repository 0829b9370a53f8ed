"""Matrix products: linear, addmm, mm, bmm, matmul."""
from __future__ import annotations

import tensorrt_rtx as trt
import torch

from torch_tensorrt_rtx.dynamo.conversion._context import node_dtype
from torch_tensorrt_rtx.dynamo.conversion._registry import Precision, converter
from torch_tensorrt_rtx.dynamo.conversion.converters._validators import all_of, float_tensors
from torch_tensorrt_rtx.dynamo.conversion.converters.elementwise import elementwise_tensors

aten = torch.ops.aten
MatOp = trt.MatrixOperation


def matmul_tensors(ctx, a, b, dtype, transpose_b=False):
    a = ctx.as_tensor(a, dtype)
    b = ctx.as_tensor(b, dtype)
    op_a = MatOp.VECTOR if len(a.shape) == 1 else MatOp.NONE
    op_b = MatOp.VECTOR if len(b.shape) == 1 else (MatOp.TRANSPOSE if transpose_b else MatOp.NONE)
    if op_a == MatOp.NONE and op_b != MatOp.VECTOR:
        a, b = ctx.broadcast_ranks(a, b)
    layer = ctx.network.add_matrix_multiply(a, op_a, b, op_b)
    return ctx.name(layer, "matmul").get_output(0)


@converter(aten.mm.default, aten.bmm.default, aten.matmul.default, validator=float_tensors, precision=Precision.REDUCED)
def matmul(ctx, node, args, kwargs):
    return matmul_tensors(ctx, args[0], args[1], node_dtype(node))


def _addmm_ok(node):
    return node.kwargs.get("beta", 1) == 1 and node.kwargs.get("alpha", 1) == 1


@converter(aten.addmm.default, validator=all_of(float_tensors, _addmm_ok), precision=Precision.REDUCED)
def addmm(ctx, node, args, kwargs):
    dtype = node_dtype(node)
    product = matmul_tensors(ctx, args[1], args[2], dtype)
    return elementwise_tensors(ctx, product, args[0], trt.ElementWiseOperation.SUM, dtype)


@converter(aten.linear.default, validator=float_tensors, precision=Precision.REDUCED)
def linear(ctx, node, args, kwargs):
    dtype = node_dtype(node)
    out = matmul_tensors(ctx, args[0], args[1], dtype, transpose_b=True)
    bias = args[2] if len(args) > 2 else kwargs.get("bias")
    if bias is not None:
        out = elementwise_tensors(ctx, out, bias, trt.ElementWiseOperation.SUM, dtype)
    return out
