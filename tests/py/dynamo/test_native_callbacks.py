"""TensorRT-RTX's builder callbacks answered without Python when nobody listens
(dynamo/conversion/_native_callbacks.py): a build calls the Python logger only for warnings and
errors unless the TensorRT-RTX logger is enabled for DEBUG, and an unwatched build's steps and phases
never call the Python monitor; errors still reach Python; any other layout of the binding keeps the
Python callbacks."""
from __future__ import annotations

import logging
import sys

import pytest
import tensorrt_rtx as trt

from torch_tensorrt_rtx.dynamo.conversion import _native_callbacks, _vtable
from torch_tensorrt_rtx.dynamo.conversion._engine_builder import BuildProgress, build_engine
from torch_tensorrt_rtx.dynamo.conversion._interpreter import _PythonLogger, trt_logger
from torch_tensorrt_rtx.runtime._pybind import pybind_module

from .test_engine_streaming import _small_network

native = pybind_module()
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux") or native is None,
                                reason="native callbacks: Linux, with the package's _C built")


@pytest.fixture
def python_calls(monkeypatch):
    """Every call TensorRT-RTX makes into the Python logger and monitor: (kind, detail)."""
    calls = []
    real_log = _PythonLogger.log

    def log(self, severity, msg):
        calls.append(("log", severity))
        return real_log(self, severity, msg)

    monkeypatch.setattr(_PythonLogger, "log", log)
    for name in ("phase_start", "step_complete", "phase_finish"):
        real = getattr(BuildProgress, name)
        monkeypatch.setattr(BuildProgress, name, lambda self, *args, _real=real, _name=name: (
            calls.append((_name, args[0])), _real(self, *args))[1])
    return calls


def test_an_unwatched_build_calls_python_for_no_message_and_no_step(python_calls):
    assert trt_logger().native is not None
    dropped, finished = native.log_messages_dropped(), native.build_phases_finished()
    network_def = _small_network()
    python_calls.clear()
    engine, _ = build_engine(network_def, label="t", progress=False)
    assert len(engine) > 0
    assert python_calls == []
    assert native.log_messages_dropped() > dropped  # TensorRT-RTX did talk: verbose messages, dropped natively
    assert native.build_phases_finished() > finished  # and its phases reached the native monitor


def test_at_debug_level_every_message_and_step_reaches_python(python_calls, caplog):
    network_def = _small_network()
    python_calls.clear()
    with caplog.at_level(logging.DEBUG, logger="torch_tensorrt_rtx"):
        build_engine(network_def, label="t", progress=False)
    kinds = {kind for kind, _ in python_calls}
    assert ("log", trt.ILogger.VERBOSE) in python_calls and {"phase_start", "step_complete"} <= kinds
    assert any(r.name == "torch_tensorrt_rtx.tensorrt" for r in caplog.records)
    python_calls.clear()
    build_engine(network_def, label="t", progress=False)  # the level is read again at each build
    assert python_calls == []


def test_errors_and_warnings_still_reach_python():
    logger = trt_logger()
    logger.errors.clear()
    trt.ILogger.log(logger, trt.ILogger.VERBOSE, "a verbose message")
    trt.ILogger.log(logger, trt.ILogger.ERROR, "an error message")  # a virtual call, as TensorRT-RTX makes
    assert logger.errors == ["an error message"]


def test_the_off_switch_and_a_drawn_bar_keep_the_python_callbacks(monkeypatch):
    monkeypatch.setenv(_native_callbacks.OFF_SWITCH_ENV, "0")
    assert BuildProgress("t", draw=False).native is None
    assert _PythonLogger().native is None
    monkeypatch.delenv(_native_callbacks.OFF_SWITCH_ENV)
    assert BuildProgress("t", draw=False).native is not None

    class Terminal:
        def isatty(self):
            return True

    assert BuildProgress("t", stream=Terminal(), draw=True).native is None  # its steps draw the bar


def test_another_layout_keeps_the_python_callbacks_and_says_why(monkeypatch, caplog):
    """The TensorRT 10 headers' ILogger (log first, no IVersionedInterface) is not the binding's:
    the probe sees it, nothing crashes, and the process's logger keeps working."""
    monkeypatch.setattr(_native_callbacks, "_LOG_ENTRIES", 3)
    monkeypatch.setattr(_native_callbacks, "_LOG", 0)
    monkeypatch.setattr(_native_callbacks, "_PHASE_START", 3)
    with caplog.at_level(logging.DEBUG, logger=_native_callbacks.__name__):
        assert _PythonLogger().native is None
        assert BuildProgress("t", draw=False).native is None
    assert "probe" in caplog.text
    logger = trt_logger()
    logger.errors.clear()
    trt.ILogger.log(logger, trt.ILogger.ERROR, "still passed on")
    assert logger.errors == ["still passed on"]


def test_later_monitors_skip_the_checks_that_make_system_calls(monkeypatch):
    """Reading /proc/self/maps and resolving paths let a Python-busy thread take the GIL at each
    system call: once a class's layout was verified, its next objects are checked against that table."""
    assert BuildProgress("t", draw=False).native is not None  # verified (again) in this process

    def no_maps():
        raise AssertionError("/proc/self/maps read for a verified class")

    monkeypatch.setattr(_vtable, "_mappings", no_maps)
    monitor = BuildProgress("t", draw=False)
    assert monitor.native is not None
    monkeypatch.setattr(_vtable, "_VERIFIED", {})  # not verified: every check again
    with pytest.raises(AssertionError, match="maps"):
        BuildProgress("t", draw=False)
