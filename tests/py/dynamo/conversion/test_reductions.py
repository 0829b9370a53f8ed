"""Reductions: sum/mean/amax/amin/max/min/argmax/argmin/any/all, softmax (with a dtype too),
cumsum (float, int, bool), vector norms (every order, fp16 squares past fp16's range)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from torch_tensorrt_rtx import Input

from tests.py.dynamo.conversion.harness import Fn, compile_and_verify, op_case_tests


ALL_FLOATS = [torch.float32, torch.float16, torch.bfloat16]


def _x(*shape, dtype=torch.float32):
    return torch.randn(*shape).to(dtype)


@pytest.mark.parametrize("dtype", ALL_FLOATS)
@pytest.mark.parametrize("dim", [-1, 0])
def test_softmax(dtype, dim):
    compile_and_verify(Fn(lambda x: torch.softmax(x, dim=dim)), [_x(3, 7, dtype=dtype)],
                       expect_ops=["aten.softmax.int"])


# -- softmax(x, dim, dtype=...): Bloom, Gemma-2 and Funnel attention -----------------------------
@pytest.mark.parametrize("in_dtype,out_dtype", [(torch.float16, torch.float32), (torch.float32, torch.float16),
                                                (torch.float32, torch.float32)])
def test_softmax_with_dtype(in_dtype, out_dtype):
    module = Fn(lambda x: F.softmax(x * 4, dim=-1, dtype=out_dtype))
    _, report, _ = compile_and_verify(module, [torch.randn(2, 3, 5, 7).to(in_dtype)], expect_ops=["aten.softmax.int"],
                                      full=True)
    assert report.engines


def test_mean_reduction():
    compile_and_verify(Fn(lambda x: x.mean(dim=(-1, -2), keepdim=True) + x.sum(dim=1, keepdim=True)),
                       [_x(2, 3, 4)], expect_ops=["aten.mean.dim", "aten.sum.dim_IntList"])


# name -> (function of (module, x), input kind, ops that must be converted); harness.op_case_tests
CASES = {
    "reduce_minmax": (lambda m, x: x.amax(-1) + x.amin(1, keepdim=True).squeeze(1)[:, :1] + x.max(-1).values
                      + x.min(-1)[0] + x.max() - x.min(), "seq",
                      ["aten.amax.default", "aten.amin.default", "aten.max.dim", "aten.max.default"]),
    "argmax": (lambda m, x: torch.stack([x.argmax(-1), x.argmin(1)[:, :1].expand(-1, x.shape[1]),
                                         x.max(-1)[1]]), "seq",
               ["aten.argmax.default", "aten.argmin.default", "aten.max.dim"]),
    "sum_mean": (lambda m, x: x.sum() + x.mean() + x.sum(-1).mean(1, keepdim=True), "seq",
                 ["aten.sum.default", "aten.mean.default"]),
    "cumsum": (lambda m, x: torch.cumsum(x, 1) + x.cumsum(-1), "seq", ["aten.cumsum.default"]),
    "cumsum_int": (lambda m, x: ((x > 0).to(torch.int64).cumsum(1) * 2 - 1, (x > 0).to(torch.int32).cumsum(-1),
                                 x + (x < 0).long().cumsum(-1)), "seq", ["aten.cumsum.default"]),
    "any_all": (lambda m, x: (x > 1).any(-1).to(x.dtype) + (x > -2).all(-1).to(x.dtype), "seq",
                ["aten.any.dim", "aten.all.dim"]),
}

test_op_dynamic, test_op_static_fp32 = op_case_tests(CASES)


# -- EdgeNeXt's Fourier position encoding: bool cumsum, floor division ---------------------------
@pytest.mark.parametrize("out_dtype", [torch.float32, torch.int64, torch.int32])
def test_cumsum_bool(out_dtype):
    # (~mask).cumsum(1, dtype=...) and a plain bool cumsum (torch gives int64).
    module = Fn(lambda x: ((x > 0).cumsum(1, dtype=out_dtype), (x < 0.5).cumsum(-1)))
    x = torch.randn(2, 7, 9)
    compile_and_verify(module, [x], expect_ops=["aten.cumsum.default"], full=True)


def test_fourier_position_encoding():
    """timm's PositionalEncodingFourier (EdgeNeXt's) as one module: a bool mask's cumsum,
    arange, floor division, sin/cos, stacked and flattened."""
    from tests.py.models.zoo import import_torchvision

    import_torchvision()
    from timm.models.edgenext import PositionalEncodingFourier

    module = PositionalEncodingFourier(hidden_dim=8, dim=16).eval()
    module_fn = Fn(lambda x: module((x.shape[0], x.shape[2], x.shape[3])) + x)
    x = torch.randn(2, 16, 4, 5)
    compile_and_verify(module_fn, [x], expect_ops=["aten.cumsum.default"], full=True)


# -- linalg_vector_norm: F.normalize (EdgeNeXt's cross-covariance attention), ConvNeXt-V2's GRN ---
NORMS = [
    ("l2_last", lambda x: torch.linalg.vector_norm(x, dim=-1)),
    ("normalize", lambda x: F.normalize(x, dim=-1) * 3),
    ("grn", lambda x: torch.norm(x, p=2, dim=(1, 2), keepdim=True)),   # ConvNeXt-V2 GRN, NHWC
    ("l1_all", lambda x: torch.linalg.vector_norm(x, ord=1)),
    ("inf", lambda x: torch.linalg.vector_norm(x, ord=float("inf"), dim=1)),
    ("neg_inf", lambda x: torch.linalg.vector_norm(x, ord=float("-inf"), dim=(0, 2), keepdim=True)),
    ("p3", lambda x: torch.linalg.vector_norm(x, ord=3, dim=2)),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("name,fn", NORMS, ids=[n for n, _ in NORMS])
def test_vector_norm(dtype, name, fn):
    x = torch.randn(2, 5, 6, 4).to(dtype)
    compile_and_verify(Fn(fn), [x], expect_ops=["aten.linalg_vector_norm.default"], full=True)


def test_vector_norm_fp16_large_values():
    # Squares of fp16 values above 256 overflow fp16: the sum is taken in fp32, as torch does.
    x = (torch.randn(2, 64) * 600).half()
    compile_and_verify(Fn(lambda x: torch.linalg.vector_norm(x, dim=-1)), [x],
                       expect_ops=["aten.linalg_vector_norm.default"], full=True)


def test_vector_norm_dynamic():
    spec = Input(min_shape=(1, 2, 8), opt_shape=(2, 6, 8), max_shape=(4, 9, 8))
    compile_and_verify(Fn(lambda x: F.normalize(x, dim=1)), [spec],
                       [[torch.randn(1, 2, 8)], [torch.randn(4, 9, 8)]],
                       expect_ops=["aten.linalg_vector_norm.default"], full=True)
