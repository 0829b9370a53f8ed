"""The program cache's fast key of one compile, traced before torch.export only when the cache may
hold the program, else while TensorRT-RTX builds.

    pending = PendingKey.open(cache, module, specs, kwarg_specs, settings, weight_digests)  # None: no key
    if pending.may_hit:                  # the cache has a marker for these parts (dynamo/_program_key.marker_key)
        key = pending.result()           # traced now, then the program is looked up
    ...                                  # else: torch.export, conversion
    pending.start()                      # at the first engine build: traced on a worker thread
    key = pending.result()               # joined; traced here if no build started it
    pending.join()                       # always, before the module goes back to its caller

The key's trace runs the module's forward on meta tensors (BERT-base 0.4 s, a diffusers UNet 0.9 s of
a cold compile). A compile that cannot hit needs the key only to store its program afterwards, and
knows it cannot hit when the cache has no marker for the key's other parts (code, settings, inputs,
converters, versions, modes): the program store writes one beside each program. Its trace then runs
beside the engine build, which holds no GIL (its callbacks are native:
dynamo/conversion/_native_callbacks.py). The worker runs with the caller's grad mode; while
autocast, inference mode or a torch function or dispatch mode is active in the caller's thread
(thread-local state a worker would not see), the trace runs on the caller's thread in `result`.
The module stays in eval mode until `join`: the caller restores its train mode afterwards.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Dict, Optional

import torch

from torch_tensorrt_rtx.dynamo._background import background_thread
from torch_tensorrt_rtx.dynamo._program_key import (NoFastKey, finish_key, key_parts, marker_key, trace_text,
                                                    unique_weights)

logger = logging.getLogger(__name__)

MARKER_PAYLOAD = b"TRTXPMK1"


def _worker_sees_the_same_state() -> bool:
    """Whether a worker thread would trace as the caller's thread does (grad mode aside, set there)."""
    try:
        if torch.is_inference_mode_enabled() or any(torch.is_autocast_enabled(d) for d in ("cpu", "cuda")):
            return False
        return torch._C._len_torch_function_stack() == 0 and torch._C._len_torch_dispatch_stack() == 0
    except (AttributeError, RuntimeError):  # a torch without these: trace on the caller's thread
        return False


class PendingKey:
    """See the module docstring."""

    def __init__(self, module: torch.nn.Module, specs: Any, kwarg_specs: Any, parts: Dict[str, str],
                 weight_digests: Any, may_hit: bool) -> None:
        self.module, self.specs, self.kwarg_specs = module, specs, kwarg_specs
        self.parts, self.weight_digests, self.may_hit = parts, weight_digests, may_hit
        self.marker = marker_key(parts)
        self.weights = unique_weights(module)  # named now: the trace swaps the module's tensors for meta ones
        self.seconds = 0.0  # on the caller's thread: the parts, the marker's look-up, waiting, finishing
        self.trace_seconds = 0.0
        self._grad = torch.is_grad_enabled()
        self._deferrable = _worker_sees_the_same_state()
        self._thread: Optional[threading.Thread] = None
        self._trace: Optional[str] = None
        self._why: Optional[str] = None
        self._key: Optional[str] = None
        self._finished = False

    @classmethod
    def open(cls, cache: Any, reuse: bool, store: bool, module: torch.nn.Module, specs: Any, kwarg_specs: Any,
             settings: Any, weight_digests: Any) -> Optional["PendingKey"]:
        """None when the module has no fast key, or when none is needed (no marker and nothing stored)."""
        start = time.perf_counter()
        try:
            parts = key_parts(module, specs, kwarg_specs, settings)
        except NoFastKey as exc:
            logger.debug("program cache: no fast key for %s (%s); compiling it", type(module).__name__, exc)
            return None
        may_hit = reuse and cache.try_load(marker_key(parts)) == MARKER_PAYLOAD
        if not may_hit and not store:
            return None
        pending = cls(module, specs, kwarg_specs, parts, weight_digests, may_hit)
        pending.seconds += time.perf_counter() - start
        return pending

    def start(self) -> None:
        """Trace on a worker thread from now on (once; nothing when it must run on the caller's)."""
        if self._thread is None and self._trace is None and self._why is None and self._deferrable:
            self._thread = threading.Thread(target=self._run_trace, args=(True,), name="trtx-program-key",
                                            daemon=True)
            self._thread.start()

    def _run_trace(self, background: bool = False) -> None:
        if background:  # yields the cores to the build and the compile's own thread
            background_thread()
        start = time.perf_counter()
        try:
            with torch.set_grad_enabled(self._grad):
                self._trace = trace_text(self.module, self.specs, self.kwarg_specs, self.weights)
        except NoFastKey as exc:
            self._why = str(exc)
        except Exception as exc:  # noqa: BLE001 - a fault of the cache must never cost the compile
            logger.warning("program cache: the fast key's trace failed", exc_info=True)
            self._why = f"{type(exc).__name__}: {exc}"
        finally:
            self.trace_seconds = time.perf_counter() - start

    def join(self) -> None:
        """Wait for the worker's trace, if one runs (the module's own tensors are back afterwards)."""
        if self._thread is not None:
            start = time.perf_counter()
            self._thread.join()
            self.seconds += time.perf_counter() - start

    def result(self) -> Optional[str]:
        """The fast key (hex), or None (logged) when the module has none."""
        if self._finished:
            return self._key
        start = time.perf_counter()
        if self._thread is not None:
            self._thread.join()
        if self._thread is None and self._trace is None and self._why is None:
            self._run_trace()  # on this thread: no build started it, or the worker would not see our state
        elif self._thread is not None:
            logger.debug("program cache: the key's trace took %.2f s beside the build", self.trace_seconds)
        try:
            if self._why is None:
                self._key = finish_key(self.parts, self._trace, self.weights, self.weight_digests)
        except NoFastKey as exc:
            self._why = str(exc)
        if self._why is not None:
            logger.debug("program cache: no fast key for %s (%s); not stored", type(self.module).__name__, self._why)
        self._finished = True
        self.seconds += time.perf_counter() - start
        return self._key
