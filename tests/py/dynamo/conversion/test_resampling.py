"""Resampling: nearest and bilinear upsampling, grid_sampler_2d (every mode, padding and
alignment; dynamic batch; a spatial transformer), bicubic left in PyTorch with a reason."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from torch_tensorrt_rtx import Input

from tests.py.dynamo.conversion.harness import Fn, batch_spec, compile_and_verify, op_case_tests, runs


FLOATS = [torch.float32, torch.float16]


# name -> (function of (module, x), input kind, ops that must be converted); harness.op_case_tests
CASES = {
    "upsample_nearest": (lambda m, x: F.interpolate(x, scale_factor=2, mode="nearest")[:, :, ::2, ::2]
                         + F.interpolate(x, size=(4, 4), mode="nearest")[:, :, :1, :1], "image",
                         ["aten.upsample_nearest2d.vec"]),
    "upsample_bilinear": (lambda m, x: F.interpolate(x, scale_factor=2, mode="bilinear")
                          + F.interpolate(x, size=(16, 16), mode="bilinear", align_corners=True), "image",
                          ["aten.upsample_bilinear2d.vec"]),
}

test_op_dynamic, test_op_static_fp32, test_op_bf16 = op_case_tests(CASES, bf16=["upsample_bilinear"])


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


@pytest.mark.parametrize("dtype", FLOATS)
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
    compile_and_verify(_SpatialTransformer().eval(), [batch_spec((2, 3, 8, 8))], runs((1, 3, 8, 8), (6, 3, 8, 8)),
                       expect_ops=["aten.grid_sampler_2d.default"], full=True)


def test_grid_sample_bicubic_stays_in_pytorch_with_a_reason():
    module = Fn(lambda x, g: F.grid_sample(x, g, mode="bicubic", align_corners=False) * 2)
    _, report, _ = compile_and_verify(module, [torch.randn(1, 2, 4, 4), _grid(1, 1.0, torch.float32)])
    assert "no converter accepts it" in report.fallback_reasons["aten.grid_sampler_2d.default"], report.format()
