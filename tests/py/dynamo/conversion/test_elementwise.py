"""Elementwise arithmetic: add/sub/mul/div with broadcasting, Python scalars and a dynamic batch,
division with rounding modes, fmod/remainder (torch's sign rules), casts; constants in every
operand position."""
from __future__ import annotations

import pytest
import torch

from torch_tensorrt_rtx import Input

from tests.py.dynamo.conversion.harness import (Fn, all_inputs_test, compile_and_verify, constant_operand_test,
                                                floats, op_case_tests)


ALL_FLOATS = [torch.float32, torch.float16, torch.bfloat16]


def _x(*shape, dtype=torch.float32):
    return torch.randn(*shape).to(dtype)


ELEMENTWISE = [
    ("aten.add.Tensor", lambda a, b: a + b, (4, 8), (8,)),
    ("aten.sub.Tensor", lambda a, b: a - b, (4, 1, 8), (3, 1)),
    ("aten.mul.Tensor", lambda a, b: a * b, (2, 3), (2, 3)),
    ("aten.div.Tensor", lambda a, b: a / (b.abs() + 1), (2, 3, 4), (1, 4)),
    ("aten.add.Tensor", lambda a, b: torch.add(a, b, alpha=2), (5,), (5,)),
]


@pytest.mark.parametrize("dtype", ALL_FLOATS)
@pytest.mark.parametrize("op,fn,sa,sb", ELEMENTWISE)
def test_elementwise_broadcast(op, fn, sa, sb, dtype):
    compile_and_verify(Fn(fn), [_x(*sa, dtype=dtype), _x(*sb, dtype=dtype)], expect_ops=[op])


@pytest.mark.parametrize("dtype", ALL_FLOATS)
def test_elementwise_scalars(dtype):
    fn = Fn(lambda x: ((x * 3 + 1.5) - 2) / 4)
    compile_and_verify(fn, [_x(3, 4, dtype=dtype)], expect_ops=["aten.mul.Tensor", "aten.add.Tensor",
                                                                  "aten.sub.Tensor", "aten.div.Tensor"])


def test_elementwise_dynamic_batch():
    fn = Fn(lambda x, w: x * w + 1, torch.randn(16))
    spec = Input(min_shape=(1, 16), opt_shape=(4, 16), max_shape=(32, 16))
    compile_and_verify(fn, [spec], run_inputs=[[_x(1, 16)], [_x(7, 16)], [_x(32, 16)]],
                       expect_ops=["aten.mul.Tensor"])


@pytest.mark.parametrize("src,dst", [(torch.float32, torch.float16), (torch.float16, torch.float32),
                                     (torch.float32, torch.bfloat16), (torch.bfloat16, torch.float32),
                                     (torch.float32, torch.int32)])
def test_cast(src, dst):
    compile_and_verify(Fn(lambda x: (x * 4).to(dst)), [_x(3, 5, dtype=src)], expect_ops=["aten._to_copy.default"])


# name -> (function of (module, x), input kind, ops that must be converted); harness.op_case_tests
CASES = {
    "cast": (lambda m, x: (x > 0).to(x.dtype) + x.to(torch.float32).to(x.dtype) * (x * 4).to(torch.int32)
             .clamp(-3, 3).to(x.dtype), "seq", ["aten._to_copy.default"]),
}

test_op_dynamic, test_op_static_fp32 = op_case_tests(CASES)


# name -> (fn, operand makers, converted op, operand positions that may be constant)
CONSTANTS = {
    "add": (torch.add, [floats(4, 8), floats(8)], "aten.add.Tensor", (0, 1)),
    "sub": (torch.sub, [floats(2, 4, 8), floats(4, 8)], "aten.sub.Tensor", (0, 1)),
    "mul": (torch.mul, [floats(4, 8), floats(4, 8)], "aten.mul.Tensor", (0, 1)),
    "div": (lambda a, b: a / (b.abs() + 1), [floats(4, 8), floats(1, 8)], "aten.div.Tensor", (0,)),
    "pow": (lambda a, b: a.abs().add(0.5).pow(b), [floats(4, 8), floats(4, 8)], "aten.pow.Tensor_Tensor", (1,)),
    "maximum": (torch.maximum, [floats(4, 8), floats(4, 8)], "aten.maximum.default", (0, 1)),
}

test_constant_operand = constant_operand_test(CONSTANTS)


DIVISIONS = [
    ("floor_tensor", lambda a, b: torch.div(a, b, rounding_mode="floor")),
    ("trunc_tensor", lambda a, b: torch.div(a, b, rounding_mode="trunc")),
    ("floor_scalar", lambda a, b: torch.div(a, 3, rounding_mode="floor") + b),
    ("trunc_scalar", lambda a, b: torch.div(a, -2.5, rounding_mode="trunc") + b),
]


# An int tensor divided by a float scalar is float division, covered by the float dtypes.
_DIV_CASES = [pytest.param(dtype, name, fn, id=f"{name}-{str(dtype).split('.')[-1]}")
              for name, fn in DIVISIONS for dtype in (torch.float32, torch.float16, torch.int32, torch.int64)
              if not (name == "trunc_scalar" and not dtype.is_floating_point)]


@pytest.mark.parametrize("dtype,name,fn", _DIV_CASES)
def test_rounded_div(dtype, name, fn):
    a = (torch.randn(3, 8) * 20).to(dtype)
    b = torch.randint(1, 6, (3, 8)).mul(torch.tensor([1, -1]).repeat(4)).to(dtype)  # +-divisors, no zero
    _, report, _ = compile_and_verify(Fn(fn), [a, b], full=True)
    assert any(k.startswith("aten.div.") and k.endswith("_mode") for k in report.converted_op_counts), \
        report.format()


def _wide(*shape):
    """Operands spread over about +-15 (randn * 5)."""
    return floats(*shape, scale=5.0)


def _away_from_zero(*shape):
    """Divisors: |b| in [0.5, 2], either sign (a zero divisor has no defined remainder)."""
    return lambda dtype: ((torch.rand(*shape) * 1.5 + 0.5) * torch.where(torch.rand(*shape) > 0.5, 1, -1)).to(dtype)


def _int_operands(*shape):
    return lambda dtype: torch.randint(-50, 50, shape)


def _int_divisors(*shape):
    return lambda dtype: torch.randint(1, 7, shape) * torch.where(torch.rand(*shape) > 0.5, 1, -1)


# name -> (fn, operand makers, converted op, operand positions that may be constant)
MODULO = {
    "fmod_scalar": (lambda a: torch.fmod(a, 0.7), [_wide(4, 8)], "aten.fmod.Scalar", ()),
    "fmod_tensor": (torch.fmod, [_wide(4, 8), _away_from_zero(4, 8)], "aten.fmod.Tensor", (0, 1)),
    "remainder_scalar": (lambda a: torch.remainder(a, -0.6), [_wide(4, 8)], "aten.remainder.Scalar", ()),
    "remainder_tensor": (torch.remainder, [_wide(4, 8), _away_from_zero(8)], "aten.remainder.Tensor", (0, 1)),
}

test_modulo_inputs = all_inputs_test(MODULO)
test_modulo_constant_operand = constant_operand_test(MODULO)


@pytest.mark.parametrize("op,fn", [("aten.fmod.Tensor", torch.fmod), ("aten.remainder.Tensor", torch.remainder)])
def test_integer_modulo_matches_torch_sign_rules(op, fn):
    """fmod takes the dividend's sign, remainder the divisor's: both signs on both sides."""
    a, b = _int_operands(6, 8)(None), _int_divisors(6, 8)(None)
    compile_and_verify(Fn(fn), [a, b], expect_ops=[op])
