"""The torch.compile backend never takes the user's model down: a failure planted at each stage
leaves the graph to PyTorch with a FallbackWarning naming the stage and the reason; with
pass_through_build_failures=True the same failure raises. Plus the two crashes seen on
torchvision detection / optical-flow models, reproduced with small models."""
from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn as nn

import torch_tensorrt_rtx as trtx
from torch_tensorrt_rtx.dynamo import _compiler, _dynamo_aten, _export, backend
from torch_tensorrt_rtx.dynamo._summary import FallbackWarning
from torch_tensorrt_rtx.dynamo.conversion import _lazy_network

OPTIONS = {"min_block_size": 1, "progress": False}


pytestmark = pytest.mark.usefixtures("fresh_dynamo")


class Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        return torch.relu(self.fc(x)) * 2


class Planted(RuntimeError):
    pass


def _boom(*args, **kwargs):
    raise Planted("planted failure 1234")


# stage named in the warning, where to plant the failure
STAGES = {
    "input mapping": (backend, "_tensor_input_specs"),
    "export": (_dynamo_aten, "trace_dynamo_graph"),  # dynamo's graph to ATen (export_aten: see below)
    "lowering": (_compiler, "lower"),
    "partitioning": (_compiler, "partition"),
    "packaging": (_compiler, "_package"),
}


def _fallback_warnings(caught):
    return [str(w.message) for w in caught if issubclass(w.category, FallbackWarning)]


def _runs_like_eager(model, x, options=OPTIONS):
    """torch.compile `model`, call it on `x`, check the result is eager's; the FallbackWarnings."""
    fast = torch.compile(model, backend="tensorrt_rtx", options=options)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.testing.assert_close(fast(x), model(x))
    return _fallback_warnings(caught)


@pytest.mark.parametrize("stage", list(STAGES))
def test_failure_at_a_stage_leaves_the_graph_to_pytorch_with_a_warning(stage, monkeypatch):
    module, name = STAGES[stage]
    monkeypatch.setattr(module, name, _boom)
    messages = _runs_like_eager(Small().eval(), torch.randn(3, 8))
    assert any(f"{stage} failed" in m and "Planted: planted failure 1234" in m for m in messages), messages


@pytest.mark.parametrize("stage", list(STAGES))
def test_pass_through_build_failures_raises_the_planted_error(stage, monkeypatch):
    module, name = STAGES[stage]
    monkeypatch.setattr(module, name, _boom)
    fast = torch.compile(Small().eval(), backend="tensorrt_rtx",
                         options={**OPTIONS, "pass_through_build_failures": True})
    with pytest.raises(Exception, match="planted failure 1234") as info:
        fast(torch.randn(3, 8))
    assert isinstance(info.value, torch._dynamo.exc.BackendCompilerFailed)


@pytest.mark.parametrize("stage,module,name", [("conversion", _lazy_network, "build_network"),
                                               ("engine build", _compiler, "build_engine")])
def test_converter_and_build_failures_keep_nodes_in_pytorch_or_raise(stage, module, name, monkeypatch):
    """These two stages already fall back node by node: the graph runs, the warning gives the
    reason; pass_through_build_failures raises the original error instead."""
    monkeypatch.setattr(module, name, _boom)
    model = Small().eval()
    x = torch.randn(3, 8)
    messages = _runs_like_eager(model, x)
    assert any("planted failure 1234" in m for m in messages), messages
    torch._dynamo.reset()
    strict = torch.compile(model, backend="tensorrt_rtx", options={**OPTIONS, "pass_through_build_failures": True})
    with pytest.raises(torch._dynamo.exc.BackendCompilerFailed, match="planted failure 1234"):
        strict(x)


def test_bad_option_still_raises():
    fast = torch.compile(Small().eval(), backend="tensorrt_rtx", options={**OPTIONS, "compute_capabilities": ["SM1"]})
    with pytest.raises(torch._dynamo.exc.BackendCompilerFailed, match="unknown compute capability"):
        fast(torch.randn(3, 8))


def test_pass_through_build_failures_in_trtx_compile(monkeypatch):
    monkeypatch.setattr(_lazy_network, "build_network", _boom)
    model = Small().eval()
    with pytest.warns(FallbackWarning, match="planted failure 1234"):
        compiled = trtx.compile(model, [torch.randn(2, 8)], min_block_size=1, progress=False)
    assert not compiled.compile_report.engines
    with pytest.raises(Planted):
        trtx.compile(model, [torch.randn(2, 8)], min_block_size=1, progress=False, pass_through_build_failures=True)


class SplitBySizes(nn.Module):
    """torchvision's RPN splits the anchors' scores by per-level counts (Python ints): export
    replaced the dynamic size by the constant 3375, which crashed the backend."""

    def forward(self, scores, sizes):
        return [part * 2 for part in scores.relu().split(sizes, 1)]


def test_constant_dim_from_export_is_a_guarded_static_size():
    model = SplitBySizes().eval()
    fast = torch.compile(model, backend="tensorrt_rtx", dynamic=True, options=OPTIONS)
    with warnings.catch_warnings(record=True) as caught, trtx.compile_reports() as reports:
        warnings.simplefilter("always")
        for batch in (2, 3):  # dim 1 is fixed at 3375 with a guard; the batch stays dynamic
            report = trtx.verify(fast, torch.randn(batch, 3375), [2700, 675], reference_module=model)
            assert report.ok, str(report)
    assert not any("failed" in m for m in _fallback_warnings(caught)), _fallback_warnings(caught)
    assert len(reports) == 1 and reports[0].engines[0].input_ranges == ["{0: (2, 2, 4096)}"], reports[0].format()


def test_torch_export_internal_assertion_falls_back(monkeypatch):
    """raft_small: torch.export's own "Expected a constraint on s17 instead of on 57" (an
    AssertionError inside its constraint solver). Whatever export raises, the graph runs."""

    def export_bug(*args, **kwargs):
        raise AssertionError("Expected a constraint on s17 instead of on 57")

    def declined(*args, **kwargs):  # the fast path leaves the graph to torch.export (a mutation, say)
        raise _dynamo_aten.NotTraced("planted: not traced")

    monkeypatch.setattr(_dynamo_aten, "trace_dynamo_graph", declined)
    monkeypatch.setattr(_export, "export_aten", export_bug)
    messages = _runs_like_eager(Small().eval(), torch.randn(5, 8))
    assert any("export failed" in m and "Expected a constraint on s17" in m for m in messages), messages
