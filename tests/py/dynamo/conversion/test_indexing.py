"""Indexing: slice/select/narrow, embedding and index_select, gather, advanced indexing
(index.Tensor), slice_scatter/select_scatter/copy (slice assignment, Swin's shifted-window mask);
constants in every operand position, dynamic sizes."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from torch_tensorrt_rtx import Input

from tests.py.dynamo.conversion.harness import (all_inputs_test, compile_and_verify, constant_operand_test, floats,
                                                ints, op_case_tests)


FLOATS = [torch.float32, torch.float16]


# name -> (function of (module, x), input kind, ops that must be converted); harness.op_case_tests
CASES = {
    "slice_select": (lambda m, x: x[:, :, ::2][..., :2].sum(-1, keepdim=True) + x[:, -1:, 1:3].sum(-1, keepdim=True)
                     + x.select(2, -1).unsqueeze(-1) + x.narrow(2, 2, 1) + x[..., 1:].sum(-1, keepdim=True)
                     + x.select(1, 0)[:, None, :1], "seq", ["aten.slice.Tensor", "aten.select.int"]),
    "embedding": (lambda m, x: F.embedding((x.abs() * 3).to(torch.int64).clamp(0, 9), m.table).sum(-2)
                  + m.table.index_select(0, torch.tensor([1, 3, 5, 7, 9, 0, 2, 4]))[:, 0], "seq",
                  ["aten.embedding.default"]),
    "gather": (lambda m, x: torch.gather(x, 2, (x.abs() * 3).long().clamp(0, 7))
               + torch.gather(x, 1, torch.zeros_like(x, dtype=torch.int64)[:, :1, :]).expand(-1, x.shape[1], -1)
               + x.gather(2, (x.abs() * 3).long().clamp(0, 7)[..., :3]).sum(-1, keepdim=True), "seq",
               ["aten.gather.default"]),
    "index_tensor": (lambda m, x: x[:, torch.tensor([0, 1, -1])].sum(1, keepdim=True)
                     + m.table[(x.abs() * 3).long().clamp(0, 9)].sum(-1)
                     + m.table[(x[..., :1].abs() * 3).long().clamp(0, 9), torch.tensor([1, -2, 3, 0, 5, 6, 7, -1])],
                     "seq", ["aten.index.Tensor"]),
}

test_op_dynamic, test_op_static_fp32, test_op_bf16 = op_case_tests(CASES, bf16=["slice_select"])


# name -> (fn, operand makers, converted op, operand positions that may be constant)
CONSTANTS = {
    "index_select": (lambda t, i: t.index_select(0, i), [floats(10, 8), ints(10, 5)], "aten.index_select.default",
                     (0, 1)),
    "embedding": (lambda w, i: F.embedding(i, w), [floats(10, 8), ints(10, 2, 5)], "aten.embedding.default", (0, 1)),
}

test_constant_operand = constant_operand_test(CONSTANTS)


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
def test_position_ids_slice_dynamic_sequence(dtype):
    spec = Input(min_shape=(2, 1, 8), opt_shape=(2, 6, 8), max_shape=(2, 16, 8), dtype=dtype)
    _, report, _ = compile_and_verify(PositionIds(dtype), [spec], expect_ops=["aten.slice.Tensor"],
                                      run_inputs=[[torch.randn(2, 3, 8).to(dtype)], [torch.randn(2, 16, 8).to(dtype)]])
    assert not report.fallback_ops and len(report.engines) == 1, report.format()


def _wide(*shape):
    """Operands spread over about +-15 (randn * 5)."""
    return floats(*shape, scale=5.0)


# name -> (fn, operand makers, converted op, operand positions that may be constant)
SCATTERS = {
    "slice_scatter": (lambda x, s: torch.slice_scatter(x, s, 1, 2, 5), [_wide(3, 8, 4), _wide(3, 3, 4)],
                      "aten.slice_scatter.default", (0, 1)),
    "slice_scatter_open_end": (lambda x, s: torch.slice_scatter(x, s, 0, -2), [_wide(6, 4), _wide(2, 4)],
                               "aten.slice_scatter.default", (0, 1)),
    "slice_scatter_all": (lambda x, s: torch.slice_scatter(x, s, 0), [_wide(3, 4), _wide(3, 4)],
                          "aten.slice_scatter.default", (0,)),
    "select_scatter": (lambda x, s: torch.select_scatter(x, s, 1, -1), [_wide(3, 5, 4), _wide(3, 4)],
                       "aten.select_scatter.default", (0, 1)),
    "copy_broadcast": (lambda d, s: d.clone().copy_(s) * 2, [_wide(3, 4, 6), _wide(4, 1)], "aten.copy.default", (0, 1)),
}

test_scatter_inputs = all_inputs_test(SCATTERS)
test_scatter_constant_operand = constant_operand_test(SCATTERS)


class ShiftedWindowMask(nn.Module):
    """torchvision Swin: a roll of the feature map (index_select over fmod(arange + shift, n)) and
    an attention mask assembled by slice assignment on a new_zeros buffer."""

    def forward(self, x):
        shifted = torch.roll(x, shifts=(-2, -2), dims=(1, 2))
        mask = x.new_zeros((x.shape[1], x.shape[2]))
        count = 0
        for h in ((0, -3), (-3, -2), (-2, None)):
            for w in ((0, -3), (-3, -2), (-2, None)):
                mask[h[0]:h[1], w[0]:w[1]] = count
                count += 1
        return shifted + mask.unsqueeze(-1)


@pytest.mark.parametrize("dtype", FLOATS, ids=["fp32", "fp16"])
def test_swin_shifted_window_dynamic_batch(dtype):
    spec = Input(min_shape=(1, 7, 7, 4), opt_shape=(2, 7, 7, 4), max_shape=(4, 7, 7, 4), dtype=dtype)
    _, report, _ = compile_and_verify(
        ShiftedWindowMask(), [spec], min_block_size=3,
        expect_ops=["aten.fmod.Scalar", "aten.slice_scatter.default", "aten.copy.default"],
        run_inputs=[[torch.randn(1, 7, 7, 4).to(dtype)], [torch.randn(4, 7, 7, 4).to(dtype)]])
    assert not report.fallback_ops and len(report.engines) == 1, report.format()


class ScatterRows(nn.Module):
    """x[:, a:b] = y along a dynamic dimension, bounds relative to its end."""

    def forward(self, x, y):
        out = x.clone()
        out[:, -3:-1] = y
        return out


def test_slice_scatter_dynamic_dim():
    x = Input(min_shape=(2, 3, 4), opt_shape=(2, 6, 4), max_shape=(2, 9, 4))
    _, report, _ = compile_and_verify(
        ScatterRows(), [x, torch.randn(2, 2, 4)], expect_ops=["aten.slice_scatter.default"],
        run_inputs=[[torch.randn(2, 3, 4), torch.randn(2, 2, 4)], [torch.randn(2, 9, 4), torch.randn(2, 2, 4)]])
    assert not report.fallback_ops, report.format()
