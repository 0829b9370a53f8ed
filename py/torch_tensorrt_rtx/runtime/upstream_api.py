"""Upstream Torch-TensorRT's runtime names, as thin wrappers over this runtime's public API.

CUDA graphs. TensorRT-RTX captures CUDA graphs itself, per engine (``cuda_graph_strategy=
"whole_graph_capture"``: each engine's whole enqueue is one graph, captured on its first runs
and replayed after). Upstream's names map onto that runtime setting:

- ``enable_cudagraphs(module)``: a context manager; inside it every engine run in this thread
  (the module's included) uses whole-graph capture; it yields `module` itself.
- ``set_cudagraphs_mode(True | False)``: the same setting for the rest of this thread's context
  (runtime settings are per thread / asyncio task, never process-global); ``get_cudagraphs_mode()``
  reads it.
- PyTorch segments between engines (ops that stayed in PyTorch) are NOT captured: each engine
  is its own graph and the PyTorch ops between them run eagerly. Upstream wraps such a module in
  one outer CUDA graph; here ``get_whole_cudagraphs_mode()`` is always False. With dynamic
  shapes use ``runtime.settings(kernel_strategy="eager")`` too (lazy kernels cannot be captured).

Weight streaming (TensorRT-RTX supports it: ``BuilderFlag.WEIGHT_STREAMING`` at build, the
engine's ``weight_streaming_budget_v2`` at run time): compile with
``enable_weight_streaming=True``, then ``with weight_streaming(module) as ws: ws.device_budget =
n`` keeps `n` bytes of streamable weights on the GPU, split over the engines in proportion to
their streamable size (upstream's rule). It needs the engines deserialized, so an RTX GPU; it
works on either runtime (the C++ runtime's engines through ``torch.ops.tensorrt``: setting a budget
drops the engine's execution context, and the next run creates one).

``set_multi_device_safe_mode(mode)``: engines run on their inputs' GPU in the current CUDA
context, without per-call device switching. With at most one CUDA device (every machine this
matters for here) there is nothing to check and either mode is accepted; with several devices
``True`` is refused, since the checks are not implemented.

Upstream's RTX runtime settings: ``runtime_config(target, **settings)``,
``set_dynamic_shapes_kernel_strategy(target, strategy)`` and ``runtime_cache(target, path)``
map onto ``runtime.settings(...)`` for the block (every engine run in it, this thread);
``optimization_profile`` is refused (one profile per engine here).

Output allocation (``output_allocation.py``): ``enable_output_allocator(module)`` and
``enable_pre_allocated_outputs(module)`` are context managers for the block (this thread, every
engine run in it, like ``enable_cudagraphs``) on the Python runtime; outputs with data-dependent
shapes always go through the output allocator, on both runtimes.
"""
from __future__ import annotations

import contextlib
import logging
from typing import Any, Callable, Iterator, List, Optional, Tuple

from torch_tensorrt_rtx.runtime import runtime_settings

logger = logging.getLogger(__name__)

WHOLE_GRAPH = "whole_graph_capture"


def get_cudagraphs_mode() -> bool:
    """True when engines run in this context capture CUDA graphs (whole-graph capture)."""
    return runtime_settings.current_settings().cuda_graph_strategy == WHOLE_GRAPH


def get_whole_cudagraphs_mode() -> bool:
    """Always False: no outer CUDA graph spans PyTorch segments here (see the module docstring)."""
    return False


def set_cudagraphs_mode(mode: bool) -> None:
    """Whole-graph capture on (True) or off (False) for the rest of this thread's context."""
    if not isinstance(mode, bool):
        raise TypeError(f"set_cudagraphs_mode: mode must be True or False, got {mode!r}")
    runtime_settings.set_current(cuda_graph_strategy=WHOLE_GRAPH if mode else "disabled")
    logger.info("CUDA graphs (TensorRT-RTX whole-graph capture per engine) %s", "on" if mode else "off")


@contextlib.contextmanager
def enable_cudagraphs(module: Any, *, cuda_graph_strategy: Optional[str] = WHOLE_GRAPH) -> Iterator[Any]:
    """Engines run inside the block capture CUDA graphs; yields `module` (call it as usual)."""
    fallback = getattr(getattr(module, "compile_report", None), "fallback_ops", None)
    if fallback:
        logger.info("enable_cudagraphs: %d op kind(s) run in PyTorch between engines; they run eagerly, "
                    "outside the engines' CUDA graphs", len(fallback))
    with runtime_settings.settings(cuda_graph_strategy=cuda_graph_strategy or WHOLE_GRAPH):
        yield module


# upstream RuntimeSettings field -> ours
_SETTING_NAMES = {"dynamic_shapes_kernel_specialization_strategy": "kernel_strategy",
                  "cuda_graph_strategy": "cuda_graph_strategy", "runtime_cache": "cache_path"}


@contextlib.contextmanager
def runtime_config(target: Any, **overrides: Any) -> Iterator[Any]:
    """Upstream's RTX runtime settings for a block: ``dynamic_shapes_kernel_specialization_strategy``
    (our ``kernel_strategy``), ``cuda_graph_strategy``, ``runtime_cache`` (a path, or None for no
    cache; our ``cache_path``). They apply to every engine run in the block (this thread), the
    target's included; yields `target`."""
    unknown = sorted(set(overrides) - set(_SETTING_NAMES))
    if unknown:
        raise TypeError(f"runtime_config: unknown setting(s) {unknown}; expected {sorted(_SETTING_NAMES)}")
    if not isinstance(overrides.get("runtime_cache", ""), (str, type(None))):
        raise TypeError("runtime_config: runtime_cache must be a file path or None here (no RuntimeCache objects)")
    with runtime_settings.settings(**{_SETTING_NAMES[k]: v for k, v in overrides.items()}):
        yield target


def set_dynamic_shapes_kernel_strategy(target: Any, strategy: str) -> Any:
    """Upstream's shorthand: ``runtime_config(target, dynamic_shapes_kernel_specialization_strategy=...)``."""
    return runtime_config(target, dynamic_shapes_kernel_specialization_strategy=strategy)


def runtime_cache(target: Any, path: Any = "", autosave: bool = True) -> Any:
    """Upstream's shared runtime cache for a block: ``path`` ("" = the per-user default file).
    Streams and ``autosave=False`` are refused: the cache is a locked file shared by processes,
    saved when it changed; ``runtime.settings(cache_path=None)`` turns it off."""
    if autosave is not True:
        raise ValueError("runtime_cache: autosave=False is not supported (the cache file is saved when it changed); "
                         "use runtime.settings(cache_path=None) to run without a cache")
    if hasattr(path, "read") or hasattr(path, "write"):
        raise TypeError("runtime_cache: give a file path; streams are not supported (the cache file is shared by "
                        "processes under a lock)")
    import os

    return runtime_config(target, runtime_cache=os.fspath(path))


def optimization_profile(module: Any, profile: Any) -> Any:
    raise NotImplementedError("optimization_profile: engines here have one optimization profile (the Input "
                              "min/opt/max ranges), so there is none to select; compile again for another range")


class _MultiDeviceSafeMode:
    def __init__(self, previous: bool) -> None:
        self.previous = previous

    def __enter__(self) -> "_MultiDeviceSafeMode":
        return self

    def __exit__(self, *exc: Any) -> None:
        _STATE["multi_device_safe_mode"] = self.previous


_STATE = {"multi_device_safe_mode": False}


def set_multi_device_safe_mode(mode: bool) -> _MultiDeviceSafeMode:
    """Accepted with at most one CUDA device; usable as a context manager, like upstream's."""
    if not isinstance(mode, bool):
        raise TypeError(f"set_multi_device_safe_mode: mode must be True or False, got {mode!r}")
    if mode:
        import torch

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count > 1:
            raise NotImplementedError(
                f"set_multi_device_safe_mode(True): {count} CUDA devices are visible, and this runtime does not "
                "check or switch devices per call; run each program with its inputs on one GPU, inside "
                "torch.cuda.device(i), or hide the others with CUDA_VISIBLE_DEVICES")
    previous = _STATE["multi_device_safe_mode"]
    _STATE["multi_device_safe_mode"] = mode
    return _MultiDeviceSafeMode(previous)


def get_multi_device_safe_mode() -> bool:
    return _STATE["multi_device_safe_mode"]


@contextlib.contextmanager
def enable_output_allocator(module: Any) -> Iterator[Any]:
    """Inside the block (this thread), every engine output is fetched through TensorRT-RTX's
    output allocator, not only the data-dependent ones (which always are); yields `module`."""
    from torch_tensorrt_rtx.runtime import output_allocation

    with output_allocation.forced_output_allocator():
        yield module


@contextlib.contextmanager
def enable_pre_allocated_outputs(module: Any) -> Iterator[Any]:
    """Inside the block (this thread), each engine reuses its output tensors between calls with
    the same output shapes (no allocation per call): a call's outputs are overwritten by the next
    call of the same engine, so clone what you keep. Yields `module`."""
    from torch_tensorrt_rtx.runtime import output_allocation

    with output_allocation.pre_allocated_outputs():
        yield module


# -- weight streaming -----------------------------------------------------------------------
# Functions that list a compiled module's engines as (name, runtime module) pairs, where the
# runtime module has ``_ensure_engine()`` and ``drop_execution_context()`` (TRTModule). The
# compiler registers the finder for its programs (it knows how they hold engines).
_ENGINE_FINDERS: List[Callable[[Any], List[Tuple[str, Any]]]] = []


def add_engine_finder(finder: Callable[[Any], List[Tuple[str, Any]]]) -> None:
    if finder not in _ENGINE_FINDERS:
        _ENGINE_FINDERS.append(finder)


def _engines_of(module: Any) -> List[Tuple[str, Any]]:
    found: List[Tuple[str, Any]] = []
    for finder in _ENGINE_FINDERS:
        found += finder(module)
    if not found:
        raise ValueError(f"weight_streaming: {type(module).__name__} holds no TensorRT-RTX engines; pass the module "
                         "returned by torch_tensorrt_rtx.compile (or load(...).module())")
    return found


class WeightStreaming:
    """Upstream's weight-streaming context: ``total_device_budget`` (streamable bytes of all
    engines), ``device_budget`` (bytes kept on the GPU; assign to change it),
    ``get_automatic_weight_streaming_budget()``. The budgets in force before are restored on exit."""

    def __init__(self, module: Any) -> None:
        self._engines = [(name, runtime, runtime._ensure_engine()) for name, runtime in _engines_of(module)]
        self._streamable = [engine.streamable_weights_size for _, _, engine in self._engines]
        self._initial = [engine.weight_streaming_budget_v2 for _, _, engine in self._engines]
        self.total_device_budget = sum(self._streamable)
        if self.total_device_budget == 0:
            raise RuntimeError("weight_streaming: the engines have no streamable weights; compile with "
                               "enable_weight_streaming=True")

    @property
    def device_budget(self) -> int:
        return sum(engine.weight_streaming_budget_v2 for _, _, engine in self._engines)

    @device_budget.setter
    def device_budget(self, budget: int) -> None:
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < 0:
            raise ValueError(f"weight_streaming: device_budget must be an integer >= 0 bytes, got {budget!r}")
        budget = min(budget, self.total_device_budget)
        shares = [streamable * budget // self.total_device_budget for streamable in self._streamable]
        self._apply(shares)

    def get_automatic_weight_streaming_budget(self) -> int:
        return sum(engine.get_weight_streaming_automatic_budget() for _, _, engine in self._engines)

    def _apply(self, budgets: List[int]) -> None:
        for (name, runtime, engine), budget in zip(self._engines, budgets):
            runtime.drop_execution_context()  # a budget cannot change under a live context
            engine.weight_streaming_budget_v2 = budget
            logger.debug("weight streaming budget of %s: %d bytes", name, budget)

    def __enter__(self) -> "WeightStreaming":
        return self

    def __exit__(self, *exc: Any) -> None:
        self._apply(self._initial)


def weight_streaming(module: Any) -> WeightStreaming:
    return WeightStreaming(module)
