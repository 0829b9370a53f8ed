"""The program cache's fast key: what `torch_tensorrt_rtx.compile` would export, known without torch.export.

    key = fast_key(module, specs, kwarg_specs, settings, weight_digests)   # hex, or None

The module's forward runs on meta tensors (``torch.func.functional_call`` with a meta copy of every
parameter and buffer, meta inputs) under a recording ``TorchFunctionMode``, once per corner of the
input ranges (min, opt, max; once when every input is static). Each torch call is written down with
its qualified name, every non-tensor argument in a canonical form, each tensor argument by where it
came from (a parameter or buffer by name, an input by position or keyword, or the output of an
earlier call) and the dtypes and shapes of its results. The key is the SHA-256 of that trace with
everything else a compile depends on: the engine cache key's versions, settings and user converters
(``_engine_cache_key``, ``_converter_fingerprint``), the weights' digests (``WeightDigests``), the
Input specs and keyword names, grad mode, autocast and the default dtype, and the version (or, for
code outside an installed package, the source file's digest) of the module defining each
submodule's class.

The key trusts that the same torch calls with the same arguments at min, opt and max give the same
exported graph. Anything it cannot describe gives no key (NoFastKey, logged at debug level) and the
compile takes the normal path: an argument of an unknown type, an exception (such as a
data-dependent ``.item()`` on a meta tensor), a real (non-meta) tensor anywhere, or a forward that
changes the module's Python state (every submodule's ``__dict__``, parameters, buffers and children
are compared shallowly before and after; a change is undone exactly).

At debug level each key is logged with a digest of each of its parts (``key_parts_line``), as the
engine cache's keys are.
"""
from __future__ import annotations

import enum
import functools
import hashlib
import importlib.metadata
import logging
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from torch.overrides import TorchFunctionMode

logger = logging.getLogger(__name__)

KEY_SCHEMA = 2  # 2: program entries hold each engine record's fields
# CompilationSettings fields that cannot change the compiled program (the others are all in the key).
SETTINGS_NOT_IN_PROGRAM_KEY = ("progress", "keep_networks", "debug", "cache_built_engines", "reuse_cached_engines",
                               "engine_cache_dir", "engine_cache_size", "custom_engine_cache")
_PLAIN = (bool, int, float, str, type(None))
_TORCH_ENUMS = (torch.dtype, torch.memory_format, torch.layout)


class NoFastKey(Exception):
    """The module's forward cannot be described by the trace; the reason is the message."""


def _call_name(func: Any) -> str:
    """A stable name for a traced callable (no address); NoFastKey when it has none."""
    owner = getattr(func, "__self__", None)
    if type(func).__name__ == "method-wrapper" and hasattr(owner, "__objclass__"):  # Tensor.shape.__get__
        return f"{owner.__objclass__.__qualname__}.{owner.__name__}.{func.__name__}"
    module, name = getattr(func, "__module__", None), getattr(func, "__name__", None)
    if module and name and getattr(sys.modules.get(module), name, None) is func:  # importable by that name
        return f"{module}.{name}"
    qualname = getattr(func, "__qualname__", None) or name
    if not qualname or "<" in qualname:
        raise NoFastKey(f"a call of {type(func).__name__} {getattr(func, '__name__', '?')!r} with no stable name")
    return f"{module}.{qualname}"


class _Recorder(TorchFunctionMode):
    """Writes down every torch call made under it (see the module docstring)."""

    def __init__(self, sources: Dict[int, str]) -> None:
        super().__init__()
        self.sources = sources  # id(meta tensor) -> "param:<name>" / "input:<path>" / "%<call>.<k>"
        self.alive: List[torch.Tensor] = []  # every labelled tensor, so that no id is reused
        self.lines: List[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        text = f"{_call_name(func)}{self.arg(args)}{self.arg(kwargs)}"
        out = func(*args, **kwargs)
        index = len(self.lines)
        self.lines.append(f"%{index}={text}->{self.result(out, f'%{index}', [0])}")
        return out

    def arg(self, value: Any) -> str:
        if isinstance(value, torch.Tensor):
            self.check_meta(value)
            source = self.sources.get(id(value))
            if source is None:
                raise NoFastKey("a tensor that is neither a parameter, a buffer, an input nor an op's result "
                                "(a tensor attribute or a global?)")
            return source
        if isinstance(value, _PLAIN):
            return repr(value)
        if isinstance(value, _TORCH_ENUMS):
            return str(value)
        if isinstance(value, torch.device):
            return "device:traced" if value.type == "meta" else f"device:{value}"
        if isinstance(value, torch.Size):
            return f"Size{tuple(value)}"
        if isinstance(value, (tuple, list)):
            items = ",".join(self.arg(v) for v in value)
            return f"({items})" if isinstance(value, tuple) else f"[{items}]"
        if isinstance(value, dict):
            return "{" + ",".join(f"{self.arg(k)}:{self.arg(v)}" for k, v in value.items()) + "}"
        if isinstance(value, slice):
            return f"slice({self.arg(value.start)},{self.arg(value.stop)},{self.arg(value.step)})"
        if value is Ellipsis:
            return "..."
        if isinstance(value, enum.Enum) and type(value).__module__.startswith("torch"):
            return f"{type(value).__qualname__}.{value.name}"
        raise NoFastKey(f"an argument of type {type(value).__module__}.{type(value).__qualname__}")

    def result(self, value: Any, label: str, counter: List[int]) -> str:
        if isinstance(value, torch.Tensor):
            self.check_meta(value)
            self.sources[id(value)] = f"{label}.{counter[0]}"
            counter[0] += 1
            self.alive.append(value)
            return f"{value.dtype}{tuple(value.shape)}/{value.stride() if value.layout == torch.strided else ''}"
        if isinstance(value, (tuple, list)) and not isinstance(value, torch.Size):
            return "(" + ",".join(self.result(v, label, counter) for v in value) + ")"
        return self.arg(value)

    @staticmethod
    def check_meta(tensor: torch.Tensor) -> None:
        if tensor.device.type != "meta":
            raise NoFastKey(f"a real {tensor.device.type} tensor of shape {tuple(tensor.shape)} in the forward")


def _snapshot(module: torch.nn.Module) -> List[Tuple[torch.nn.Module, List[Tuple[Dict, Dict]]]]:
    """Shallow copies of every submodule's __dict__ and of its parameter, buffer and child dicts."""
    taken = []
    for sub in module.modules():
        held = [sub.__dict__] + [sub.__dict__[name] for name in ("_parameters", "_buffers", "_modules")
                                 if isinstance(sub.__dict__.get(name), dict)]
        taken.append((sub, [(d, dict(d)) for d in held]))
    return taken


def _restore(snapshot) -> List[str]:
    """Put back what the forward changed; the names of what it changed."""
    changed = []
    for sub, dicts in snapshot:
        for live, saved in dicts:
            if live.keys() != saved.keys() or any(live[k] is not v for k, v in saved.items()):
                names = sorted(k for k in live.keys() | saved.keys() if live.get(k, live) is not saved.get(k, saved))
                changed.append(f"{type(sub).__name__}.{','.join(map(str, names))}")
                live.clear()
                live.update(saved)
    return changed


def _exporting_flags():
    """torch's own context that non-strict torch.export runs forward under (is_compiling() and
    is_exporting() true), so the trace takes export's branches; NoFastKey where torch has none."""
    try:
        from torch._export.utils import _compiling_state_context
    except ImportError:
        raise NoFastKey("this torch has no torch._export.utils._compiling_state_context") from None
    return _compiling_state_context()


def _meta_input(spec: Any, shape: Tuple[int, ...]) -> torch.Tensor:
    return torch.empty(shape, dtype=spec.dtype, device="meta", memory_format=spec.format)


def _corners(specs: Sequence[Any]) -> List[str]:
    """min, opt, max (all inputs at the same corner); only one when every input is static."""
    return ["opt_shape"] if all(not s.dynamic_dims for s in specs) else ["min_shape", "opt_shape", "max_shape"]


def trace_text(module: torch.nn.Module, specs: Sequence[Any], kwarg_specs: Dict[str, Any],
           weights: Dict[int, Tuple[str, torch.Tensor]]) -> str:
    """The key's trace part: the recorded calls of one forward per corner on meta tensors (see the
    module docstring); NoFastKey."""
    lines = []
    for corner in _corners(list(specs) + list(kwarg_specs.values())):
        metas = {i: torch.empty_like(t, device="meta") for i, (_, t) in weights.items()}
        state = {name: metas[id(t)] for name, t in _named_tensors(module)}
        sources = {id(metas[i]): f"param:{name}" for i, (name, _) in weights.items()}
        args = [_meta_input(s, getattr(s, corner)) for s in specs]
        kwargs = {k: _meta_input(s, getattr(s, corner)) for k, s in kwarg_specs.items()}
        sources.update({id(t): f"input:{k}" for k, t in enumerate(args)})
        sources.update({id(t): f"input:{k}" for k, t in kwargs.items()})
        recorder = _Recorder(sources)
        snapshot = _snapshot(module)
        try:
            with _exporting_flags(), recorder:  # what non-strict torch.export's forward sees
                torch.func.functional_call(module, state, tuple(args), kwargs, strict=True)
        except NoFastKey:
            raise
        except Exception as exc:  # noqa: BLE001 - a data-dependent op, an op with no meta kernel, ...
            raise NoFastKey(f"the meta trace raised {type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from exc
        finally:
            changed = _restore(snapshot)
        if changed:
            raise NoFastKey(f"the forward changed the module's state ({'; '.join(changed[:3])}); undone")
        lines.append(f"corner {corner}")
        lines.extend(recorder.lines)
    return "\n".join(lines)


def _named_tensors(module: torch.nn.Module):
    yield from module.named_parameters(remove_duplicate=False)
    yield from module.named_buffers(remove_duplicate=False)


def unique_weights(module: torch.nn.Module) -> Dict[int, Tuple[str, torch.Tensor]]:
    """id(tensor) -> (its first name, the tensor), in named order."""
    found: Dict[int, Tuple[str, torch.Tensor]] = {}
    for name, tensor in _named_tensors(module):
        found.setdefault(id(tensor), (name, tensor))
    return found


@functools.lru_cache(maxsize=None)
def _package_version(top: str) -> Optional[str]:
    """The version of the installed top-level package `top`, or None."""
    version = getattr(sys.modules.get(top), "__version__", None)
    if isinstance(version, str):
        return version
    try:
        return importlib.metadata.version(top)
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return None


def _module_version(module_name: str) -> str:
    """The version of the installed package defining `module_name`, else its source file's digest
    (read without blocking, bounded, again whenever the file's mtime or size changes)."""
    from torch_tensorrt_rtx.dynamo._converter_fingerprint import source_file_digest

    top = module_name.split(".")[0]
    version = _package_version(top)
    if version is not None:
        return f"{top}=={version}"
    path = getattr(sys.modules.get(module_name), "__file__", None)
    if not path:
        raise NoFastKey(f"classes of module {module_name!r}, which has neither a version nor a source file")
    return f"{module_name}@{source_file_digest(path, what='a module class')}"


def _classes_text(module: torch.nn.Module) -> str:
    classes = sorted({(type(m).__module__, type(m).__qualname__) for m in module.modules()})
    if any(name == "__main__" and not getattr(sys.modules.get(name), "__file__", None) for name, _ in classes):
        raise NoFastKey("a module class defined in an interactive __main__ (no source file to fingerprint)")
    return "\n".join(f"class {mod}.{qual} {_module_version(mod)}" for mod, qual in classes)


def _settings_text(settings: Any) -> str:
    from torch_tensorrt_rtx.dynamo._engine_cache_key import ENGINE_SETTINGS, settings_text

    others = []
    for name in sorted(settings.field_names() - set(ENGINE_SETTINGS) - set(SETTINGS_NOT_IN_PROGRAM_KEY)):
        value = getattr(settings, name)
        others.append(f"{name}={sorted(map(str, value)) if isinstance(value, (set, frozenset)) else value!r}")
    return settings_text(settings) + "|" + "|".join(others)


def _converters_text() -> str:
    """Every converter and precision declaration registered now (the user's fingerprinted by code)."""
    from torch_tensorrt_rtx.dynamo._converter_fingerprint import converters_text
    from torch_tensorrt_rtx.dynamo._engine_cache_key import _callable_name
    from torch_tensorrt_rtx.dynamo.conversion import _registry

    entries = ((_callable_name(t), _registry.registry_entries(t)) for t in _registry.registered_targets())
    precision = sorted(f"{t}:{policy.value}:{who}" for t, (policy, who) in _registry._PRECISION.items())
    return converters_text(entries) + "\nprecision " + ";".join(precision)


def _specs_text(specs: Sequence[Any], kwarg_specs: Dict[str, Any]) -> str:
    def one(spec: Any) -> str:
        return (f"{spec.min_shape}/{spec.opt_shape}/{spec.max_shape}/{spec.dtype}/{spec.name!r}/"
                f"{spec.dim_names!r}/{spec.format}")
    return "inputs " + ";".join(one(s) for s in specs) + " kwargs " + ";".join(
        f"{k}={one(s)}" for k, s in kwarg_specs.items())


def _modes_text() -> str:
    autocast = [(device, torch.is_autocast_enabled(device), str(torch.get_autocast_dtype(device)))
                for device in ("cpu", "cuda")]
    return f"grad={torch.is_grad_enabled()} autocast={autocast} default_dtype={torch.get_default_dtype()}"


def key_parts(module: torch.nn.Module, specs: Sequence[Any], kwarg_specs: Dict[str, Any],
              settings: Any) -> Dict[str, str]:
    """Every part of the fast key but the trace and the weights (cheap: no forward); NoFastKey
    with the reason when there is none."""
    from torch_tensorrt_rtx.dynamo._engine_cache_key import Uncacheable, versions

    try:
        return {"schema": f"program schema={KEY_SCHEMA}", "versions": versions(), "settings": _settings_text(settings),
                "converters": _converters_text(), "inputs": _specs_text(specs, kwarg_specs), "modes": _modes_text(),
                "classes": _classes_text(module)}
    except Uncacheable as exc:
        raise NoFastKey(str(exc)) from exc
    except OSError as exc:
        raise NoFastKey(f"a class's source file could not be read: {exc}") from exc


def marker_key(parts: Dict[str, str]) -> str:
    """The key of the program cache's marker for `parts` (key_parts): a stored program's entry
    comes with one, so a compile without it knows before tracing that it cannot hit."""
    return hashlib.sha256("\n".join(["program marker schema=1", *parts.values()]).encode()).hexdigest()


def finish_key(parts: Dict[str, str], trace: str, weights: Dict[int, Tuple[str, torch.Tensor]],
               weight_digests: Any) -> str:
    """The fast key from key_parts, trace_text and the weights' digests."""
    from torch_tensorrt_rtx.dynamo._engine_cache_key import Uncacheable, key_parts_line

    parts = dict(parts, trace=trace)
    try:
        weight_lines = [f"weight {name} {weight_digests.digest(t)}" for name, t in weights.values()]
    except Uncacheable as exc:
        raise NoFastKey(str(exc)) from exc
    key = hashlib.sha256("\n".join(list(parts.values()) + weight_lines).encode()).hexdigest()
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug("program cache key %s parts %s", key, key_parts_line(dict(parts, weights="\n".join(weight_lines))))
    return key


def fast_key(module: torch.nn.Module, specs: Sequence[Any], kwarg_specs: Dict[str, Any], settings: Any,
             weight_digests: Any) -> str:
    """The program cache key (hex SHA-256) of compiling `module`; NoFastKey with the reason when
    there is none (see the module docstring)."""
    weights = unique_weights(module)
    parts = key_parts(module, specs, kwarg_specs, settings)
    return finish_key(parts, trace_text(module, specs, kwarg_specs, weights), weights, weight_digests)
