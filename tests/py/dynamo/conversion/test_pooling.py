"""Pooling: max pool (ceil mode: windows past the edge), average pool (ceil mode, padding
counted or not, divisor override), adaptive average pool (even and uneven windows)."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from torch_tensorrt_rtx import Input

from tests.py.dynamo.conversion.harness import Fn, compile_and_verify, op_case_tests


ALL_FLOATS = [torch.float32, torch.float16, torch.bfloat16]


def _x(*shape, dtype=torch.float32):
    return torch.randn(*shape).to(dtype)


@pytest.mark.parametrize("dtype", ALL_FLOATS)
def test_max_pool2d(dtype):
    compile_and_verify(nn.MaxPool2d(3, stride=2, padding=1), [_x(2, 3, 9, 9, dtype=dtype)],
                       expect_ops=["aten.max_pool2d.default"])


# -- max_pool2d(ceil_mode=True): GoogLeNet, SqueezeNet ------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("kernel,stride,padding,side", [(3, 2, 0, 13), (3, 2, 1, 8), (2, 2, 0, 7), (3, 3, 1, 10)])
def test_max_pool2d_ceil_mode(dtype, kernel, stride, padding, side):
    # Windows hang past the right/bottom edge; negative inputs check the fill is -inf, not 0.
    module = Fn(lambda x: F.max_pool2d(x, kernel, stride, padding, ceil_mode=True))
    x = (torch.rand(2, 3, side, side + 1) - 2).to(dtype)
    _, report, _ = compile_and_verify(module, [x], expect_ops=["aten.max_pool2d.default"], full=True)
    assert not report.failed_nodes, report.format()


def test_max_pool2d_ceil_mode_dynamic_batch():
    module = Fn(lambda x: F.max_pool2d(x, 3, 2, ceil_mode=True))
    spec = Input(min_shape=(1, 2, 10, 10), opt_shape=(2, 2, 10, 10), max_shape=(4, 2, 10, 10))
    compile_and_verify(module, [spec], [[torch.randn(1, 2, 10, 10) - 3], [torch.randn(4, 2, 10, 10) - 3]],
                       expect_ops=["aten.max_pool2d.default"], full=True)


@pytest.mark.parametrize("out", [(1, 1), (2, 3)])
def test_adaptive_avg_pool2d(out):
    compile_and_verify(nn.AdaptiveAvgPool2d(out), [_x(2, 3, 8, 9)], expect_ops=["aten.adaptive_avg_pool2d.default"])


def test_adaptive_avg_pool2d_dynamic_spatial_falls_back():
    # Uneven windows need the spatial size at build time (test_adaptive_avg_pool2d_uneven: static ones).
    spec = Input(min_shape=(1, 2, 6, 8), opt_shape=(1, 2, 8, 8), max_shape=(1, 2, 10, 8))
    compiled, report, _ = compile_and_verify(
        Fn(lambda x: F.adaptive_avg_pool2d(torch.relu(x), (3, 3)) + 1), [spec], [[_x(1, 2, 8, 8)], [_x(1, 2, 10, 8)]])
    # its converter refuses, so it is decomposed; the decomposition's pooling op stays in PyTorch
    assert set(report.fallback_ops) == {"aten._adaptive_avg_pool2d.default"}, report.fallback_ops


# -- adaptive_avg_pool2d with uneven windows: VGG/AlexNet classifier heads at small inputs -------
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("side,out", [(1, (7, 7)), (8, (3, 3)), (5, (3, 2)), (13, (6, 6)), (6, (4, 3))])
def test_adaptive_avg_pool2d_uneven(dtype, side, out):
    # (1, (7, 7)) is vgg11 at 32x32; (6, (4, 3)) mixes an uneven dim with an even one.
    module = Fn(lambda x: F.adaptive_avg_pool2d(x, out))
    x = torch.randn(2, 3, side, side + 1 if side > 1 else 1).to(dtype)
    compile_and_verify(module, [x], expect_ops=["aten.adaptive_avg_pool2d.default"], full=True)


def test_adaptive_avg_pool2d_uneven_dynamic_batch():
    module = Fn(lambda x: F.adaptive_avg_pool2d(x, (4, 4)))
    spec = Input(min_shape=(1, 3, 7, 7), opt_shape=(2, 3, 7, 7), max_shape=(4, 3, 7, 7))
    compile_and_verify(module, [spec], [[torch.randn(1, 3, 7, 7)], [torch.randn(4, 3, 7, 7)]],
                       expect_ops=["aten.adaptive_avg_pool2d.default"], full=True)


# name -> (function of (module, x), input kind, ops that must be converted); harness.op_case_tests
CASES = {
    "avg_pool": (lambda m, x: F.avg_pool2d(x, 3, 1, 1, count_include_pad=False) + F.avg_pool2d(x, 2, 2).repeat(
        1, 1, 2, 2), "image", ["aten.avg_pool2d.default"]),
    "avg_pool_ceil": (lambda m, x: (F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False),
                                    F.avg_pool2d(x[..., :7, :7], 2, 2, ceil_mode=True),
                                    F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=True),
                                    F.avg_pool2d(x, 3, 3, 1, divisor_override=4)), "image",
                      ["aten.avg_pool2d.default"]),
}

test_op_dynamic, test_op_static_fp32 = op_case_tests(CASES)
