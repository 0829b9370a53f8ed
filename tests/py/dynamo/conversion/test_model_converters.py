"""Converters that real models needed (torchvision swin_t's shifted windows and attention
mask): fmod/remainder, slice_scatter/select_scatter, copy. Each is compiled with graph
inputs, with a frozen parameter or buffer in every operand position where that is legal, in fp32
and fp16, and with a dynamic dimension; the reference executor runs the engine and the result is
compared with eager PyTorch (`compile_and_verify` fails the test on any mismatch)."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from torch_tensorrt_rtx import Input
from tests.py.dynamo.conversion.harness import check_constant_operand, compile_and_verify

FLOATS = [torch.float32, torch.float16]


def _f(*shape, scale=5.0):
    return lambda dtype: (torch.randn(*shape) * scale).to(dtype)


def _away_from_zero(*shape):
    """Divisors: |b| in [0.5, 2], either sign (a zero divisor has no defined remainder)."""
    return lambda dtype: ((torch.rand(*shape) * 1.5 + 0.5) * torch.where(torch.rand(*shape) > 0.5, 1, -1)).to(dtype)


def _ints(*shape):
    return lambda dtype: torch.randint(-50, 50, shape)


def _int_divisors(*shape):
    return lambda dtype: torch.randint(1, 7, shape) * torch.where(torch.rand(*shape) > 0.5, 1, -1)


# name -> (fn, operand makers, converted op, operand positions that may be constant)
CASES = {
    "fmod_scalar": (lambda a: torch.fmod(a, 0.7), [_f(4, 8)], "aten.fmod.Scalar", ()),
    "fmod_tensor": (torch.fmod, [_f(4, 8), _away_from_zero(4, 8)], "aten.fmod.Tensor", (0, 1)),
    "remainder_scalar": (lambda a: torch.remainder(a, -0.6), [_f(4, 8)], "aten.remainder.Scalar", ()),
    "remainder_tensor": (torch.remainder, [_f(4, 8), _away_from_zero(8)], "aten.remainder.Tensor", (0, 1)),
    "slice_scatter": (lambda x, s: torch.slice_scatter(x, s, 1, 2, 5), [_f(3, 8, 4), _f(3, 3, 4)],
                      "aten.slice_scatter.default", (0, 1)),
    "slice_scatter_open_end": (lambda x, s: torch.slice_scatter(x, s, 0, -2), [_f(6, 4), _f(2, 4)],
                               "aten.slice_scatter.default", (0, 1)),
    "slice_scatter_all": (lambda x, s: torch.slice_scatter(x, s, 0), [_f(3, 4), _f(3, 4)],
                          "aten.slice_scatter.default", (0,)),
    "select_scatter": (lambda x, s: torch.select_scatter(x, s, 1, -1), [_f(3, 5, 4), _f(3, 4)],
                       "aten.select_scatter.default", (0, 1)),
    "copy_broadcast": (lambda d, s: d.clone().copy_(s) * 2, [_f(3, 4, 6), _f(4, 1)], "aten.copy.default", (0, 1)),
}


@pytest.mark.parametrize("dtype", FLOATS, ids=["fp32", "fp16"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_inputs(name, dtype):
    fn, makers, op, _ = CASES[name]
    compile_and_verify(_Fn(fn), [make(dtype) for make in makers], expect_ops=[op])


class _Fn(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *xs):
        return self.fn(*xs)


@pytest.mark.parametrize("dtype", FLOATS, ids=["fp32", "fp16"])
@pytest.mark.parametrize("name,position", [(n, p) for n, c in sorted(CASES.items()) for p in c[3]])
def test_constant_operand(name, position, dtype):
    fn, makers, op, _ = CASES[name]
    check_constant_operand(fn, makers, op, position, dtype)


@pytest.mark.parametrize("op,fn", [("aten.fmod.Tensor", torch.fmod), ("aten.remainder.Tensor", torch.remainder)])
def test_integer_modulo_matches_torch_sign_rules(op, fn):
    """fmod takes the dividend's sign, remainder the divisor's: both signs on both sides."""
    a, b = _ints(6, 8)(None), _int_divisors(6, 8)(None)
    compile_and_verify(_Fn(fn), [a, b], expect_ops=[op])


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


class AttentionThenGroupNorm(nn.Module):
    """diffusers' VAE mid block: attention over (B, H*W, C) tokens, transposed back to an image
    (channels-last strides), then group norm, whose ATen kernel rejects those strides at batch 1
    ("Expected X.is_contiguous(memory_format)"): verify runs the partition eagerly and failed."""

    def __init__(self):
        super().__init__()
        self.norm = nn.GroupNorm(4, 8)
        self.proj = nn.Linear(8, 8)

    def forward(self, x):
        b, c, h, w = x.shape
        tokens = self.proj(x.view(b, c, h * w).transpose(1, 2))  # (B, H*W, C), contiguous
        image = tokens.transpose(1, 2).reshape(b, c, h, w)
        return self.norm((image + x) / 2)


@pytest.mark.parametrize("dtype", FLOATS, ids=["fp32", "fp16"])
def test_group_norm_of_strided_input(dtype):
    compile_and_verify(AttentionThenGroupNorm().to(dtype), [_f(1, 8, 4, 4)(dtype)],
                       expect_ops=["aten.group_norm.default"])
