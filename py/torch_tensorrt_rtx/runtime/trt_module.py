"""TRTModule: a ``torch.nn.Module`` that runs one TensorRT-RTX engine from an EngineRecord.

Usage (the compiler wraps each built engine like this)::

    mod = TRTModule(EngineRecord.new(engine_bytes, name="blk0",
                                     input_names=["x"], output_names=["y"]))
    y = mod(x_cuda)                      # needs a supported RTX GPU
    with runtime.settings(kernel_strategy="eager"):
        y = mod(x_cuda)                  # context recreated lazily with the new strategy

Contract:
- Lazy: the engine is deserialized, the runtime cache loaded and the execution context
  created at the first forward (or ``ensure_context()``), never at construction.
- ``_create_execution_context`` is the only code that creates execution contexts. It
  saves the runtime cache first, then builds a fresh ``IRuntimeConfig`` with the runtime
  cache and every strategy, then creates the context. A settings change (scope, or
  ``set_runtime_settings``) recreates the context at the next forward.
- The runtime cache is one entry (keyed by the engine's SHA-256) of the shared cache file:
  other engines' entries are never dropped by this module's saves. ``cache_path=None``
  disables it. It is saved, when it changed, before every context recreation, by
  ``save_runtime_cache()``, at the exit of a settings scope, at garbage collection and
  at interpreter exit. Saving never raises out of ``__del__`` or at exit.
- Inputs and outputs are torch CUDA tensors; work is enqueued on torch's current stream.
  Input shapes are checked against optimization profile 0; output shapes come from the
  context. Outputs with data-dependent shapes (-1 in the context's shape) are fetched through
  an output allocator (``output_allocation.py``, which also implements upstream's
  ``enable_output_allocator`` / ``enable_pre_allocated_outputs`` modes).
- Without a supported GPU, forward raises ``RTXGPUUnavailableError``. The checks are the
  engine-run contract's (``engine_contract``), the same the C++ runtime makes: the GPU and
  its compute capability against the record's COMPUTE_CAPABILITIES and TensorRT-RTX's
  verdict, input shapes against the profile (naming the dim and its range), the warning on
  incompatible strategies, and ``allocation_strategy="user_managed"`` scratch memory
  allocated with torch for each call.
- Pickling/``torch.save`` stores only the packed EngineRecord, name and per-module
  settings overrides; the module is rebuilt from them.
- ``trt_api`` replaces the ``tensorrt_rtx`` module (tests inject a double). It skips no
  check: tests stand in a device too (``device._device``). Only an API that declares it
  runs on host memory (``RUNS_ON_HOST``, the double) takes CPU tensors.
"""
from __future__ import annotations

import atexit
import contextlib
import hashlib
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator, Optional

import torch

from torch_tensorrt_rtx.runtime import runtime_settings as _settings
from torch_tensorrt_rtx.runtime.device import check_engine, require_supported_gpu
from torch_tensorrt_rtx.runtime.engine_contract import profile_violation
from torch_tensorrt_rtx.runtime.engine_record import EngineRecord, EngineRecordError
from torch_tensorrt_rtx.runtime.output_allocation import OutputBuffers
from torch_tensorrt_rtx.runtime.runtime_cache_file import (TOUCH_INTERVAL_S, RuntimeCacheFile,
                                                           default_cache_path, engine_key)
from torch_tensorrt_rtx.runtime.runtime_settings import RuntimeSettings

logger = logging.getLogger(__name__)

# tensorrt_rtx DataType member name -> torch dtype (names, so no tensorrt_rtx import here).
_TORCH_DTYPES = {
    "FLOAT": torch.float32, "HALF": torch.float16, "BF16": torch.bfloat16,
    "INT8": torch.int8, "UINT8": torch.uint8, "INT32": torch.int32, "INT64": torch.int64,
    "BOOL": torch.bool, "FP8": torch.float8_e4m3fn,
}
_PROFILE = 0  # records built by this project carry exactly one optimization profile


class InputShapeError(ValueError):
    """An input's shape is outside what the engine's optimization profile allows."""


def _default_trt_api() -> Any:
    import tensorrt_rtx  # local: importing the runtime package must stay cheap and CUDA-free

    return tensorrt_rtx


class TRTModule(torch.nn.Module):
    """Run the engine in ``record``. ``name`` defaults to the record's name."""

    def __init__(self, record: EngineRecord, name: Optional[str] = None, *,
                 trt_api: Any = None) -> None:
        super().__init__()
        if not isinstance(record, EngineRecord):
            raise TypeError(f"TRTModule expects an EngineRecord, found {type(record).__name__}")
        self.record = record
        self.name = name or record.name or "trt_engine"
        self._trt_api = trt_api
        self._lock = threading.RLock()
        self._overrides: dict[str, Any] = {}
        self._trt_runtime = None
        self._engine = None
        self._context = None
        self._context_settings: Optional[RuntimeSettings] = None
        self._runtime_cache = None
        self._cache_file: Optional[RuntimeCacheFile] = None
        self._saved_digest: Optional[bytes] = None
        self._saved_last_use: Optional[int] = None
        self._key: Optional[bytes] = None
        self._outputs = OutputBuffers()
        self._refitted = False  # weightless engines: refitted from the program's weights (runtime/refit.py)
        _settings.register_cache_owner(self)

    def extra_repr(self) -> str:
        return (f"name={self.name!r}, inputs={self.record.input_names}, "
                f"outputs={self.record.output_names}")

    # -- settings -----------------------------------------------------------------------
    def effective_settings(self) -> RuntimeSettings:
        """The scope's settings with this module's overrides applied."""
        return _settings.current_settings().replace(**self._overrides)

    def overrides(self) -> dict[str, Any]:
        """This module's settings overrides (the settings the scope does not decide)."""
        with self._lock:
            return dict(self._overrides)

    def set_runtime_settings(self, **changes: Any) -> None:
        """Override settings for this module only (until changed or cleared)."""
        checked = RuntimeSettings().replace(**changes)  # validates; resolves a relative cache path once
        with self._lock:
            self._overrides.update({name: getattr(checked, name) for name in changes})

    def clear_runtime_settings(self) -> None:
        with self._lock:
            self._overrides.clear()

    @contextlib.contextmanager
    def runtime_settings(self, **changes: Any) -> Iterator[RuntimeSettings]:
        """Scoped per-module override; restores the previous overrides and saves the cache."""
        with self._lock:
            previous = dict(self._overrides)
            self.set_runtime_settings(**changes)
        try:
            yield self.effective_settings()
        finally:
            with self._lock:
                self._overrides = previous
            self.save_runtime_cache()

    # -- engine and context -------------------------------------------------------------
    def _api(self) -> Any:
        if self._trt_api is None:
            self._trt_api = _default_trt_api()
        return self._trt_api

    def _ensure_engine(self) -> Any:
        if self._engine is not None:
            return self._engine
        what = f"TRTModule {self.name!r}"
        require_supported_gpu(what, self.record)
        api = self._api()
        runtime = api.Runtime(api.Logger(api.Logger.WARNING))
        check_engine(what, runtime, self.record.engine, api, self.record)
        engine = runtime.deserialize_cuda_engine(self.record.engine)
        if engine is None:
            raise EngineRecordError(
                f"{what}: TensorRT-RTX could not deserialize the engine "
                f"({memoryview(self.record.engine).nbytes} bytes, flavor "
                f"{getattr(self.record, 'engine_flavor', None)!r}); expected an engine built "
                f"by a compatible TensorRT-RTX version")
        io_names = {engine.get_tensor_name(i) for i in range(engine.num_io_tensors)}
        wanted = set(self.record.input_names) | set(self.record.output_names)
        if not wanted <= io_names:
            raise EngineRecordError(
                f"{what}: binding names {sorted(wanted - io_names)} from the record are not "
                f"tensors of the engine (engine has {sorted(io_names)})")
        self._trt_runtime, self._engine = runtime, engine
        return engine

    @property
    def needs_refit(self) -> bool:
        return not self._refitted

    def refit_before_run(self, names: list[str], weights: list[torch.Tensor]) -> bool:
        """Refits the engine from ``weights`` (TensorRT weight ``names``) unless that is done
        already and not marked stale since; True if it refitted now."""
        from torch_tensorrt_rtx.runtime.refit import refit_engine

        with self._lock:
            if self._refitted:
                return False
            refit_engine(self._api(), self._ensure_engine(), names, weights, f"TRTModule {self.name!r}")
            self._refitted = True
            return True

    def mark_for_refit(self) -> None:
        """The program's weights changed (refit_module_weights): refit before the next run."""
        self._refitted = False

    def drop_execution_context(self) -> None:
        """Release the execution context (saving the runtime cache); the next call creates a new
        one the usual way. Weight-streaming budgets change only with no live context."""
        with self._lock:
            self.save_runtime_cache()
            self._context, self._context_settings = None, None

    def ensure_context(self) -> Any:
        """Deserialize and create the execution context now if needed (e.g. to warm up)."""
        with self._lock:
            engine = self._ensure_engine()
            wanted = self.effective_settings()
            if self._context is None or wanted != self._context_settings:
                self._create_execution_context(engine, wanted)
            return self._context

    def _create_execution_context(self, engine: Any, s: RuntimeSettings) -> None:
        """THE place that creates execution contexts: save cache, configure, create."""
        api = self._api()
        self.save_runtime_cache()
        self._context, self._context_settings = None, None
        config = engine.create_runtime_config()
        store = self._cache_store_for(s)
        if self._runtime_cache is None or store != self._cache_file:
            self._runtime_cache = config.create_runtime_cache()
            self._cache_file, self._saved_digest, self._saved_last_use = store, None, None
            if store is not None:
                entry = store.try_load(self._engine_key(), self._runtime_cache.deserialize)
                if entry is not None:
                    self._saved_digest = hashlib.sha256(entry.data).digest()
                    self._saved_last_use = entry.last_use
        config.set_runtime_cache(self._runtime_cache)
        s.apply_strategies(config, api)
        _settings.warn_if_incompatible(s, self.has_dynamic_inputs(), f"TRTModule {self.name!r}")
        context = engine.create_execution_context(config)
        if context is None:
            raise RuntimeError(f"TRTModule {self.name!r}: TensorRT-RTX could not create an "
                               f"execution context with settings {s}")
        self._context, self._context_settings = context, s
        logger.debug("TRTModule %r: execution context created with %s", self.name, s)

    def _cache_store_for(self, s: RuntimeSettings) -> Optional[RuntimeCacheFile]:
        """The store for ``s.cache_path`` (None: the cache is disabled), reused while the
        path is unchanged."""
        if s.cache_path is None:
            return None
        path = s.cache_path or default_cache_path()
        if self._cache_file is not None and self._cache_file.path == Path(os.path.abspath(path)):
            return self._cache_file
        return RuntimeCacheFile(path)

    def _engine_key(self) -> bytes:
        if self._key is None:
            self._key = engine_key(self.record.engine)
        return self._key

    def has_dynamic_inputs(self) -> bool:
        engine = self._ensure_engine()
        return any(-1 in tuple(engine.get_tensor_shape(n)) for n in self.record.input_names)

    def save_runtime_cache(self) -> bool:
        """Save this engine's entry of the runtime cache file if it changed (or its last-use
        time is older than a day); True if written. Never raises for I/O problems (they
        are logged as warnings). Other engines' entries in the file are kept."""
        with self._lock:
            cache, store = self._runtime_cache, self._cache_file
            if cache is None or store is None:
                return False
            try:
                blob = memoryview(cache.serialize())
            except Exception as exc:
                logger.warning("TRTModule %r: serializing the runtime cache failed: %s",
                               self.name, exc)
                return False
            digest = hashlib.sha256(blob).digest()
            now = int(time.time())
            fresh = self._saved_last_use is not None and now - self._saved_last_use < TOUCH_INTERVAL_S
            if digest == self._saved_digest and fresh:
                return False  # unchanged since load/save: leave the file alone
            written = store.try_save_entry(self._engine_key(), blob, now=now)
            if written:
                self._saved_digest, self._saved_last_use = digest, now
            return written

    # -- execution ----------------------------------------------------------------------
    def check_input_shapes(self, shapes: list[tuple[int, ...]]) -> None:
        """Raise InputShapeError naming the input, dimension and allowed range."""
        engine = self._ensure_engine()
        names = self.record.input_names
        if len(shapes) != len(names):
            raise InputShapeError(f"TRTModule {self.name!r} expects {len(names)} inputs "
                                  f"{names}, found {len(shapes)}")
        for name, shape in zip(names, shapes):
            lo, _, hi = (tuple(d) for d in engine.get_tensor_profile_shape(name, _PROFILE))
            outside = profile_violation(f"TRTModule {self.name!r}", name, shape, lo, hi)
            if outside:
                raise InputShapeError(outside)

    def forward(self, *inputs: torch.Tensor) -> Any:
        with self._lock:
            context = self.ensure_context()
            engine = self._engine
            self.check_input_shapes([tuple(t.shape) for t in inputs])
            device = inputs[0].device if inputs else torch.device("cuda")
            keep_alive = []
            for name, t in zip(self.record.input_names, inputs):
                t = self._checked_input(engine, name, t)
                keep_alive.append(t)
                if not context.set_input_shape(name, tuple(t.shape)):
                    raise InputShapeError(f"TRTModule {self.name!r}: TensorRT-RTX rejected "
                                          f"shape {tuple(t.shape)} for input {name!r}")
                context.set_tensor_address(name, t.data_ptr())
            names = self.record.output_names
            dtypes = [_torch_dtype(engine, name) for name in names]
            outputs = self._outputs.bind(self._api(), context, names, dtypes, device)
            if self._context_settings.allocation_strategy == "user_managed":
                size = context.update_device_memory_size_for_shapes()
                scratch = torch.empty(size, dtype=torch.uint8, device=device)
                keep_alive.append(scratch)
                context.set_device_memory(scratch.data_ptr(), size)
            stream = torch.cuda.current_stream(device).cuda_stream if device.type == "cuda" else 0
            if not context.execute_async_v3(stream):
                raise RuntimeError(f"TRTModule {self.name!r}: execute_async_v3 failed")
            outputs = self._outputs.results(outputs, names, dtypes, self.name)
            return outputs[0] if len(outputs) == 1 else tuple(outputs)

    def _checked_input(self, engine: Any, name: str, t: torch.Tensor) -> torch.Tensor:
        if not t.is_cuda and not getattr(self._api(), "RUNS_ON_HOST", False):
            raise ValueError(f"TRTModule {self.name!r}: input {name!r} is on {t.device}; "
                             f"expected a CUDA tensor")
        expected = _torch_dtype(engine, name)
        if t.dtype != expected:
            raise TypeError(f"TRTModule {self.name!r}: input {name!r} has dtype {t.dtype}, "
                            f"expected {expected}")
        return t.contiguous()

    # -- lifetime and serialization ----------------------------------------------------
    def __reduce__(self):
        return (_rebuild, (bytes(self.record.pack()), self.name, dict(self._overrides)))

    @classmethod
    def from_packed(cls, packed: Any, name: Optional[str] = None, **kwargs: Any) -> "TRTModule":
        return cls(EngineRecord.unpack(packed), name, **kwargs)

    def __del__(self) -> None:
        try:
            if sys.is_finalizing():
                return  # the atexit hook already saved; C libraries may be gone now
            self.save_runtime_cache()
        except BaseException:  # nothing may escape __del__
            pass


def _torch_dtype(engine: Any, name: str) -> torch.dtype:
    trt_dtype = engine.get_tensor_dtype(name)
    key = getattr(trt_dtype, "name", str(trt_dtype))
    if key not in _TORCH_DTYPES:
        raise TypeError(f"tensor {name!r} has TensorRT dtype {key}, which this runtime does "
                        f"not map to torch (supported: {sorted(_TORCH_DTYPES)})")
    return _TORCH_DTYPES[key]


def _rebuild(packed: bytes, name: str, overrides: dict[str, Any]) -> TRTModule:
    module = TRTModule.from_packed(packed, name)
    if overrides:
        module.set_runtime_settings(**overrides)
    return module


def _save_at_exit() -> None:
    try:
        _settings.save_all_runtime_caches()
    except BaseException:
        pass


atexit.register(_save_at_exit)
