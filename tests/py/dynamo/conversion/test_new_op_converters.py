"""Converters for ops that real models outside the zoo hit (issue 19): repeat with symbolic
counts, log1p/expm1, flip, grid_sampler_2d and instance norm. Each builds a real engine and is
compared with eager PyTorch through the reference executor, static and with a dynamic batch."""
from __future__ import annotations

import math

import pytest
import tensorrt_rtx as trt
import torch
import torch.nn as nn
import torch.nn.functional as F

from torch_tensorrt_rtx import Input
from torch_tensorrt_rtx.dynamo.conversion._interpreter import trt_logger
from torch_tensorrt_rtx.dynamo.verification import run_network

from tests.py.dynamo.conversion.harness import compile_and_verify

DTYPES = [torch.float32, torch.float16]


class Fn(nn.Module):
    def __init__(self, fn, *params) -> None:
        super().__init__()
        self.fn = fn
        self.params = nn.ParameterList([nn.Parameter(p, requires_grad=False) for p in params])

    def forward(self, *xs):
        return self.fn(*xs, *self.params)


def _batch(shape, dtype=torch.float32, low=1, high=8):
    """A dynamic-batch spec for `shape` (dim 0 from `low` to `high`)."""
    rest = tuple(shape[1:])
    return Input(min_shape=(low,) + rest, opt_shape=(shape[0],) + rest, max_shape=(high,) + rest, dtype=dtype)


def _runs(*shapes, dtype=torch.float32, make=torch.randn):
    return [[make(*shape).to(dtype)] for shape in shapes]


# -- repeat whose counts are symbolic sizes ------------------------------------------------------
REPEATS = [
    ("batch_count", lambda x: x.repeat(x.shape[0], 1)),
    ("expression_and_new_dim", lambda x: x.repeat(2, x.shape[0] * 2, 1)),
    ("weight_by_batch", lambda x, w: x * w.repeat(x.shape[0], 2)),   # instance norm's weight.repeat(N)
    ("static_large", lambda x: x.repeat(1, 100)),                   # past the concatenating converter's 64
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,fn", REPEATS, ids=[n for n, _ in REPEATS])
def test_repeat_symbolic_counts_dynamic_batch(name, fn, dtype):
    params = [torch.randn(4)] if name == "weight_by_batch" else []
    module = Fn(fn, *params).to(dtype)
    _, report, _ = compile_and_verify(module, [_batch((3, 8), dtype)], _runs((1, 8), (5, 8), dtype=dtype),
                                      expect_ops=["aten.repeat.default"], full=True)
    assert not report.failed_nodes, report.format()


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


@pytest.mark.parametrize("dtype", DTYPES)
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
    spec = _batch((4, 6))
    compile_and_verify(Fn(lambda x: F.softplus(x * 3)), [spec], _runs((1, 6), (7, 6)),
                       expect_ops=["aten.log1p.default"], full=True)


# -- flip ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES + [torch.int64])
@pytest.mark.parametrize("dims", [(1,), (0, 2), (-1,), (0, 1, 2)])
def test_flip(dims, dtype):
    x = torch.randint(-50, 50, (3, 4, 5)).to(dtype)
    compile_and_verify(Fn(lambda t: t.flip(dims) * 2), [x], expect_ops=["aten.flip.default"], full=True)


@pytest.mark.parametrize("dims", [(0,), (1,), (0, 2)])
def test_flip_dynamic_batch(dims):
    # Flipping the dynamic dim itself starts from a size read at run time.
    compile_and_verify(Fn(lambda t: t.flip(dims) + 1), [_batch((3, 4, 5))], _runs((1, 4, 5), (6, 4, 5)),
                       expect_ops=["aten.flip.default"], full=True)


# -- grid_sampler_2d ----------------------------------------------------------------------------
def _grid(batch, spread, dtype):
    # Points inside and outside [-1, 1]; a spread of 3.5 reflects some points more than once.
    return ((torch.rand(batch, 6, 7, 2) * 2 - 1) * spread).to(dtype)


def _pixel_grid(batch, height, width, align_corners, dtype):
    """Points within 0.3 pixel of a pixel centre, from 3 pixels before the image to 3 after: the
    nearest pixel is never a near tie, so fp16's coarser coordinates pick the same one as fp32."""
    def normalized(size):
        pixel = torch.randint(-3, size + 3, (batch, 6, 7)).float() + (torch.rand(batch, 6, 7) - 0.5) * 0.6
        return pixel * 2 / (size - 1) - 1 if align_corners else (2 * pixel + 1) / size - 1
    return torch.stack([normalized(width), normalized(height)], dim=-1).to(dtype)


def _grid_for(mode, padding, align_corners, dtype, batch=2):
    if mode == "nearest":
        return _pixel_grid(batch, 5, 8, align_corners, dtype)
    return _grid(batch, 3.5 if padding == "reflection" else 1.3, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("padding", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_grid_sample(mode, padding, align_corners, dtype):
    module = Fn(lambda x, g: F.grid_sample(x, g, mode=mode, padding_mode=padding, align_corners=align_corners))
    x = torch.randn(2, 3, 5, 8).to(dtype)
    grid = _grid_for(mode, padding, align_corners, dtype)
    compile_and_verify(module, [x, grid], expect_ops=["aten.grid_sampler_2d.default"], full=True)


@pytest.mark.parametrize("mode,padding", [("bilinear", "zeros"), ("nearest", "reflection")])
def test_grid_sample_dynamic_batch(mode, padding):
    module = Fn(lambda x, g: F.grid_sample(x, g, mode=mode, padding_mode=padding, align_corners=False))
    # One batch dim shared by the image and the grid.
    batch = ("b", None, None, None)
    specs = [Input(min_shape=(1,) + rest, opt_shape=(2,) + rest, max_shape=(4,) + rest, dim_names=batch)
             for rest in [(3, 5, 8), (6, 7, 2)]]
    runs = [[torch.randn(b, 3, 5, 8), _grid_for(mode, padding, False, torch.float32, b)] for b in (1, 4)]
    compile_and_verify(module, specs, runs, expect_ops=["aten.grid_sampler_2d.default"], full=True)


class _SpatialTransformer(nn.Module):
    """A spatial transformer network's sampler: an affine grid predicted from the image."""

    def __init__(self) -> None:
        super().__init__()
        self.locate = nn.Linear(3 * 8 * 8, 6)
        nn.init.normal_(self.locate.weight, std=0.01)
        self.locate.bias.data = torch.tensor([1.0, 0.1, 0.05, -0.1, 0.9, 0.0])

    def forward(self, x):
        theta = self.locate(x.flatten(1)).view(-1, 2, 3)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, padding_mode="border", align_corners=False)


def test_spatial_transformer_dynamic_batch():
    compile_and_verify(_SpatialTransformer().eval(), [_batch((2, 3, 8, 8))], _runs((1, 3, 8, 8), (6, 3, 8, 8)),
                       expect_ops=["aten.grid_sampler_2d.default"], full=True)


def test_reference_grid_sample_matches_nvidias_worked_example():
    # The example on NVIDIA's GridSample operator page (LINEAR, FILL, align_corners=0), whose
    # expected output is given to 3 decimals: the reference executor models the layer, not torch.
    builder = trt.Builder(trt_logger())
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    image = network.add_input("image", trt.float32, (1, 1, 3, 3))
    grid = network.add_input("grid", trt.float32, (1, 4, 3, 2))
    layer = network.add_grid_sample(image, grid)
    layer.interpolation_mode, layer.sample_mode, layer.align_corners = (trt.InterpolationMode.LINEAR,
                                                                        trt.SampleMode.FILL, False)
    network.mark_output(layer.get_output(0))
    points = torch.tensor([[[-2.0, -1.83], [-1.67, -1.5], [-1.33, -1.17]],
                           [[-1.0, -0.83], [-0.67, -0.5], [-0.33, -0.17]],
                           [[0.0, 0.17], [0.33, 0.5], [0.67, 0.83]],
                           [[1.0, 1.17], [1.33, 1.5], [1.67, 1.83]]]).reshape(1, 4, 3, 2)
    feeds = {"image": torch.arange(9.0).reshape(1, 1, 3, 3), "grid": points}
    (out,) = run_network(network, feeds).values()
    expected = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.746, 2.74], [4.764, 6.744, 6.009], [0.979, 0.0, 0.0]])
    torch.testing.assert_close(out.reshape(4, 3), expected, atol=2e-3, rtol=0)


def test_grid_sample_bicubic_stays_in_pytorch_with_a_reason():
    module = Fn(lambda x, g: F.grid_sample(x, g, mode="bicubic", align_corners=False) * 2)
    _, report, _ = compile_and_verify(module, [torch.randn(1, 2, 4, 4), _grid(1, 1.0, torch.float32)])
    assert "no converter accepts it" in report.fallback_reasons["aten.grid_sampler_2d.default"], report.format()


# -- instance norm ------------------------------------------------------------------------------
def _with_statistics(module):
    if module.track_running_stats:
        module.running_mean.uniform_(-0.5, 0.5)
        module.running_var.uniform_(0.5, 1.5)
    if module.affine:
        nn.init.uniform_(module.weight, 0.5, 1.5)
        nn.init.uniform_(module.bias, -0.5, 0.5)
    return module


INSTANCE_NORMS = [
    ("plain_2d", lambda: nn.InstanceNorm2d(3), (2, 3, 5, 6)),
    ("affine_2d", lambda: nn.InstanceNorm2d(3, affine=True), (2, 3, 5, 6)),
    ("running_stats_2d", lambda: nn.InstanceNorm2d(3, affine=True, track_running_stats=True), (2, 3, 5, 6)),
    ("affine_1d", lambda: nn.InstanceNorm1d(4, affine=True), (2, 4, 9)),
    ("plain_3d", lambda: nn.InstanceNorm3d(2), (2, 2, 3, 4, 5)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,make,shape", INSTANCE_NORMS, ids=[n for n, _, _ in INSTANCE_NORMS])
def test_instance_norm(name, make, shape, dtype):
    module = _with_statistics(make()).eval().to(dtype)
    x = (torch.randn(*shape) * 3 + 1).to(dtype)
    compile_and_verify(module, [x], expect_ops=["aten.instance_norm.default"], full=True)


@pytest.mark.parametrize("name,make,shape", INSTANCE_NORMS[1:3], ids=[n for n, _, _ in INSTANCE_NORMS[1:3]])
def test_instance_norm_dynamic_batch(name, make, shape):
    module = _with_statistics(make()).eval()
    rest = shape[1:]
    compile_and_verify(module, [_batch(shape)], _runs((1,) + rest, (7,) + rest),
                       expect_ops=["aten.instance_norm.default"], full=True)


def test_functional_instance_norm_with_weights():
    fn = Fn(lambda x, w, b: F.instance_norm(x, weight=w, bias=b, eps=1e-3), torch.rand(3) + 0.5, torch.randn(3))
    compile_and_verify(fn, [torch.randn(2, 3, 4, 4)], expect_ops=["aten.instance_norm.default"], full=True)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("affine", [False, True])
def test_batch_norm_with_batch_statistics(affine, dtype):
    # F.batch_norm(training=True) without running statistics: _native_batch_norm_legit.no_stats.
    params = [torch.rand(3) + 0.5, torch.randn(3)] if affine else []
    fn = Fn(lambda x, *wb: F.batch_norm(x, None, None, *wb, training=True), *params).to(dtype)
    compile_and_verify(fn, [(torch.randn(4, 3, 5, 2) * 2).to(dtype)],
                       expect_ops=["aten._native_batch_norm_legit.no_stats"], full=True)


def test_decomposed_instance_norm_dynamic_batch():
    # torch's own decomposition of instance norm, written out: a (1, N*C, H, W) view, weights
    # repeated N times (a symbolic count) and batch norm over the batch's statistics.
    def decomposed(x, w, b):
        n, c = x.shape[0], x.shape[1]
        out = F.batch_norm(x.reshape(1, n * c, 5, 6), None, None, w.repeat(n), b.repeat(n), training=True)
        return out.reshape(n, c, 5, 6)

    module = Fn(decomposed, torch.rand(3) + 0.5, torch.randn(3))
    compile_and_verify(module, [_batch((2, 3, 5, 6))], _runs((1, 3, 5, 6), (6, 3, 5, 6)),
                       expect_ops=["aten._native_batch_norm_legit.no_stats", "aten.repeat.default"], full=True)
