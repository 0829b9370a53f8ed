"""Attention: scaled_dot_product_attention (mask, causal, custom scale, no dropout) and baddbmm.

SDPA becomes matmul(q, k^T) * scale -> mask -> softmax -> matmul(v), the same math as PyTorch's
reference ("math") backend, so every step is visible to the reference executor. The causal mask
(query i sees keys j <= i, top-left aligned like PyTorch) is built from index ramps, which are
fill layers when the sequence length is dynamic.
"""
from __future__ import annotations

import math

import tensorrt_rtx as trt
import torch

from torch_tensorrt_rtx.dynamo.conversion._context import node_dtype
from torch_tensorrt_rtx.dynamo.conversion._registry import converter
from torch_tensorrt_rtx.dynamo.conversion.converters._layers import dims, ramp
from torch_tensorrt_rtx.dynamo.conversion.converters._validators import float_tensors
from torch_tensorrt_rtx.dynamo.conversion.converters.comparison import select_tensors
from torch_tensorrt_rtx.dynamo.conversion.converters.elementwise import elementwise_tensors
from torch_tensorrt_rtx.dynamo.conversion.converters.linear import matmul_tensors

aten = torch.ops.aten
Op = trt.ElementWiseOperation


def _sdpa_args(args, kwargs):
    names = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa")
    defaults = (None, None, None, None, 0.0, False, None, False)
    values = dict(zip(names, defaults))
    values.update(zip(names, args))
    values.update(kwargs)
    return values


def _sdpa_ok(node):
    a = _sdpa_args(node.args, node.kwargs)
    q, k = a["query"].meta["val"], a["key"].meta["val"]
    if a["dropout_p"] != 0.0 or q.dim() < 2 or not isinstance(q.shape[-1], int):
        return False
    if a["enable_gqa"] and q.dim() >= 3 and q.shape[-3] != k.shape[-3]:
        return False  # grouped-query attention (repeat of kv heads) stays in PyTorch for now
    mask = a["attn_mask"]
    if mask is not None and a["is_causal"]:
        return False  # PyTorch rejects this combination too
    if mask is not None:
        mask_val = mask.meta.get("val") if hasattr(mask, "meta") else None
        if not isinstance(mask_val, torch.Tensor):
            return False
    return float_tensors(node) or (mask is not None and node.meta["val"].dtype in (torch.float32, torch.float16,
                                                                                    torch.bfloat16))


def causal_mask(ctx, queries, keys):
    """Boolean [L, S] tensor: True where key j may be seen by query i (j <= i)."""
    rows = ctx.reshape(ramp(ctx, queries), [queries, 1])
    cols = ctx.reshape(ramp(ctx, keys), [1, keys])
    return ctx.name(ctx.network.add_elementwise(cols, rows, Op.GREATER), "causal_future").get_output(0)


@converter(aten.scaled_dot_product_attention.default, validator=_sdpa_ok)
def scaled_dot_product_attention(ctx, node, args, kwargs):
    a = _sdpa_args(args, kwargs)
    dtype = node_dtype(node)
    q, k, v = (ctx.cast(a[n], dtype) for n in ("query", "key", "value"))
    head_dim = q.shape[-1]
    scale = a["scale"] if a["scale"] is not None else 1.0 / math.sqrt(head_dim)
    scores = matmul_tensors(ctx, q, k, dtype, transpose_b=True)
    scores = elementwise_tensors(ctx, scores, float(scale), Op.PROD, dtype)
    mask = a["attn_mask"]
    if isinstance(mask, torch.Tensor):  # a mask folded to a constant on the host
        mask = ctx.constant(mask) if mask.dtype == torch.bool else ctx.constant(mask, dtype)
    if a["is_causal"]:
        future = causal_mask(ctx, dims(ctx, q)[-2], dims(ctx, k)[-2])
        scores = select_tensors(ctx, future, float("-inf"), scores, dtype)
    elif isinstance(mask, trt.ITensor):
        if mask.dtype == trt.bool:
            hidden = ctx.name(ctx.network.add_unary(mask, trt.UnaryOperation.NOT), "masked_out").get_output(0)
            scores = select_tensors(ctx, hidden, float("-inf"), scores, dtype)
        else:
            scores = elementwise_tensors(ctx, scores, mask, Op.SUM, dtype)
    softmax = ctx.network.add_softmax(scores)
    softmax.axes = 1 << (len(scores.shape) - 1)
    probs = ctx.name(softmax, "attention_probs").get_output(0)
    return matmul_tensors(ctx, probs, v, dtype)


def _baddbmm_ok(node):
    return float_tensors(node)


@converter(aten.baddbmm.default, validator=_baddbmm_ok)
def baddbmm(ctx, node, args, kwargs):
    dtype = node_dtype(node)
    beta = args[3] if len(args) > 3 else kwargs.get("beta", 1)
    alpha = args[4] if len(args) > 4 else kwargs.get("alpha", 1)
    product = matmul_tensors(ctx, args[1], args[2], dtype)
    if alpha != 1:
        product = elementwise_tensors(ctx, product, float(alpha), Op.PROD, dtype)
    if beta == 0:
        return product
    base = args[0]
    if beta != 1:
        base = elementwise_tensors(ctx, base, float(beta), Op.PROD, dtype)
    return elementwise_tensors(ctx, product, base, Op.SUM, dtype)
