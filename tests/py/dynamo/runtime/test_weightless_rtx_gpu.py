"""Weightless engines on a real RTX GPU (run by scripts/rtx_acceptance.sh; skipped elsewhere):
a stripped build, a .pt2 holding each weight once, refit on first load, refit_module_weights."""
from __future__ import annotations

import warnings

import pytest
import torch

import torch_tensorrt_rtx as trtx

pytestmark = pytest.mark.rtx_gpu


def _model(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(256, 512), torch.nn.ReLU(), torch.nn.Linear(512, 64)).eval().cuda()


def _compile(model, x, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return trtx.compile(model, inputs=[x], min_block_size=1, progress=False, **options)


def test_weightless_pt2_refits_on_first_load(tmp_path):
    model, x = _model(0), torch.randn(8, 256, device="cuda")
    normal, weightless = tmp_path / "normal.pt2", tmp_path / "weightless.pt2"
    trtx.save(_compile(model, x), normal, inputs=[x])
    trtx.save(_compile(model, x, strip_engine_weights=True), weightless, inputs=[x])
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    ratio = weightless.stat().st_size / weight_bytes
    print(f"weightless .pt2: {weightless.stat().st_size} bytes = {ratio:.3f}x the weights "
          f"({weight_bytes} bytes); normal .pt2: {normal.stat().st_size} bytes")
    torch.testing.assert_close(trtx.load(weightless).module()(x), model(x), rtol=1e-2, atol=1e-2)


def test_refit_module_weights_on_gpu():
    model, x = _model(0), torch.randn(8, 256, device="cuda")
    compiled = _compile(model, x, immutable_weights=False)
    torch.testing.assert_close(compiled(x), model(x), rtol=1e-2, atol=1e-2)
    new = _model(1)
    trtx.dynamo.refit_module_weights(compiled, new, arg_inputs=[x], verify_output=True)
    torch.testing.assert_close(compiled(x), new(x), rtol=1e-2, atol=1e-2)
