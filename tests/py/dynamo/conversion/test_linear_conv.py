"""Matrix products and convolutions: linear, mm/bmm/addmm/matmul/baddbmm, conv1d/conv2d (grouped,
dilated, dynamic batch), transposed convolutions; constant operands of the matmuls."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from torch_tensorrt_rtx import Input

from tests.py.dynamo.conversion.harness import Fn, compile_and_verify, constant_operand_test, floats, op_case_tests


ALL_FLOATS = [torch.float32, torch.float16, torch.bfloat16]


def _x(*shape, dtype=torch.float32):
    return torch.randn(*shape).to(dtype)


@pytest.mark.parametrize("dtype", ALL_FLOATS)
def test_linear(dtype):
    compile_and_verify(nn.Linear(16, 8).to(dtype), [_x(4, 16, dtype=dtype)], expect_ops=["aten.linear.default"])


def test_linear_no_bias_3d_dynamic():
    spec = Input(min_shape=(1, 5, 16), opt_shape=(2, 5, 16), max_shape=(8, 5, 16))
    compile_and_verify(nn.Linear(16, 4, bias=False), [spec], run_inputs=[[_x(3, 5, 16)], [_x(8, 5, 16)]],
                       expect_ops=["aten.linear.default"])


@pytest.mark.parametrize("op,fn,shapes", [
    ("aten.mm.default", torch.mm, [(4, 6), (6, 3)]),
    ("aten.bmm.default", torch.bmm, [(2, 4, 6), (2, 6, 3)]),
    ("aten.addmm.default", lambda b, x, w: torch.addmm(b, x, w), [(3,), (4, 6), (6, 3)]),
    ("aten.matmul.default", torch.matmul, [(2, 4, 6), (6, 3)]),
])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_matmul_family(op, fn, shapes, dtype):
    compiled, report, _ = compile_and_verify(Fn(fn), [_x(*s, dtype=dtype) for s in shapes])
    assert not report.fallback_ops, report.format()


@pytest.mark.parametrize("dtype", ALL_FLOATS)
def test_conv2d(dtype):
    conv = nn.Conv2d(3, 6, 3, stride=2, padding=1, dilation=1, groups=1).to(dtype)
    compile_and_verify(conv, [_x(2, 3, 9, 9, dtype=dtype)], expect_ops=["aten.convolution.default"])


def test_conv2d_grouped_dilated_dynamic():
    conv = nn.Conv2d(4, 8, 3, padding=2, dilation=2, groups=2)
    spec = Input(min_shape=(1, 4, 8, 8), opt_shape=(2, 4, 8, 8), max_shape=(4, 4, 8, 8))
    compile_and_verify(conv, [spec], run_inputs=[[_x(1, 4, 8, 8)], [_x(4, 4, 8, 8)]],
                       expect_ops=["aten.convolution.default"])


# name -> (function of (module, x), input kind, ops that must be converted); harness.op_case_tests
CASES = {
    "bmm_baddbmm": (lambda m, x: torch.baddbmm(x[:, :, :1], x, x.transpose(1, 2)[:, :, :1], alpha=0.5, beta=2.0)
                    + torch.bmm(x, torch.ones(x.shape[0], 8, 3, dtype=x.dtype)).sum(-1, keepdim=True), "seq",
                    ["aten.baddbmm.default", "aten.bmm.default"]),
    "conv1d": (lambda m, x: F.conv1d(x.transpose(1, 2), m.w1d, padding=1, stride=1)
               + F.conv1d(x.transpose(1, 2), m.w1d, padding=2, dilation=2), "seq", ["aten.convolution.default"]),
    "conv_transpose": (lambda m, x: (F.conv_transpose2d(x, m.wt2d, stride=2, padding=1),
                                     F.conv_transpose2d(x, m.wt2d[:, :, :3, :3], stride=2, padding=1, output_padding=1),
                                     F.conv_transpose2d(x, m.wt2d[:, :1], stride=1)), "image",
                       ["aten.convolution.default"]),
    "conv_transpose1d": (lambda m, x: F.conv_transpose1d(x.transpose(1, 2), m.wt1d, stride=2, padding=1), "seq",
                         ["aten.convolution.default"]),
}

test_op_dynamic, test_op_static_fp32 = op_case_tests(CASES)


# name -> (fn, operand makers, converted op, operand positions that may be constant)
CONSTANTS = {
    "matmul": (torch.matmul, [floats(2, 4, 6), floats(6, 3)], "aten.matmul.default", (0, 1)),
    "mm": (torch.mm, [floats(4, 6), floats(6, 3)], "aten.mm.default", (0, 1)),
    "bmm": (torch.bmm, [floats(2, 4, 6), floats(2, 6, 3)], "aten.bmm.default", (0, 1)),
}

test_constant_operand = constant_operand_test(CONSTANTS)
