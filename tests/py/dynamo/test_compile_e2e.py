"""End to end: torch.compile(backend="tensorrt_rtx") and torch_tensorrt_rtx.compile on small
models, partitioning with PyTorch fallback, settings, observability, bad input."""
from __future__ import annotations

import io
import logging

import pytest
import torch
import torch.nn as nn

import torch_tensorrt_rtx as trtx

from examples.models import MLP, SmallCNN, WithUnsupportedOp


@pytest.fixture(autouse=True)
def _reset_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


@pytest.mark.parametrize("model,shape", [(MLP(), (4, 16)), (SmallCNN(), (2, 3, 16, 16))])
def test_torch_compile_engines_match_eager(model, shape):
    model.eval()
    x = torch.randn(*shape)
    compiled = torch.compile(model, backend="tensorrt_rtx", dynamic=False,
                             options={"min_block_size": 1, "progress": False})
    with trtx.compile_reports() as reports:
        report = trtx.verify(compiled, x, reference_module=model)
    assert report.ok, str(report)
    assert len(report.engines) == 1 and report.engines[0].calls == 1
    assert len(reports) == 1
    assert not reports[0].fallback_ops, reports[0].format()


def test_torch_compile_unknown_option_is_a_clear_error():
    with pytest.raises(Exception, match="unknown torch_tensorrt_rtx option"):
        torch.compile(MLP().eval(), backend="tensorrt_rtx", options={"min_blok_size": 1})(torch.randn(2, 16))


def test_unsupported_op_partitions_into_trt_and_pytorch(caplog):
    model = WithUnsupportedOp().eval()
    with caplog.at_level(logging.INFO, logger="torch_tensorrt_rtx"):
        compiled = trtx.compile(model, [torch.randn(3, 8)], min_block_size=1, progress=False)
    report = compiled.compile_report
    assert len(report.engines) == 2, report.format()
    assert report.fallback_ops == {"trtx_tests.mystery.default": 1}
    targets = [n.target for n in compiled.graph.nodes if n.op == "call_function"]
    assert targets.count(torch.ops.tensorrt_rtx.execute_engine.default) == 2
    assert torch.ops.trtx_tests.mystery.default in targets
    assert "trtx_tests.mystery.default" in caplog.text and "2 TensorRT-RTX subgraph(s)" in caplog.text
    verification = trtx.verify(compiled, torch.randn(3, 8), reference_module=model)
    assert verification.ok, str(verification)


def test_min_block_size_keeps_small_blocks_in_pytorch():
    model = WithUnsupportedOp().eval()
    compiled = trtx.compile(model, [torch.randn(3, 8)], min_block_size=4, progress=False)
    report = compiled.compile_report
    # Before mystery: linear, relu, mul (3 ops) -> PyTorch; after: linear, sigmoid, add (3) -> PyTorch.
    assert not report.engines and report.fallback_ops["aten.relu.default"] == 1
    assert "min_block_size=4" in report.fallback_reasons["aten.relu.default"]


def test_torch_executed_ops_forces_fallback():
    compiled = trtx.compile(MLP().eval(), [torch.randn(2, 16)], min_block_size=1, progress=False,
                            torch_executed_ops=["aten.gelu.default"])
    report = compiled.compile_report
    assert report.fallback_ops == {"aten.gelu.default": 1}
    assert len(report.engines) == 2


def test_require_full_compilation_names_the_op():
    with pytest.raises(RuntimeError, match="trtx_tests.mystery.default"):
        trtx.compile(WithUnsupportedOp().eval(), [torch.randn(3, 8)], min_block_size=1, progress=False,
                     require_full_compilation=True)


def test_summary_and_build_progress(caplog):
    from torch_tensorrt_rtx.dynamo.conversion._engine_builder import BuildProgress

    stream = io.StringIO()
    monitor = BuildProgress("t", stream=stream)
    assert not monitor.interactive  # no progress bar unless stderr is a TTY
    with caplog.at_level(logging.DEBUG, logger="torch_tensorrt_rtx"):
        compiled = trtx.compile(SmallCNN().eval(), [torch.randn(1, 3, 8, 8)], min_block_size=1)
    engine = compiled.compile_report.engines[0]
    assert engine.engine_bytes > 1000 and engine.build_seconds > 0
    assert "build phase" in caplog.text, "TensorRT-RTX progress monitor reported no phases"
    assert "bytes" in caplog.text and "converted:" in caplog.text


def test_unsupported_dtype_falls_back():
    class F64(nn.Module):
        def forward(self, x):
            return (torch.relu(x) * 2 + 1).sum(dim=1)

    # float64 computes in float32 by default (test_float64.py); truncate_double=False keeps it here.
    compiled = trtx.compile(F64(), [torch.randn(2, 3, dtype=torch.float64)], min_block_size=1, progress=False,
                            truncate_double=False)
    report = compiled.compile_report
    assert not report.engines and "aten.relu.default" in report.fallback_ops
    assert "float64" in report.fallback_reasons["aten.relu.default"]
    x = torch.randn(2, 3, dtype=torch.float64)
    torch.testing.assert_close(compiled(x), F64()(x))  # all PyTorch: runs without a GPU


def test_data_dependent_shape_falls_back():
    class NonZero(nn.Module):
        def forward(self, x):
            idx = torch.nonzero(torch.relu(x) * 2)
            return idx.float() + 1

    compiled = trtx.compile(NonZero(), [torch.randn(4, 4)], min_block_size=1, progress=False)
    assert "aten.nonzero.default" in compiled.compile_report.fallback_ops


def test_non_tensor_input_is_a_clear_error():
    with pytest.raises(TypeError, match="input 1: expected torch_tensorrt_rtx.Input or a torch.Tensor"):
        trtx.compile(MLP().eval(), [torch.randn(2, 16), 3])


def test_non_tensor_output_stays_in_pytorch():
    class ShapeOut(nn.Module):
        def forward(self, x):
            y = torch.relu(x) * 2 + 1
            return y, y.shape[0]

    compiled = trtx.compile(ShapeOut(), [trtx.Input(min_shape=(1, 4), opt_shape=(2, 4), max_shape=(8, 4))],
                            min_block_size=1, progress=False)
    assert len(compiled.compile_report.engines) == 1
    report = trtx.verify(compiled, torch.randn(3, 4))  # runs the engine on CPU, the size in PyTorch
    assert report.ok and report.engines[0].calls == 1, str(report)


def test_bad_input_spec_is_rejected():
    with pytest.raises(ValueError, match="min <= opt <= max"):
        trtx.Input(min_shape=(4, 2), opt_shape=(2, 2), max_shape=(8, 2))


def test_torch_compile_dynamic_batch_builds_one_ranged_engine():
    model = MLP().eval()
    compiled = torch.compile(model, backend="tensorrt_rtx", dynamic=True,
                             options={"min_block_size": 1, "progress": False, "dynamic_max_size": 64})
    with trtx.compile_reports() as reports:
        for batch in (2, 5, 64):
            report = trtx.verify(compiled, torch.randn(batch, 16), reference_module=model)
            assert report.ok, str(report)
    assert len(reports) == 1, "recompiled for a new batch size"
    ranges = reports[0].engines[0].input_ranges
    assert ranges == ["{0: (2, 2, 64)}"], ranges


def test_compute_capabilities_are_configurable(static_mlp):
    compiled = trtx.compile(MLP().eval(), [torch.randn(2, 16)], min_block_size=1, progress=False,
                            compute_capabilities=["SM86", "sm120"])
    record = next(iter(trtx.engine_records(compiled).values()))
    assert record.target_capabilities == ["SM86", "SM120"] and record.compute_capabilities == "SM86%SM120"
    assert next(iter(trtx.engine_records(static_mlp).values())).compute_capabilities == "portable"
    with pytest.raises(ValueError, match="unknown compute capability 'SM90'"):
        trtx.compile(MLP().eval(), [torch.randn(2, 16)], min_block_size=1, compute_capabilities=["SM90"])


def test_progress_bar_only_on_a_terminal(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    trtx.compile(MLP().eval(), [torch.randn(2, 16)], min_block_size=1)
    assert "#" in terminal.getvalue() and "[_run_on_trt_0]" in terminal.getvalue()
    pipe = io.StringIO()
    monkeypatch.setattr("sys.stderr", pipe)
    trtx.compile(MLP().eval(), [torch.randn(2, 16)], min_block_size=1)
    assert "#" not in pipe.getvalue() and "_run_on_trt_0" not in pipe.getvalue()


def test_converter_crash_keeps_only_that_node_in_pytorch():
    from torch_tensorrt_rtx.dynamo.conversion import _registry
    from torch_tensorrt_rtx.dynamo.conversion._registry import converter

    @converter(torch.ops.aten.relu.default, priority=100)
    def exploding_relu(ctx, node, args, kwargs):
        raise RuntimeError("boom")

    try:
        model = WithUnsupportedOp().eval()
        with pytest.warns(UserWarning, match="aten.relu.default x1 .*boom"):
            compiled = trtx.compile(model, [torch.randn(3, 8)], min_block_size=1, progress=False)
    finally:
        entries = _registry._REGISTRY[torch.ops.aten.relu.default]
        entries[:] = [e for e in entries if e.fn is not exploding_relu]
    report = compiled.compile_report
    # linear | relu (crashed) | mul | mystery | linear, sigmoid, add: the neighbours still convert.
    assert len(report.engines) == 3 and report.fallback_ops.get("aten.relu.default") == 1, report.format()
    assert "boom" in report.failed_nodes["relu"], report.failed_nodes
    x = torch.randn(3, 8)
    assert trtx.verify(compiled, x, reference_module=model).ok


def test_compile_report_times_every_phase():
    import time

    from torch_tensorrt_rtx.dynamo._summary import PHASES

    start = time.perf_counter()
    compiled = trtx.compile(SmallCNN().eval(), [torch.randn(1, 3, 8, 8)], min_block_size=1)
    wall = time.perf_counter() - start
    phases = compiled.compile_report.phase_seconds
    assert set(phases) == set(PHASES), phases
    assert all(seconds >= 0 for seconds in phases.values())
    assert phases["engine build"] >= compiled.compile_report.engines[0].build_seconds * 0.5
    # The phases are disjoint slices of the compile: together they cannot exceed its wall time.
    assert sum(phases.values()) <= wall
