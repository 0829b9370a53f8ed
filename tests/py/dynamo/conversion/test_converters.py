"""Every converter: build a real TensorRT-RTX engine, run it through the reference executor and
compare with eager PyTorch within dtype tolerances (static and dynamic shapes)."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from torch_tensorrt_rtx import Input

from tests.py.dynamo.conversion.harness import compile_and_verify

DTYPES = [torch.float32, torch.float16, torch.bfloat16]


class Fn(nn.Module):
    def __init__(self, fn, *params):
        super().__init__()
        self.fn = fn
        self.params = nn.ParameterList([nn.Parameter(p, requires_grad=False) for p in params])

    def forward(self, *xs):
        return self.fn(*xs, *self.params)


def _x(*shape, dtype=torch.float32):
    return torch.randn(*shape).to(dtype)


ACTIVATIONS = [
    ("aten.relu.default", torch.relu),
    ("aten.sigmoid.default", torch.sigmoid),
    ("aten.tanh.default", torch.tanh),
    ("aten.gelu.default", F.gelu),
    ("aten.gelu.default", lambda x: F.gelu(x, approximate="tanh")),
    ("aten.silu.default", F.silu),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op,fn", ACTIVATIONS)
def test_activation(op, fn, dtype):
    compile_and_verify(Fn(fn), [_x(2, 8, dtype=dtype)], expect_ops=[op])


ELEMENTWISE = [
    ("aten.add.Tensor", lambda a, b: a + b, (4, 8), (8,)),
    ("aten.sub.Tensor", lambda a, b: a - b, (4, 1, 8), (3, 1)),
    ("aten.mul.Tensor", lambda a, b: a * b, (2, 3), (2, 3)),
    ("aten.div.Tensor", lambda a, b: a / (b.abs() + 1), (2, 3, 4), (1, 4)),
    ("aten.add.Tensor", lambda a, b: torch.add(a, b, alpha=2), (5,), (5,)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op,fn,sa,sb", ELEMENTWISE)
def test_elementwise_broadcast(op, fn, sa, sb, dtype):
    compile_and_verify(Fn(fn), [_x(*sa, dtype=dtype), _x(*sb, dtype=dtype)], expect_ops=[op])


@pytest.mark.parametrize("dtype", DTYPES)
def test_elementwise_scalars(dtype):
    fn = Fn(lambda x: ((x * 3 + 1.5) - 2) / 4)
    compile_and_verify(fn, [_x(3, 4, dtype=dtype)], expect_ops=["aten.mul.Tensor", "aten.add.Tensor",
                                                                  "aten.sub.Tensor", "aten.div.Tensor"])


def test_elementwise_dynamic_batch():
    fn = Fn(lambda x, w: x * w + 1, torch.randn(16))
    spec = Input(min_shape=(1, 16), opt_shape=(4, 16), max_shape=(32, 16))
    compile_and_verify(fn, [spec], run_inputs=[[_x(1, 16)], [_x(7, 16)], [_x(32, 16)]],
                       expect_ops=["aten.mul.Tensor"])


@pytest.mark.parametrize("dtype", DTYPES)
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


@pytest.mark.parametrize("dtype", DTYPES)
def test_conv2d(dtype):
    conv = nn.Conv2d(3, 6, 3, stride=2, padding=1, dilation=1, groups=1).to(dtype)
    compile_and_verify(conv, [_x(2, 3, 9, 9, dtype=dtype)], expect_ops=["aten.convolution.default"])


def test_conv2d_grouped_dilated_dynamic():
    conv = nn.Conv2d(4, 8, 3, padding=2, dilation=2, groups=2)
    spec = Input(min_shape=(1, 4, 8, 8), opt_shape=(2, 4, 8, 8), max_shape=(4, 4, 8, 8))
    compile_and_verify(conv, [spec], run_inputs=[[_x(1, 4, 8, 8)], [_x(4, 4, 8, 8)]],
                       expect_ops=["aten.convolution.default"])


@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_norm_inference(dtype):
    bn = nn.BatchNorm2d(5)
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    bn.weight.data.uniform_(0.5, 1.5)
    compile_and_verify(nn.Sequential(bn).to(dtype), [_x(2, 5, 4, 4, dtype=dtype)],
                       expect_ops=["aten.batch_norm.default"])


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool2d(dtype):
    compile_and_verify(nn.MaxPool2d(3, stride=2, padding=1), [_x(2, 3, 9, 9, dtype=dtype)],
                       expect_ops=["aten.max_pool2d.default"])


@pytest.mark.parametrize("out", [(1, 1), (2, 3)])
def test_adaptive_avg_pool2d(out):
    compile_and_verify(nn.AdaptiveAvgPool2d(out), [_x(2, 3, 8, 9)], expect_ops=["aten.adaptive_avg_pool2d.default"])


def test_adaptive_avg_pool2d_dynamic_spatial_falls_back():
    # Uneven windows need the spatial size at build time (test_sweep_converters covers static ones).
    spec = Input(min_shape=(1, 2, 6, 8), opt_shape=(1, 2, 8, 8), max_shape=(1, 2, 10, 8))
    compiled, report, _ = compile_and_verify(
        Fn(lambda x: F.adaptive_avg_pool2d(torch.relu(x), (3, 3)) + 1), [spec], [[_x(1, 2, 8, 8)], [_x(1, 2, 10, 8)]])
    assert "aten.adaptive_avg_pool2d.default" in report.fallback_ops


def test_flatten_view_reshape_dynamic():
    fn = Fn(lambda x: torch.flatten(x, 1).view(-1, 6, 4).reshape(x.shape[0], 24) * 2)
    spec = Input(min_shape=(1, 2, 3, 4), opt_shape=(3, 2, 3, 4), max_shape=(16, 2, 3, 4))
    compile_and_verify(fn, [spec], run_inputs=[[_x(1, 2, 3, 4)], [_x(5, 2, 3, 4)], [_x(16, 2, 3, 4)]],
                       expect_ops=["aten.view.default"])


def test_permute_unsqueeze_squeeze():
    fn = Fn(lambda x: x.permute(2, 0, 1).unsqueeze(1).squeeze(1).transpose(0, 2) + 1)
    compile_and_verify(fn, [_x(2, 3, 4)], expect_ops=["aten.permute.default"])


@pytest.mark.parametrize("dtype", DTYPES)
def test_cat(dtype):
    fn = Fn(lambda a, b: torch.cat([a, b, a], dim=1) * 1)
    compile_and_verify(fn, [_x(2, 3, dtype=dtype), _x(2, 5, dtype=dtype)], expect_ops=["aten.cat.default"])


def test_cat_dynamic_axis():
    fn = Fn(lambda a, b: torch.cat([a, b], dim=0) + 1)
    spec = Input(min_shape=(1, 4), opt_shape=(2, 4), max_shape=(8, 4))
    compiled, _, _ = compile_and_verify(fn, [spec, spec], run_inputs=[[_x(3, 4), _x(5, 4)]])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [-1, 0])
def test_softmax(dtype, dim):
    compile_and_verify(Fn(lambda x: torch.softmax(x, dim=dim)), [_x(3, 7, dtype=dtype)],
                       expect_ops=["aten.softmax.int"])


@pytest.mark.parametrize("src,dst", [(torch.float32, torch.float16), (torch.float16, torch.float32),
                                     (torch.float32, torch.bfloat16), (torch.bfloat16, torch.float32),
                                     (torch.float32, torch.int32)])
def test_cast(src, dst):
    compile_and_verify(Fn(lambda x: (x * 4).to(dst)), [_x(3, 5, dtype=src)], expect_ops=["aten._to_copy.default"])


def test_mean_reduction():
    compile_and_verify(Fn(lambda x: x.mean(dim=(-1, -2), keepdim=True) + x.sum(dim=1, keepdim=True)),
                       [_x(2, 3, 4)], expect_ops=["aten.mean.dim", "aten.sum.dim_IntList"])
