"""The program cache's key is traced before torch.export only when a marker says the cache may hold
the program; otherwise on a worker thread beside the engine build (_program_key_pending.py), with the
module kept in eval mode and its own tensors back before compile returns."""
from __future__ import annotations

import threading
import time

import pytest
import torch

import torch_tensorrt_rtx as trtx
from torch_tensorrt_rtx import _program_key_pending
from torch_tensorrt_rtx._program_cache import OFF_SWITCH_ENV as PROGRAM_OFF_ENV
from torch_tensorrt_rtx._program_key_pending import MARKER_PAYLOAD
from torch_tensorrt_rtx.dynamo._engine_cache import OFF_SWITCH_ENV
from torch_tensorrt_rtx.dynamo._program_key import fast_key
from torch_tensorrt_rtx.dynamo._settings import CompilationSettings
from torch_tensorrt_rtx.dynamo._weight_digests import WeightDigests

from .test_program_cache import SPEC, _compile, _entries, _hit, _model, _program_entries


@pytest.fixture(autouse=True)
def cache_enabled(monkeypatch):
    monkeypatch.delenv(OFF_SWITCH_ENV, raising=False)  # tests/py/conftest.py switches it off
    monkeypatch.delenv(PROGRAM_OFF_ENV, raising=False)


@pytest.fixture
def traces(monkeypatch):
    """Each trace of the key: (thread name, module.training)."""
    seen = []
    real = _program_key_pending.trace_text

    def recorded(module, *args):
        seen.append((threading.current_thread().name, module.training))
        return real(module, *args)

    monkeypatch.setattr(_program_key_pending, "trace_text", recorded)
    return seen


def test_a_cold_compile_traces_beside_the_build_and_stores_the_program_with_its_marker(tmp_path, traces):
    model = _model()
    cold = _compile(model, tmp_path)
    assert not _hit(cold)
    assert traces == [("trtx-program-key", False)]  # on the worker, in eval mode
    (program,) = _program_entries(tmp_path)
    assert len(_entries(tmp_path, MARKER_PAYLOAD)) == 1
    expected = fast_key(model, [SPEC], {}, CompilationSettings.from_options(
        {"engine_cache_dir": str(tmp_path), "progress": False}), WeightDigests())
    assert program.name.startswith(expected)  # the same key as traced before export
    traces.clear()
    hit = _compile(model, tmp_path)
    assert _hit(hit) and traces == [("MainThread", False)]  # the marker: traced first, then loaded


def test_without_its_marker_a_stored_program_is_compiled_again_and_the_marker_comes_back(tmp_path, traces):
    model = _model()
    _compile(model, tmp_path)
    (marker,) = _entries(tmp_path, MARKER_PAYLOAD)
    marker.unlink()  # evicted, say
    again = _compile(model, tmp_path)
    # Its engine comes from the engine cache: no build to trace beside, so traced after the compile.
    assert not _hit(again) and [name for name, _ in traces] == ["trtx-program-key", "MainThread"]
    assert again.compile_report.engine_cache_hits == 1
    assert len(_entries(tmp_path, MARKER_PAYLOAD)) == 1
    assert _hit(_compile(model, tmp_path))


def test_a_module_in_train_mode_is_traced_in_eval_mode_and_given_back_in_train_mode(tmp_path, traces):
    model = _model().train()
    _compile(model, tmp_path)
    assert traces == [("trtx-program-key", False)] and model.training


def test_a_failed_compile_waits_for_the_trace_and_gives_the_module_back_whole(tmp_path, monkeypatch):
    from torch_tensorrt_rtx.dynamo import _compiler

    real = _program_key_pending.trace_text
    monkeypatch.setattr(_program_key_pending, "trace_text", lambda *a: (time.sleep(0.5), real(*a))[1])

    def failing_build(*args, **kwargs):
        raise RuntimeError("the build failed")

    monkeypatch.setattr(_compiler, "build_engine", failing_build)
    model = _model().train()
    weights = [p for p in model.parameters()]
    with pytest.raises(RuntimeError, match="the build failed"):
        _compile(model, tmp_path, pass_through_build_failures=True)
    assert [p for p in model.parameters()] == weights and all(p.device.type == "cpu" for p in weights)
    assert model.training


def test_under_autocast_the_key_is_traced_on_the_callers_thread(tmp_path, traces):
    model = _model()
    with torch.autocast("cpu", enabled=True, dtype=torch.bfloat16):
        _compile(model, tmp_path)
    assert [name for name, _ in traces] == ["MainThread"]
    assert len(_program_entries(tmp_path)) == 1
