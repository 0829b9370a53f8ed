"""Converters added for ops that fell back on popular models outside the acceptance zoo
(benchmarks/model_sweep.py finds them): each builds a real engine and is compared with eager
PyTorch through the reference executor."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from torch_tensorrt_rtx import Input

from tests.py.dynamo.conversion.harness import compile_and_verify


class Fn(nn.Module):
    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, *xs):
        return self.fn(*xs)


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
