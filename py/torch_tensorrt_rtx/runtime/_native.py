"""The optional C++ runtime: loads ``libtorchtrt_rtx_runtime.so`` when it is present.

The platform wheel carries it in ``torch_tensorrt_rtx/lib/`` (setup.py builds it with Bazel);
in a source checkout ``scripts/build_native.sh`` copies it there (and the pybind11 module
``_C`` beside the package's ``__init__``). When the library is there, importing this module
registers ``torch.classes.tensorrt.Engine`` and ``torch.ops.tensorrt.execute_engine`` (run
eagerly: C++ serving code and benchmarks call them; saved programs never do); when it is not,
nothing happens and the Python runtime is used. A library with a TensorRT backend also registers
``torch.ops.tensorrt_rtx.execute_engine``, the op saved programs call (see
``dynamo/_engine_op.py``); ``runtime.settings(...)`` scopes then hand their settings to it
when they are entered and left. Never raises at import::

    from torch_tensorrt_rtx.runtime import _native
    if _native.runtime_available():
        engine = torch.classes.tensorrt.Engine(record.to_list())
        engine.set_runtime_settings(_native.settings_entries({"kernel_strategy": "eager"}))
        outputs = torch.ops.tensorrt.execute_engine(inputs, engine)
    _native.status()   # e.g. "C++ runtime loaded from .../lib/libtorchtrt_rtx_runtime.so
                       #       (TensorRT backend: none)"

``$TORCH_TENSORRT_RTX_RUNTIME_LIBRARY`` names another library file (tests and benchmarks
load the scripted-backend build this way); set it to ``""`` to force the Python runtime.
A library built without ``--config=rtx`` loads fine: engines construct, pickle and print,
and running one raises "built without TensorRT-RTX" (``tensorrt_available()`` is False).
"""
from __future__ import annotations

import logging
import os
import threading
import warnings
from pathlib import Path
from typing import Any, Mapping, Optional

logger = logging.getLogger(__name__)

LIB_DIR = Path(__file__).resolve().parent.parent / "lib"  # torch_tensorrt_rtx/lib
RUNTIME_LIBRARY_NAME = "libtorchtrt_rtx_runtime.so"
LIBRARY_ENV = "TORCH_TENSORRT_RTX_RUNTIME_LIBRARY"
NATIVE_NAMESPACE = "tensorrt"  # torch.ops.tensorrt.*, torch.classes.tensorrt.Engine (upstream's names too)


_lock = threading.Lock()
_state: dict[str, Any] = {"attempted": False, "path": None, "error": None}


def runtime_library_path() -> Optional[Path]:
    """The library this process would load, or None (not built / disabled). Public as
    ``torch_tensorrt_rtx.library_path()``, for C++ users who link or load it themselves."""
    override = os.environ.get(LIBRARY_ENV)
    if override is not None:
        return Path(override) if override else None
    candidate = LIB_DIR / RUNTIME_LIBRARY_NAME
    return candidate if candidate.is_file() else None


def _loader_error(exc: BaseException) -> str:
    """The loader's own words: torch wraps dlopen's error ("undefined symbol: ...") as the cause
    of a generic "Could not load this library"."""
    parts = [f"{type(exc).__name__}: {exc}"]
    cause = exc.__cause__ or exc.__context__
    if cause is not None and str(cause) not in parts[0]:
        parts.append(f"{type(cause).__name__}: {cause}")
    return "; caused by ".join(parts)


def _loaded_libraries_matching(fragment: str) -> list:
    """Shared objects mapped into this process whose file name contains `fragment` (Linux)."""
    try:
        with open("/proc/self/maps", "r", encoding="utf-8", errors="replace") as maps:
            fields = [line.split(None, 5) for line in maps]
        paths = {f[5].strip() for f in fields if len(f) == 6}
    except OSError:
        return []
    return sorted(p for p in paths if fragment in os.path.basename(p))


def namespace_holder(namespace: str = NATIVE_NAMESPACE) -> Optional[str]:
    """Who already registered torch ops under `namespace` in this process, or None if nobody did.
    Loading our library then would end the process ("Only a single TORCH_LIBRARY can be used to
    register the namespace"), which no try/except can catch, so it is checked first."""
    import torch

    prefix = namespace + "::"
    if not any(name.startswith(prefix) for name in torch._C._dispatch_get_all_op_names()):
        return None
    upstream = _loaded_libraries_matching("libtorchtrt")
    upstream = [p for p in upstream if os.path.basename(p) != RUNTIME_LIBRARY_NAME]
    if upstream:
        return f"{upstream[0]} (upstream Torch-TensorRT, the torch_tensorrt package)"
    return "another library or a torch.library registration in Python (upstream Torch-TensorRT's torch_tensorrt?)"


def load_runtime_library() -> bool:
    """Loads the C++ runtime once per process; True if it is loaded. Never raises."""
    # torch first, outside the lock: its first import registers the engine op
    # (torch_tensorrt_rtx._saved_program_ops), which asks this function whether the library loaded.
    import torch  # noqa: F401

    with _lock:
        if _state["attempted"]:
            return _state["path"] is not None
        _state["attempted"] = True
        path = runtime_library_path()
        if path is None:
            return False
        try:
            from torch_tensorrt_rtx.runtime import definitions

            holder = namespace_holder()
            if holder is not None:
                _state["error"] = (f"the torch op namespace '{NATIVE_NAMESPACE}' is already registered in this "
                                   f"process by {holder}; loading {path} as well would abort the process. Still "
                                   "working: the Python runtime, which runs saved programs through "
                                   f"torch.ops.{definitions.ENGINE_OP.namespace}.execute_engine")
                warnings.warn(f"torch_tensorrt_rtx: C++ runtime not loaded: {_state['error']}", RuntimeWarning,
                              stacklevel=2)
                return False
            torch.ops.load_library(str(path))
            from torch_tensorrt_rtx.runtime import runtime_cache_file

            runtime_cache_file.connect_native_warnings(path)  # its cache warnings reach `warnings` too
            if bool(torch.ops.tensorrt.engine_op_registered()):
                _connect_settings_scopes()
        except Exception as exc:  # a broken build must not break `import torch_tensorrt_rtx`
            _state["error"] = _loader_error(exc)
            logger.warning("C++ runtime %s could not be loaded (%s); using the Python runtime",
                           path, _state["error"])
            return False
        _state["path"] = path
        return True


def runtime_available() -> bool:
    """True if torch.classes.tensorrt.Engine / torch.ops.tensorrt.execute_engine exist."""
    return load_runtime_library()


def runtime_backend() -> Optional[str]:
    """The TensorRT implementation inside the loaded library ("tensorrt_rtx", "none", ...)."""
    if not runtime_available():
        return None
    import torch

    return str(torch.ops.tensorrt.runtime_backend())


def tensorrt_available() -> bool:
    """True if the loaded C++ runtime can run engines (built with --config=rtx)."""
    return runtime_backend() not in (None, "none")


def engine_op_registered() -> bool:
    """True if the loaded library registered the op saved programs call (it does when it has a
    TensorRT backend that can run engines). Does not load the library."""
    if _state["path"] is None:
        return False
    import torch

    return bool(torch.ops.tensorrt.engine_op_registered())


def engine_op_native() -> bool:
    """True if ``tensorrt_rtx::execute_engine`` runs in C++ (loads the library if needed)."""
    return runtime_available() and engine_op_registered()


def status() -> str:
    if runtime_available():
        return (f"C++ runtime loaded from {_state['path']} "
                f"(TensorRT backend: {runtime_backend()})")
    if _state["error"]:
        return f"C++ runtime failed to load: {_state['error']}; using the Python runtime"
    return (f"C++ runtime not installed ({LIB_DIR / RUNTIME_LIBRARY_NAME} is missing: this installation was made "
            "without the native build -- a Python-only wheel, an editable install or Windows; the platform wheel "
            "that `pip wheel .` builds from the source tree has it, and scripts/build_native.sh puts it into a "
            "source checkout); using the Python runtime")


# -- settings ------------------------------------------------------------------------------
def settings_entries(changes: Mapping[str, Any]) -> list:
    """Settings as the C++ runtime takes and gives them, its one encoding (SettingsOverrides::Parse
    in runtime_settings.cpp): "name=value" entries, ``cache_path=None`` as "cache_disabled".
    ``changes``: every field of a ``runtime.RuntimeSettings`` (``dataclasses.asdict``) or
    per-engine overrides."""
    return ["cache_disabled" if k == "cache_path" and v is None else f"{k}={v}"
            for k, v in sorted(changes.items())]


def settings_changes(entries: Any) -> dict:
    """The settings that ``entries`` (``settings_entries`` or a C++ getter's) name."""
    changes: dict = {}
    for entry in entries:
        if entry == "cache_disabled":
            changes["cache_path"] = None
        else:
            key, _, value = str(entry).partition("=")
            changes[key] = value
    return changes


def settings_from_entries(entries: Any) -> Any:
    """The ``runtime.RuntimeSettings`` a C++ settings getter names (``scope_settings``,
    ``record_engine_settings``, ``Engine.get_runtime_settings``)."""
    from torch_tensorrt_rtx.runtime import RuntimeSettings

    return RuntimeSettings().replace(**settings_changes(entries))


# -- settings scopes reach the engines of saved programs -------------------------------------
class _RecordEngineCaches:
    """Registered as a runtime-cache owner: a settings scope's end saves the caches of the
    C++ engines of saved programs, as it saves the Python modules' caches."""

    def save_runtime_cache(self) -> bool:
        import torch

        return int(torch.ops.tensorrt.save_record_engine_caches()) > 0


_RECORD_ENGINE_CACHES = _RecordEngineCaches()


def _push_scope_settings(settings: Any) -> None:
    import dataclasses

    import torch

    torch.ops.tensorrt.set_scope_settings(settings_entries(dataclasses.asdict(settings)))


def _connect_settings_scopes() -> None:
    """Scope enter/exit (runtime.settings) hands the thread's settings to C++ once; engine calls
    then read them in C++ without any Python."""
    from torch_tensorrt_rtx.runtime import runtime_settings

    runtime_settings.add_scope_listener(_push_scope_settings)
    runtime_settings.register_cache_owner(_RECORD_ENGINE_CACHES)
    if runtime_settings.current_settings() != runtime_settings.DEFAULT_SETTINGS:
        _push_scope_settings(runtime_settings.current_settings())


load_runtime_library()
