"""Exported programs in: compile(ep), compile(ep.module()) and compile(torch.export.export(...))
compile, verify, save and load like a module."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import torch_tensorrt_rtx as trtx


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x, bias=None):
        y = torch.relu(self.fc(x))
        return y if bias is None else y + bias


BATCH = torch.export.Dim("batch", min=1, max=16)


def _export(model, keyword=True):
    if keyword:
        return torch.export.export(model, (torch.randn(4, 8),), {"bias": torch.randn(4, 8)},
                                   dynamic_shapes={"x": {0: BATCH}, "bias": {0: BATCH}})
    return torch.export.export(model, (torch.randn(4, 8),), dynamic_shapes=({0: BATCH},))


def test_compile_exported_program_takes_its_inputs_and_ranges(tmp_path):
    model = Net().eval()
    compiled = trtx.compile(_export(model), min_block_size=1, progress=False)
    report = compiled.compile_report
    assert len(report.engines) == 1 and not report.fallback_ops, report.format()
    assert report.engines[0].input_ranges == ["{0: (1, 4, 16)}"] * 2  # one shared batch, from the Dim
    for batch in (1, 7, 16):
        x, bias = torch.randn(batch, 8), torch.randn(batch, 8)
        assert trtx.verify(compiled, x, bias=bias, reference_module=model).ok
    path = tmp_path / "ep.pt2"
    trtx.save(compiled, path)
    loaded = trtx.load(path)
    assert list(trtx.engine_records(loaded)) == ["_run_on_trt_0_engine"]
    assert trtx.engine_records(loaded)["_run_on_trt_0_engine"].engine == trtx.engine_records(compiled)[
        "_run_on_trt_0_engine"].engine


def test_compile_ep_module_with_inputs():
    """ep.module() refuses eval(): compile must not call it (it crashed with NotImplementedError)."""
    model = Net().eval()
    module = _export(model, keyword=False).module()
    spec = trtx.Input(min_shape=(1, 8), opt_shape=(4, 8), max_shape=(16, 8))
    compiled = trtx.compile(module, [spec], min_block_size=1, progress=False)
    assert len(compiled.compile_report.engines) == 1, compiled.compile_report.format()
    assert trtx.verify(compiled, torch.randn(5, 8), reference_module=model).ok


def test_compile_export_call_with_explicit_inputs_overrides_its_ranges():
    model = Net().eval()
    spec = trtx.Input(min_shape=(2, 8), opt_shape=(4, 8), max_shape=(8, 8))
    compiled = trtx.compile(torch.export.export(model, (torch.randn(4, 8),), dynamic_shapes=({0: BATCH},)),
                            [spec], min_block_size=1, progress=False)
    assert compiled.compile_report.engines[0].input_ranges == ["{0: (2, 4, 8)}"]
    assert trtx.verify(compiled, torch.randn(3, 8), reference_module=model).ok


def test_unbounded_exported_dim_asks_for_a_max():
    program = torch.export.export(Net().eval(), (torch.randn(4, 8),), dynamic_shapes=({0: torch.export.Dim("b")},))
    with pytest.raises(ValueError, match=r"input 0 dim 0 .* without an upper bound"):
        trtx.compile(program, progress=False)
