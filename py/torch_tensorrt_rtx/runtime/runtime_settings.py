"""Runtime settings: runtime state chosen at run time, never stored in a compiled program.

``RuntimeSettings`` is an immutable value: cache path, dynamic-shapes kernel
specialization strategy, CUDA-graph strategy and execution-context allocation strategy.
The settings in effect are scoped, never a process-global mutable::

    from torch_tensorrt_rtx import runtime
    with runtime.settings(cache_path="/data/rtx.cache", kernel_strategy="eager"):
        model(x)          # every TRTModule in this scope (this thread / task) uses them
    # previous settings are back; runtime caches of live modules were saved

A module can override the scope: ``trt_module.set_runtime_settings(kernel_strategy="none")``
or ``with trt_module.runtime_settings(...)``. Scopes are ``contextvars``-based, so each
thread and asyncio task sees its own scope stack (thread-safe by construction). Entering
and leaving a scope hands the settings to the C++ runtime's per-thread scope (when it is
loaded); asyncio tasks that interleave inside different scopes on one thread are not
told apart there.

Strategy settings and their names are defined once, in definitions.toml ([strategies]):
``RuntimeSettings`` has one field per table; an unknown name raises ``ValueError`` listing
the valid ones. The ``tensorrt_rtx`` enum member for a name is its upper-cased spelling
(``"whole_graph_capture"`` -> ``WHOLE_GRAPH_CAPTURE``).
"""
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import logging
import os
import weakref
from typing import Any, Iterator

from torch_tensorrt_rtx.runtime.definitions import STRATEGIES

logger = logging.getLogger(__name__)

# The valid names of each strategy (the first is the default) and the tensorrt_rtx enum
# class each maps to (members are the upper-cased names): from definitions.toml.
KERNEL_STRATEGIES = STRATEGIES["kernel_strategy"].names
CUDA_GRAPH_STRATEGIES = STRATEGIES["cuda_graph_strategy"].names
ALLOCATION_STRATEGIES = STRATEGIES["allocation_strategy"].names
TRT_ENUMS = {setting: strategy.trt_enum for setting, strategy in STRATEGIES.items()}
_VALID = {setting: strategy.names for setting, strategy in STRATEGIES.items()}


def _check_name(setting: str, value: Any) -> str:
    valid = _VALID[setting]
    if not isinstance(value, str) or value.lower() not in valid:
        raise ValueError(
            f"unknown {setting} {value!r}: expected one of {', '.join(repr(v) for v in valid)}")
    return value.lower()


# cache_path meaning "the per-user default file" (an empty path names no file).
DEFAULT_CACHE_PATH = ""


class _SettingsMethods:
    """The behaviour of ``RuntimeSettings``; its fields come from definitions.toml (below)."""

    def __post_init__(self) -> None:
        for setting in _VALID:
            object.__setattr__(self, setting, _check_name(setting, getattr(self, setting)))
        if self.cache_path is not None:
            path = os.fspath(self.cache_path)
            if not isinstance(path, str):
                path = os.fsdecode(path)
            if "\0" in path:
                raise ValueError(f"cache_path {path!r} contains a NUL character; expected a file "
                                 f"path, {DEFAULT_CACHE_PATH!r} for the per-user default or None "
                                 f"to disable the cache")
            try:  # the C++ runtime takes paths as UTF-8 text: refused alike in both runtimes
                path.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError(f"cache_path {path!r} is not valid UTF-8 (both runtimes take UTF-8 cache "
                                 f"paths); rename the file or directory, or use one with a UTF-8 name") from None
            # Resolved once, now: a later chdir does not move the cache file.
            object.__setattr__(self, "cache_path", os.path.abspath(path) if path else path)

    def replace(self, **changes: Any) -> "RuntimeSettings":
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise TypeError(f"unknown runtime setting(s) {sorted(unknown)}: expected "
                            f"{[f.name for f in dataclasses.fields(self)]}")
        return dataclasses.replace(self, **changes)

    def trt_enum(self, setting: str, trt_api: Any) -> Any:
        """The ``tensorrt_rtx`` enum member for ``setting`` (e.g. ``"kernel_strategy"``)."""
        return getattr(getattr(trt_api, TRT_ENUMS[setting]), getattr(self, setting).upper())

    def apply_strategies(self, runtime_config: Any, trt_api: Any) -> None:
        """Hand every strategy to a ``tensorrt_rtx`` IRuntimeConfig (each table's trt_setter)."""
        for setting, strategy in STRATEGIES.items():
            value = self.trt_enum(setting, trt_api)
            if strategy.trt_setter.startswith("set_"):
                getattr(runtime_config, strategy.trt_setter)(value)
            else:
                setattr(runtime_config, strategy.trt_setter, value)


# cache_path, then one field per [strategies] table of definitions.toml, at its first name.
RuntimeSettings = dataclasses.make_dataclass(
    "RuntimeSettings",
    [("cache_path", "str | None", dataclasses.field(default=DEFAULT_CACHE_PATH))]
    + [(setting, "str", dataclasses.field(default=strategy.names[0])) for setting, strategy in STRATEGIES.items()],
    bases=(_SettingsMethods,), frozen=True)
RuntimeSettings.__module__ = __name__  # make_dataclass's module= is Python >= 3.12; pickle needs it
RuntimeSettings.__doc__ = """Runtime settings.

    ``cache_path``: the runtime cache file; ``DEFAULT_CACHE_PATH`` (the default, "") means
    the per-user file (``default_cache_path()``), ``None`` disables the cache (no load, no
    save). The strategy fields are the [strategies] tables of definitions.toml, each a name
    from its table (``KERNEL_STRATEGIES`` etc.), the first by default.
    """


DEFAULT_SETTINGS = RuntimeSettings()
_current: contextvars.ContextVar[RuntimeSettings] = contextvars.ContextVar(
    "torch_tensorrt_rtx_runtime_settings", default=DEFAULT_SETTINGS)

# Objects with a ``save_runtime_cache()`` method (live runtime modules) to flush when a
# settings scope ends. Weak: registering never keeps a module alive.
_cache_owners: "weakref.WeakSet[Any]" = weakref.WeakSet()


def register_cache_owner(owner: Any) -> None:
    _cache_owners.add(owner)


# Called with the settings in effect whenever a scope is entered or left (in the thread that
# does it): how the C++ runtime learns the scope once, instead of on every engine call.
_scope_listeners: "list[Any]" = []


def add_scope_listener(listener: Any) -> None:
    if listener not in _scope_listeners:
        _scope_listeners.append(listener)


def _notify_scope(settings: RuntimeSettings) -> None:
    for listener in list(_scope_listeners):
        listener(settings)


def save_all_runtime_caches() -> None:
    """Save the runtime cache of every live runtime module (never raises)."""
    for owner in list(_cache_owners):
        try:
            owner.save_runtime_cache()
        except Exception as exc:  # a cache is an optimisation: never fail the caller
            logger.warning("saving the runtime cache of %r failed: %s", owner, exc)


def current_settings() -> RuntimeSettings:
    """The settings in effect in this scope (before any per-module override)."""
    return _current.get()


@contextlib.contextmanager
def settings(**changes: Any) -> Iterator[RuntimeSettings]:
    """Apply ``changes`` to every runtime module used in this scope; restore on exit.

    Keywords: ``cache_path``, ``kernel_strategy``, ``cuda_graph_strategy``,
    ``allocation_strategy``. On exit the previous settings come back and every live
    module's runtime cache is saved. Contexts are recreated lazily at the next forward.
    """
    new = _current.get().replace(**changes)
    token = _current.set(new)
    try:
        _notify_scope(new)
        yield new
    finally:
        _current.reset(token)
        _notify_scope(_current.get())
        save_all_runtime_caches()


def set_current(**changes: Any) -> RuntimeSettings:
    """Apply ``changes`` for the rest of this thread's (asyncio task's) context, without a scope
    to leave: what upstream's setters (``set_cudagraphs_mode``) mean here. A ``settings()``
    scope opened later still overrides it inside its block; called inside such a block, it lasts
    until the block ends (the block restores what was in effect before it)."""
    new = _current.get().replace(**changes)
    _current.set(new)
    _notify_scope(new)
    return new


def warn_if_incompatible(s: RuntimeSettings, has_dynamic_inputs: bool, what: str) -> bool:
    """Warn when a combination cannot work (the engine-run contract's check, which the C++
    runtime makes too); returns True if it warned."""
    from torch_tensorrt_rtx.runtime.engine_contract import incompatible_strategies

    msg = incompatible_strategies(what, s, has_dynamic_inputs)
    if msg:
        import warnings

        logger.warning(msg)
        warnings.warn(msg, RuntimeWarning, stacklevel=3)
    return bool(msg)
