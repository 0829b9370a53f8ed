"""Attention: scaled_dot_product_attention (boolean or additive mask, causal, both together,
custom scale, grouped-query heads, no dropout) and baddbmm.

SDPA becomes matmul(q, k^T) * scale -> mask -> softmax -> matmul(v), the same math as PyTorch's
reference ("math") backend, so every step is visible to the reference executor. The causal mask
(query i sees keys j <= i, top-left aligned like PyTorch) is built from index ramps, which are
fill layers when the sequence length is dynamic; with an explicit mask as well, a key must pass
both (what PyTorch's CPU kernels do). A query row whose mask hides every key is 0, not NaN:
PyTorch uses a "safe softmax" there, so the engine zeroes rows whose scores are all -inf.
`enable_gqa=True` with fewer key/value heads repeats each of them for its group of query heads
(head h reads key/value head h // (query heads / kv heads), as repeat_interleave does).
"""
from __future__ import annotations

import math

import tensorrt_rtx as trt
import torch

from torch_tensorrt_rtx.dynamo.conversion._context import node_dtype
from torch_tensorrt_rtx.dynamo.conversion._registry import Precision, Refusal, converter
from torch_tensorrt_rtx.dynamo.conversion.converters._layers import broadcast_to, dims, ramp
from torch_tensorrt_rtx.dynamo.conversion.converters._validators import float_tensors
from torch_tensorrt_rtx.dynamo.conversion.converters.comparison import select_tensors
from torch_tensorrt_rtx.dynamo.conversion.converters.elementwise import elementwise_tensors
from torch_tensorrt_rtx.dynamo.conversion.converters.linear import matmul_tensors
from torch_tensorrt_rtx.dynamo.conversion.converters.reduction import softmax_rows

aten = torch.ops.aten
Op = trt.ElementWiseOperation


def _sdpa_args(args, kwargs):
    names = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa")
    defaults = (None, None, None, None, 0.0, False, None, False)
    values = dict(zip(names, defaults))
    values.update(zip(names, args))
    values.update(kwargs)
    return values


def _gqa_ok(q, k, v) -> bool:
    """Grouped heads that can be repeated: static head counts, the query's a multiple of the kv's."""
    if q.dim() < 3:
        return False
    heads = (q.shape[-3], k.shape[-3], v.shape[-3])
    return all(isinstance(h, int) for h in heads) and heads[1] == heads[2] and heads[1] > 0 \
        and heads[0] % heads[1] == 0


def _sdpa_ok(node):
    a = _sdpa_args(node.args, node.kwargs)
    q, k, v = (a[n].meta["val"] for n in ("query", "key", "value"))
    if a["dropout_p"] != 0.0:
        return Refusal(f"dropout_p={a['dropout_p']} draws random numbers, and a TensorRT-RTX engine cannot "
                       "reproduce PyTorch's random stream")
    if q.dim() < 2 or not isinstance(q.shape[-1], int):
        return False
    if a["enable_gqa"] and not _gqa_ok(q, k, v):
        return Refusal(f"enable_gqa with query heads {q.shape[-3] if q.dim() >= 3 else None} and key/value heads "
                       f"{k.shape[-3] if k.dim() >= 3 else None}: expected static head counts, the query's a "
                       "multiple of the key/value's")
    mask = a["attn_mask"]
    if mask is not None:
        mask_val = mask.meta.get("val") if hasattr(mask, "meta") else None
        if not isinstance(mask_val, torch.Tensor):
            return False
    return float_tensors(node) or (mask is not None and node.meta["val"].dtype in (torch.float32, torch.float16,
                                                                                    torch.bfloat16))


def causal_mask(ctx, queries, keys):
    """Boolean [L, S] tensor: True where key j must be hidden from query i (j > i)."""
    rows = ctx.reshape(ramp(ctx, queries), [queries, 1])
    cols = ctx.reshape(ramp(ctx, keys), [1, keys])
    return ctx.name(ctx.network.add_elementwise(cols, rows, Op.GREATER), "causal_future").get_output(0)


def _repeat_heads(ctx, x, groups):
    """[..., H, S, E] -> [..., H * groups, S, E], each head repeated `groups` times in a row."""
    if groups == 1:
        return x
    size = dims(ctx, x)
    grouped = ctx.reshape(x, size[:-2] + [1] + size[-2:])
    grouped = broadcast_to(ctx, grouped, size[:-2] + [groups] + size[-2:])
    return ctx.reshape(grouped, size[:-3] + [size[-3] * groups] + size[-2:])


def _hidden_keys(ctx, a, mask, q, k):
    """Boolean tensor, True where a key is hidden from a query (causal and/or boolean mask), or None."""
    hidden = causal_mask(ctx, dims(ctx, q)[-2], dims(ctx, k)[-2]) if a["is_causal"] else None
    if isinstance(mask, trt.ITensor) and mask.dtype == trt.bool:
        masked_out = ctx.name(ctx.network.add_unary(mask, trt.UnaryOperation.NOT), "masked_out").get_output(0)
        if hidden is None:
            hidden = masked_out
        else:
            hidden, masked_out = ctx.broadcast_ranks(hidden, masked_out)
            hidden = ctx.name(ctx.network.add_elementwise(hidden, masked_out, Op.OR), "hidden").get_output(0)
    return hidden


def safe_softmax(ctx, scores, dtype):
    """Softmax over the last axis, with 0 (not NaN) in rows where every score is -inf."""
    axis = 1 << (len(scores.shape) - 1)
    probs = softmax_rows(ctx, scores, len(scores.shape) - 1)
    row_max = ctx.name(ctx.network.add_reduce(scores, trt.ReduceOperation.MAX, axis, True), "row_max").get_output(0)
    minus_inf = ctx.constant(float("-inf"), dtype, rank=len(scores.shape))
    empty = ctx.name(ctx.network.add_elementwise(row_max, minus_inf, Op.EQUAL), "row_fully_masked").get_output(0)
    return select_tensors(ctx, empty, 0.0, probs, dtype)


@converter(aten.scaled_dot_product_attention.default, validator=_sdpa_ok)
def scaled_dot_product_attention(ctx, node, args, kwargs):
    a = _sdpa_args(args, kwargs)
    dtype = node_dtype(node)
    q, k, v = (ctx.cast(a[n], dtype) for n in ("query", "key", "value"))
    if a["enable_gqa"] and len(q.shape) >= 3 and q.shape[-3] != k.shape[-3]:
        groups = q.shape[-3] // k.shape[-3]
        k, v = _repeat_heads(ctx, k, groups), _repeat_heads(ctx, v, groups)
    head_dim = q.shape[-1]
    scale = a["scale"] if a["scale"] is not None else 1.0 / math.sqrt(head_dim)
    # Scores and softmax in fp32 for fp16/bf16 inputs, as PyTorch's kernels accumulate them: a
    # score of a few hundred rounded to fp16 moves its probability by several percent.
    wide = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
    scores = matmul_tensors(ctx, ctx.cast(q, wide), ctx.cast(k, wide), wide, transpose_b=True)
    scores = elementwise_tensors(ctx, scores, float(scale), Op.PROD, wide)
    mask = a["attn_mask"]
    if isinstance(mask, torch.Tensor):  # a mask folded to a constant on the host
        mask = ctx.constant(mask) if mask.dtype == torch.bool else ctx.constant(mask, wide)
    if isinstance(mask, trt.ITensor) and mask.dtype != trt.bool:
        scores = elementwise_tensors(ctx, scores, mask, Op.SUM, wide)
    hidden = _hidden_keys(ctx, a, mask, q, k)
    if hidden is not None:
        scores = select_tensors(ctx, hidden, float("-inf"), scores, wide)
    if mask is None:  # causal alone leaves every query at least key 0
        probs = softmax_rows(ctx, scores, len(scores.shape) - 1)
    else:
        probs = safe_softmax(ctx, scores, wide)
    probs = ctx.cast(probs, dtype)
    return matmul_tensors(ctx, probs, v, dtype)


def _baddbmm_ok(node):
    return float_tensors(node)


@converter(aten.baddbmm.default, validator=_baddbmm_ok, precision=Precision.REDUCED)
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
