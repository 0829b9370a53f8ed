"""TensorRT-RTX's builder callbacks answered without Python when nobody listens to them.

    table = quiet_logger(python_logger)          # VirtualTable, or None: every message calls Python
    set_log_limit(listening_at_debug)            # which messages still reach Python
    table = quiet_monitor(build_progress, trim)  # VirtualTable, or None: every step calls Python

The package's ILogger (`_interpreter._PythonLogger`) and IProgressMonitor (`BuildProgress`) are
Python objects, so every call TensorRT-RTX makes into them takes the GIL. A ResNet-50 build makes
about 4,450 (VERBOSE messages) and 480 (steps and phases) of them. While another thread runs Python,
each call waits for that thread to let the GIL go, so the build hardly moves: beside a thread busy in
Python for 0.5 s a build took about 0.5 s longer (`benchmarks/build_beside_python.py`), which rules
out doing Python work of our own during a build and slows a build run on a worker thread of an
application whose main thread is busy.

Here the C++ objects behind them get native functions of the package's `_C`
(core/runtime/build_callbacks.h) in the slots TensorRT-RTX's public ABI gives them (`_vtable.py`):
- the logger's `log` (entry 4 of 5: TensorRT-RTX's ILogger is an IVersionedInterface, whose two
  functions and the destructor's two come first) becomes a filter that
  drops, without Python, messages less severe than the limit and passes the others to the binding's
  function, which calls Python. The limit follows `logging`: every message when the logger
  "torch_tensorrt_rtx.tensorrt" is enabled for DEBUG (where INFO and VERBOSE go), else warnings and
  errors (`set_log_limit`, called whenever the package fetches its logger: before each network and
  each build);
- a monitor nobody watches (no progress bar, no debug logging) gets native `phaseStart`,
  `stepComplete` and `phaseFinish` (entries 4-6 of 7, after IVersionedInterface's two functions and
  the destructor's two): nothing, "go on", and, as the Python monitor does, the heap trim at each
  phase's end.

Each is used only after a probe through the binding reached it (the logger: a VERBOSE message
dropped by the filter and an ERROR passed on to Python; the monitor: a step answered "go on" and a
phase started and finished without Python, the finish counted natively); else the Python callbacks
stay (logged at debug level). `TORCH_TENSORRT_RTX_NATIVE_CALLBACKS=0` keeps them always.
"""
from __future__ import annotations

import logging
import os
from typing import Any, Optional

import tensorrt_rtx as trt

from torch_tensorrt_rtx.dynamo.conversion._vtable import VirtualTable, binding_file

logger = logging.getLogger(__name__)

OFF_SWITCH_ENV = "TORCH_TENSORRT_RTX_NATIVE_CALLBACKS"  # "0", "off", "false" or "no": Python for every call
_LOG_ENTRIES, _LOG = 5, 4
_MONITOR_ENTRIES, _PHASE_START, _STEP_COMPLETE, _PHASE_FINISH = 7, 4, 5, 6
_WARNING, _VERBOSE = int(trt.ILogger.WARNING), int(trt.ILogger.VERBOSE)


def _native() -> Any:
    """The `_C` module with the native callbacks, or the reason there is none (a str)."""
    if os.environ.get(OFF_SWITCH_ENV, "").strip().lower() in ("0", "off", "false", "no"):
        return f"{OFF_SWITCH_ENV} is off"
    from torch_tensorrt_rtx.runtime._pybind import pybind_module

    native = pybind_module()
    if native is None or not hasattr(native, "build_callback_addresses"):
        return "the package's _C module with native callbacks is not built"
    return native


def set_log_limit(debug: bool) -> None:
    """Pass every message to Python (`debug`), or warnings and errors only."""
    native = _native()
    if not isinstance(native, str):
        native.set_log_limit(_VERBOSE if debug else _WARNING)


def _install(obj: Any, interface: type, entries: int, functions: Any, probe: Any, what: str) -> Optional[VirtualTable]:
    """`obj`'s table with `functions(native)` ({entry: address}) in place once `probe(obj, native,
    table)` (None, or why not) shows they are reached; else None, the table restored and the reason logged."""
    native = _native()
    if isinstance(native, str):
        why = native
    else:
        table = VirtualTable(obj, binding_file(interface), entries)
        why = table.replace(functions(native))
        if why is None:
            why = probe(obj, native, table)
            if why is None:
                table.verified()
                return table
            table.restore()
    logger.debug("TensorRT-RTX's %s: every one calls Python (%s)", what, why)
    return None


def quiet_logger(python_logger: Any) -> Optional[VirtualTable]:
    """Put the native filter into `python_logger`'s `log` slot (see the module docstring). The
    logger records `(severity, message)` in its `probe` list, when that is not None, instead of logging."""
    return _install(python_logger, trt.ILogger, _LOG_ENTRIES,
                    lambda native: {_LOG: native.build_callback_addresses()["log_filter"]}, _probe_logger, "messages")


def _probe_logger(python_logger: Any, native: Any, table: VirtualTable) -> Optional[str]:
    """Pass kept messages to the slot's function before (the binding's: one for every logger), then probe;
    the filter's previous function is put back when the probe fails."""
    before = native.set_log_forward(table.original(_LOG))
    why = _probe_filter(python_logger, native)
    if why is not None:
        native.set_log_forward(before)
    return why


def _probe_filter(python_logger: Any, native: Any) -> Optional[str]:
    native.set_log_limit(_WARNING)
    dropped = native.log_messages_dropped()
    python_logger.probe = []
    try:  # the binding's ILogger.log makes a virtual call: it must reach the filter
        trt.ILogger.log(python_logger, trt.ILogger.VERBOSE, "probe: dropped")
        trt.ILogger.log(python_logger, trt.ILogger.ERROR, "probe: passed on")
    except Exception as exc:  # noqa: BLE001 - any failure keeps Python for every message
        return f"a probe message failed ({type(exc).__name__}: {exc})"
    finally:
        seen, python_logger.probe = python_logger.probe, None
    if seen != [(trt.ILogger.ERROR, "probe: passed on")] or native.log_messages_dropped() != dropped + 1:
        return f"probe messages did not pass the filter as expected ({seen!r})"
    return None


def quiet_monitor(monitor: Any, trim: bool) -> Optional[VirtualTable]:
    """Put native phaseStart/stepComplete/phaseFinish into `monitor`'s slots (see the module
    docstring). The monitor records its calls in its `probe` list, when that is not None."""
    def functions(native: Any) -> dict:
        found = native.build_callback_addresses()
        return {_PHASE_START: found["phase_start"], _STEP_COMPLETE: found["step_complete"],
                _PHASE_FINISH: found["phase_finish_trimming" if trim else "phase_finish"]}

    return _install(monitor, trt.IProgressMonitor, _MONITOR_ENTRIES, functions, _probe_monitor, "build steps")


def _probe_monitor(monitor: Any, native: Any, table: VirtualTable) -> Optional[str]:
    finished = native.build_phases_finished()
    monitor.probe = []
    try:  # the binding's methods make virtual calls: they must reach the native functions
        went_on = trt.IProgressMonitor.step_complete(monitor, "probe", 0)
        trt.IProgressMonitor.phase_start(monitor, "probe", None, 1)
        trt.IProgressMonitor.phase_finish(monitor, "probe")
    except Exception as exc:  # noqa: BLE001 - any failure keeps Python for every step
        return f"a probe call failed ({type(exc).__name__}: {exc})"
    finally:
        seen, monitor.probe = monitor.probe, None
    if went_on is not True or seen or native.build_phases_finished() != finished + 1:
        return f"probe calls did not reach the native functions ({went_on!r}, {seen!r})"
    return None
