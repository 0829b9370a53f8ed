"""Unary math: exp/log/abs/neg/sqrt/rsqrt, pow (integer operands too), log1p/expm1 (edges and
values near zero), softplus."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from torch_tensorrt_rtx import Input

from tests.py.dynamo.conversion.harness import Fn, batch_spec, compile_and_verify, op_case_tests, runs


FLOATS = [torch.float32, torch.float16]


# name -> (function of (module, x), input kind, ops that must be converted); harness.op_case_tests
CASES = {
    "unary": (lambda m, x: x.exp() + x.abs().add(1).log() - x.neg() + x.abs().sqrt() + x.abs().add(1).rsqrt(), "seq",
              [f"aten.{o}.default" for o in ("exp", "log", "abs", "neg", "sqrt", "rsqrt")]),
    "pow": (lambda m, x: x.pow(3) + x.pow(2) + x.abs().pow(0.5), "seq", ["aten.pow.Tensor_Scalar"]),
}

test_op_dynamic, test_op_static_fp32, test_op_bf16 = op_case_tests(CASES, bf16=["unary"])


# -- log1p, expm1 -------------------------------------------------------------------------------
def _special(dtype):
    """Ordinary values plus the edges: -1, 0, values whose exp underflows, and in fp32 +-inf and
    a value whose exp overflows (fp16 results that overflow are left out: verify's fp16
    end-to-end check does not compare infinities)."""
    if dtype == torch.float32:
        edges = [-1.0, 0.0, math.inf, -math.inf, 100.0, -120.0, 1e-30, -0.999]
    else:
        edges = [-0.999, 0.0, 1e-7, -1e-7, -20.0, 10.0, 6e-8, -0.5]
    return torch.cat([torch.randn(40) * 3, torch.tensor(edges)]).reshape(4, 12).to(dtype)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("op,fn", [("aten.log1p.default", lambda x: torch.log1p(x.clamp(min=_lowest(x)))),
                                   ("aten.expm1.default", torch.expm1)], ids=["log1p", "expm1"])
def test_log1p_expm1(op, fn, dtype):
    compile_and_verify(Fn(fn), [_special(dtype)], expect_ops=[op], full=True)


def _lowest(x):
    return -1.0 if x.dtype == torch.float32 else -0.999  # log1p(-1) is -inf


@pytest.mark.parametrize("op,fn", [("aten.log1p.default", torch.log1p), ("aten.expm1.default", torch.expm1)],
                         ids=["log1p", "expm1"])
def test_log1p_expm1_keep_digits_near_zero(op, fn):
    # |x| < 1e-7: 1 + x and exp(x) round to 1 in fp32, so log(1 + x) and exp(x) - 1 lose every
    # digit; scaled by 1e7 the results are O(1), and any tolerance sees the difference.
    x = (torch.rand(6, 10) - 0.5) * 2e-7
    naive = (torch.log(1 + x) if op == "aten.log1p.default" else torch.exp(x) - 1) * 1e7
    assert (naive - fn(x) * 1e7).abs().max() > 0.1  # the check below can fail
    compile_and_verify(Fn(lambda t: fn(t) * 1e7), [x], expect_ops=[op], full=True)


def test_softplus_dynamic_batch():
    # softplus decomposes to where(x > threshold, x, log1p(exp(x))).
    spec = batch_spec((4, 6))
    compile_and_verify(Fn(lambda x: F.softplus(x * 3)), [spec], runs((1, 6), (7, 6)),
                       expect_ops=["aten.log1p.default"], full=True)


# -- pow with an integer operand: Bloom's ALiBi slopes, base ** arange(1, n + 1, dtype=int32) ------
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_pow_integer_exponent(dtype):
    def alibi(x):
        powers = torch.arange(1, x.shape[1] + 1, dtype=torch.int32)   # symbolic length: built in the engine
        base = torch.tensor(0.5, dtype=dtype)
        return x * torch.pow(base, powers)

    spec = Input(min_shape=(2, 2), opt_shape=(2, 5), max_shape=(2, 8), dtype=dtype)
    compile_and_verify(Fn(alibi), [spec], [[torch.randn(2, 3).to(dtype)], [torch.randn(2, 8).to(dtype)]],
                       expect_ops=["aten.pow.Tensor_Tensor"], full=True)


def test_pow_integer_base_float_exponent():
    module = Fn(lambda n, e: torch.pow(n, e))
    compile_and_verify(module, [torch.randint(1, 5, (3, 4), dtype=torch.int32), torch.rand(3, 4) * 2],
                       expect_ops=["aten.pow.Tensor_Tensor"], full=True)
