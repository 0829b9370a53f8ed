"""Constants and frozen parameters in every operand position a converter accepts.

Real models feed weights where tests usually feed inputs: ViT's class token is expanded
(`cls_token.expand(B, -1, -1)`), DistilBERT slices a buffer (`position_ids[:, :seq]`), BERT
combines constant masks with bitwise ops. Each case below is compiled once per operand position
with that operand a parameter (or buffer) and the others graph inputs, in fp32 and fp16; the op
must be converted (not folded, not left in PyTorch) and the engine must match eager.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from torch_tensorrt_rtx import Input

from tests.py.dynamo.conversion.harness import check_constant_operand, compile_and_verify


def _f(*shape):
    return lambda dtype: torch.randn(*shape).to(dtype)


def _b(*shape):
    return lambda dtype: torch.rand(*shape) > 0.5


def _i(high, *shape):
    return lambda dtype: torch.randint(0, high, shape)


# name -> (fn, operand makers, converted op, positions that may be constant)
CASES = {
    "add": (torch.add, [_f(4, 8), _f(8)], "aten.add.Tensor", (0, 1)),
    "sub": (torch.sub, [_f(2, 4, 8), _f(4, 8)], "aten.sub.Tensor", (0, 1)),
    "mul": (torch.mul, [_f(4, 8), _f(4, 8)], "aten.mul.Tensor", (0, 1)),
    "div": (lambda a, b: a / (b.abs() + 1), [_f(4, 8), _f(1, 8)], "aten.div.Tensor", (0,)),
    "pow": (lambda a, b: a.abs().add(0.5).pow(b), [_f(4, 8), _f(4, 8)], "aten.pow.Tensor_Tensor", (1,)),
    "maximum": (torch.maximum, [_f(4, 8), _f(4, 8)], "aten.maximum.default", (0, 1)),
    "lt": (lambda a, b: (a < b).to(a.dtype) + a, [_f(4, 8), _f(4, 8)], "aten.lt.Tensor", (1,)),
    "eq_tensor_constant_first": (lambda a, b: (a == b.round()).to(b.dtype) + b, [_f(4, 8), _f(4, 8)],
                                 "aten.eq.Tensor", (0,)),
    "bitwise_and": (lambda m, x: (m & (x > 0)).to(x.dtype) + x, [_b(4, 8), _f(4, 8)], "aten.bitwise_and.Tensor", (0,)),
    "logical_or": (lambda x, m: torch.logical_or(x > 0, m).to(x.dtype) + x, [_f(4, 8), _b(4, 8)],
                   "aten.logical_or.default", (1,)),
    "where_condition": (lambda c, a, b: torch.where(c, a, b), [_b(4, 8), _f(4, 8), _f(4, 8)], "aten.where.self",
                        (0, 1, 2)),
    "masked_fill_mask": (lambda x, m: x.masked_fill(m, -1.0), [_f(4, 8), _b(4, 8)], "aten.masked_fill.Scalar", (1,)),
    "matmul": (torch.matmul, [_f(2, 4, 6), _f(6, 3)], "aten.matmul.default", (0, 1)),
    "mm": (torch.mm, [_f(4, 6), _f(6, 3)], "aten.mm.default", (0, 1)),
    "bmm": (torch.bmm, [_f(2, 4, 6), _f(2, 6, 3)], "aten.bmm.default", (0, 1)),
    "cat": (lambda a, b: torch.cat([a, b], 1), [_f(2, 3, 4), _f(2, 5, 4)], "aten.cat.default", (0, 1)),
    "stack": (lambda a, b: torch.stack([a, b], 0), [_f(3, 4), _f(3, 4)], "aten.stack.default", (0, 1)),
    "index_select": (lambda t, i: t.index_select(0, i), [_f(10, 8), _i(10, 5)], "aten.index_select.default", (0, 1)),
    "embedding": (lambda w, i: F.embedding(i, w), [_f(10, 8), _i(10, 2, 5)], "aten.embedding.default", (0, 1)),
    "sdpa_mask": (lambda q, m: F.scaled_dot_product_attention(q, q, q, attn_mask=m),
                  [_f(1, 2, 4, 8), lambda dtype: torch.ones(4, 4, dtype=torch.bool).tril()],
                  "aten.scaled_dot_product_attention.default", (1,)),
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=["fp32", "fp16"])
@pytest.mark.parametrize("name,position", [(n, p) for n, case in sorted(CASES.items()) for p in case[3]])
def test_constant_operand(name, position, dtype):
    fn, makers, op, _ = CASES[name]
    check_constant_operand(fn, makers, op, position, dtype)


class ClassToken(nn.Module):
    """ViT: a learned token expanded to the (dynamic) batch and prepended to the patch tokens."""

    def __init__(self, dtype):
        super().__init__()
        self.cls_token = nn.Parameter(torch.randn(1, 1, 8).to(dtype))

    def forward(self, x):
        return torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)


class PositionIds(nn.Module):
    """DistilBERT/BERT: a position-id buffer sliced to the (dynamic) sequence length."""

    def __init__(self, dtype):
        super().__init__()
        self.register_buffer("position_ids", torch.arange(16).expand(1, -1))
        self.table = nn.Parameter(torch.randn(16, 8).to(dtype))

    def forward(self, x):
        ids = self.position_ids[:, : x.shape[1]]
        return x + F.embedding(ids, self.table)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=["fp32", "fp16"])
def test_class_token_expand_dynamic_batch(dtype):
    spec = Input(min_shape=(1, 4, 8), opt_shape=(2, 4, 8), max_shape=(8, 4, 8), dtype=dtype)
    _, report, _ = compile_and_verify(ClassToken(dtype), [spec], expect_ops=["aten.expand.default"],
                                      run_inputs=[[torch.randn(1, 4, 8).to(dtype)], [torch.randn(7, 4, 8).to(dtype)]])
    assert not report.fallback_ops and len(report.engines) == 1, report.format()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=["fp32", "fp16"])
def test_position_ids_slice_dynamic_sequence(dtype):
    spec = Input(min_shape=(2, 1, 8), opt_shape=(2, 6, 8), max_shape=(2, 16, 8), dtype=dtype)
    _, report, _ = compile_and_verify(PositionIds(dtype), [spec], expect_ops=["aten.slice.Tensor"],
                                      run_inputs=[[torch.randn(2, 3, 8).to(dtype)], [torch.randn(2, 16, 8).to(dtype)]])
    assert not report.fallback_ops and len(report.engines) == 1, report.format()
