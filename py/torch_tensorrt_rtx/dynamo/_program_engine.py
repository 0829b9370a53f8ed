"""ProgramEngine: a handle on one engine of a program, for per-engine runtime settings.

    engines = torch_tensorrt_rtx.program_engines(program)      # {buffer name: ProgramEngine}
    engines["_run_on_trt_0_engine"].set_runtime_settings(kernel_strategy="none")
    with engines["_run_on_trt_0_engine"].runtime_settings(cuda_graph_strategy="disabled"):
        program(x)
    # previous overrides are back; the runtime cache was saved

Contract:
- An override replaces the ``runtime.settings(...)`` scope's value for this engine only;
  settings it does not name follow the scope. Validated like ``RuntimeSettings``.
- The overrides are kept once, by the runtime that runs the op: the C++ ``RecordEngine``
  attached to the program's packed-record tensor (handed over in the runtime's one settings
  encoding, ``_native.settings_entries``) or the Python ``TRTModule`` attached to that tensor.
  Either lives exactly as long as the tensor: two programs (two loads of one file) never
  share overrides, and they die with the program.
- A handle keeps its tensor (and so the engine) alive while the handle lives.
"""
from __future__ import annotations

import contextlib
from typing import Any, Dict, Iterator, Optional

import torch

from torch_tensorrt_rtx.dynamo import _engine_op
from torch_tensorrt_rtx.runtime.runtime_settings import RuntimeSettings, current_settings


class ProgramEngine:
    def __init__(self, name: str, packed_record: torch.Tensor) -> None:
        self.name = name
        self._record = packed_record

    def __repr__(self) -> str:
        return f"ProgramEngine({self.name!r}, overrides={self.overrides()})"

    def overrides(self) -> Dict[str, Any]:
        if _engine_op.NATIVE:
            from torch_tensorrt_rtx.runtime import _native

            return _native.settings_changes(torch.ops.tensorrt.record_engine_overrides(self._record))
        return _engine_op.python_runtime_module(self._record).overrides()

    def effective_settings(self) -> RuntimeSettings:
        """The settings this engine's next call in this scope uses."""
        return current_settings().replace(**self.overrides())

    def set_runtime_settings(self, **changes: Any) -> None:
        """Override settings for this engine only (until changed or cleared)."""
        RuntimeSettings().replace(**changes)  # validates names and values
        self._store({**self.overrides(), **changes})

    def clear_runtime_settings(self) -> None:
        self._store({})

    @contextlib.contextmanager
    def runtime_settings(self, **changes: Any) -> Iterator[RuntimeSettings]:
        """Scoped per-engine override; restores the previous overrides and saves the cache."""
        previous = self.overrides()
        self.set_runtime_settings(**changes)
        try:
            yield self.effective_settings()
        finally:
            self._store(previous)
            self.save_runtime_cache()

    def context_settings(self) -> Optional[RuntimeSettings]:
        """The settings the engine's execution context was last configured with; None before
        the first call built the engine."""
        if _engine_op.NATIVE:
            from torch_tensorrt_rtx.runtime import _native

            entries = list(torch.ops.tensorrt.record_engine_applied_settings(self._record))
            return _native.settings_from_entries(entries) if entries else None
        module = self._record.__dict__.get(_engine_op._MODULE_ATTR)
        return None if module is None else module._context_settings

    def save_runtime_cache(self) -> bool:
        """Saves runtime caches that changed (on the C++ runtime: of every live engine)."""
        if _engine_op.NATIVE:
            return int(torch.ops.tensorrt.save_record_engine_caches()) > 0
        module = self._record.__dict__.get(_engine_op._MODULE_ATTR)
        return bool(module.save_runtime_cache()) if module is not None else False

    def mark_for_refit(self) -> None:
        """The program's weights changed (refit_module_weights): a weightless/refittable engine
        refits from them before its next run (an engine no call has built refits at its first)."""
        if _engine_op.NATIVE:
            torch.ops.tensorrt.mark_record_engine_for_refit(self._record)
            return
        module = self._record.__dict__.get(_engine_op._MODULE_ATTR)
        if module is not None:
            module.mark_for_refit()

    def _store(self, overrides: Dict[str, Any]) -> None:
        if _engine_op.NATIVE:
            from torch_tensorrt_rtx.runtime import _native

            torch.ops.tensorrt.set_record_engine_overrides(self._record, _native.settings_entries(overrides))
            return
        module = _engine_op.python_runtime_module(self._record)
        module.clear_runtime_settings()
        if overrides:
            module.set_runtime_settings(**overrides)


class NativeStreamingEngine:
    """One engine of a program on the C++ runtime as ``runtime.weight_streaming`` sees the Python
    runtime's: a module with ``_ensure_engine()`` and ``drop_execution_context()`` whose engine has
    TensorRT-RTX's ``streamable_weights_size``, ``weight_streaming_budget_v2`` and
    ``get_weight_streaming_automatic_budget()``; all through ``torch.ops.tensorrt`` on the
    ``RecordEngine`` of the packed record (which deserializes the engine: an RTX GPU).
    Setting a budget drops the C++ engine's execution context itself; the next run makes one."""

    def __init__(self, packed_record: torch.Tensor) -> None:
        self._record = packed_record

    def _ensure_engine(self) -> "NativeStreamingEngine":
        return self

    def drop_execution_context(self) -> None:
        """Nothing to do here: the C++ engine drops it when the budget is set."""

    def _figures(self) -> list:  # [streamable bytes, budget, automatic budget]
        return [int(v) for v in torch.ops.tensorrt.record_engine_weight_streaming(self._record)]

    @property
    def streamable_weights_size(self) -> int:
        return self._figures()[0]

    @property
    def weight_streaming_budget_v2(self) -> int:
        return self._figures()[1]

    @weight_streaming_budget_v2.setter
    def weight_streaming_budget_v2(self, budget: int) -> None:
        torch.ops.tensorrt.set_record_engine_weight_streaming_budget(self._record, int(budget))

    def get_weight_streaming_automatic_budget(self) -> int:
        return self._figures()[2]
