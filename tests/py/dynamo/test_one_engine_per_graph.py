"""torch.compile(backend="tensorrt_rtx", dynamic=True) builds one dynamic engine per graph where
torch_tensorrt_rtx.compile gives one: each test calls three batch sizes and counts the builds in
compile_reports(). A dim that cannot stay dynamic is specialized alone (never the batch with it)
and named in a WARNING. Engines are checked against eager with the CPU reference executor."""
from __future__ import annotations

import logging

import pytest
import torch
import torch.nn as nn

import torch_tensorrt_rtx as trtx
from torch_tensorrt_rtx import Input
from torch_tensorrt_rtx.dynamo._export import export_aten
from torch_tensorrt_rtx.dynamo.backend import DimSpecializedWarning

from examples.models import BertEncoderBlock, SmallCNN, example_inputs
from tests.py.models.zoo import deit_tiny

OPTIONS = {"min_block_size": 1, "progress": False, "dynamic_max_size": 64}
BACKEND_LOGGER = "torch_tensorrt_rtx.dynamo.backend"


def _builds(model: nn.Module, calls):
    """The CompileReport of each build while calling the dynamic=True compiled model with each of
    `calls`, every call verified against eager."""
    torch._dynamo.reset()
    compiled = torch.compile(model, backend="tensorrt_rtx", dynamic=True, options=OPTIONS)
    with trtx.compile_reports() as reports:
        for args in calls:
            verification = trtx.verify(compiled, *args, reference_module=model)
            assert verification.ok, str(verification)
            assert verification.engines and all(e.calls == 1 for e in verification.engines), str(verification)
    torch._dynamo.reset()
    return reports


def _specialization_warnings(caplog):
    return [r.getMessage() for r in caplog.records
            if r.levelno == logging.WARNING and "specialized" in r.getMessage()]


class _PairedRows(nn.Module):
    """A reshape whose guard relates the batch, the height and the width (``b*c*h*w ==
    b*c*2*(h//2)*w``): only the height has to be even, so only the height is specialized."""

    def forward(self, x):
        b, c, h, w = x.shape
        return torch.relu(x.reshape(b, c, h // 2, 2, w).sum(3))


def test_cnn_with_adaptive_pooling_one_engine_for_three_batches_and_a_warning_for_the_image_size(caplog):
    torch.manual_seed(0)
    model = SmallCNN().eval()
    with caplog.at_level(logging.WARNING, logger=BACKEND_LOGGER):
        reports = _builds(model, [[torch.randn(b, 3, 16, 16)] for b in (2, 3, 5)] + [[torch.randn(2, 3, 12, 12)]])
    # batches 2, 3, 5 share the first build; the new image size is the second build of the graph
    assert [r.build_of_graph for r in reports] == [1, 2], [r.format() for r in reports]
    assert reports[0].graph_id.split("/")[0] == reports[1].graph_id.split("/")[0], [r.graph_id for r in reports]
    assert all(len(r.engines) == 1 and not r.fallback_ops for r in reports), [r.format() for r in reports]
    # (2, 2, 15): dynamo's trace of a CPU convolution guards batch < 16 (its choice of CPU kernel)
    assert reports[0].engines[0].input_ranges[0].startswith("{0: (2, 2, 1"), reports[0].format()
    assert "build 2 of this graph" in reports[1].format()
    warnings = _specialization_warnings(caplog)
    assert len(warnings) == 2, warnings  # one per build
    assert "input 0 dim 2 = 16" in warnings[0] and "input 0 dim 3 = 16" in warnings[0], warnings[0]
    assert "input 0 dim 0" not in warnings[0] and "guard " in warnings[0], warnings[0]


def test_transformer_encoder_one_engine_for_three_batches_with_a_dynamic_sequence(caplog):
    torch.manual_seed(0)
    model = BertEncoderBlock().eval()
    with caplog.at_level(logging.WARNING, logger=BACKEND_LOGGER):
        reports = _builds(model, [example_inputs("bert", b, s) for b, s in ((2, 8), (3, 8), (4, 5))])
    assert len(reports) == 1, [r.format() for r in reports]
    assert not reports[0].fallback_ops, reports[0].format()
    ranges = reports[0].engines[0].input_ranges[0]
    assert "0: (2, 2, 64)" in ranges and "1: (2, 8, 64)" in ranges, ranges
    assert not _specialization_warnings(caplog)


def test_a_guard_on_batch_and_image_size_specializes_the_image_size_alone(caplog):
    model = _PairedRows()
    with caplog.at_level(logging.WARNING, logger=BACKEND_LOGGER):
        reports = _builds(model, [[torch.randn(b, 3, 16, 12)] for b in (2, 3, 4)])
    assert len(reports) == 1, [r.format() for r in reports]
    assert reports[0].engines[0].input_ranges == ["{0: (2, 2, 64), 1: (2, 3, 64), 3: (2, 12, 64)}"], \
        reports[0].format()
    warnings = _specialization_warnings(caplog)
    assert len(warnings) == 1 and "input 0 dim 2 = 16" in warnings[0], warnings
    assert "dim 0" not in warnings[0] and "dim 3" not in warnings[0], warnings[0]


def test_the_specialization_warning_is_a_python_warning_too():
    # The package logger has only a NullHandler: without logging configured, `warnings` is what shows.
    with pytest.warns(DimSpecializedWarning, match="input 0 dim 2 = 16"):
        _builds(_PairedRows(), [[torch.randn(2, 3, 16, 12)]])


def test_export_fixes_only_the_dim_the_guard_needs_fixed():
    spec = Input(min_shape=(2, 3, 2, 2), opt_shape=(3, 3, 16, 12), max_shape=(8, 3, 32, 32))
    exported = export_aten(_PairedRows(), [spec], allow_specialization=True)
    assert exported.specialized() == {(0, 2): 16}
    assert exported.dim_ranges[(0, 0)] == (2, 8) and exported.dim_ranges[(0, 3)] == (2, 32)
    assert "//2" in exported.fixed_by[(0, 2)], exported.fixed_by


def test_timm_vision_transformer_one_engine_for_three_batches():
    case = deit_tiny()
    reports = _builds(case.model, [case.make(b, 0)[0] for b in (2, 3, 4)])
    assert len(reports) == 1, [r.format() for r in reports]
    assert not reports[0].fallback_ops, reports[0].format()
    assert reports[0].engines[0].input_ranges[0].startswith("{0: (2, 2, "), reports[0].format()
