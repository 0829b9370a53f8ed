"""The op saved programs call to run one engine: ``torch.ops.tensorrt_rtx.execute_engine``.

    outputs = torch.ops.tensorrt_rtx.execute_engine(inputs, packed_record, output_spec)

- ``inputs``: the engine's input tensors, in binding order.
- ``packed_record``: a uint8 tensor (a constant of the program) holding ``EngineRecord.pack()``.
- ``output_spec``: the JSON text of ``OutputSpec``; only the fake kernel reads it (export and
  shape propagation run on *fake* tensors, whose bytes cannot be read).

Name and schema are defined once, in ``runtime/definitions.toml``. The C++ runtime library
registers the op natively when it is loaded and can run engines (torch_bindings.cpp): then a
call does no Python work at all. Only otherwise does this module register the same schema with
a Python kernel, which runs the engine through the Python runtime's ``TRTModule``. Either way
the engine is built at the first call and attached to the ``packed_record`` tensor, so it
lives exactly as long as the program that holds that tensor (no process-global table).
Saved graphs name only this op, so a ``.pt2`` runs on either runtime.

Output shapes are expressions over input dims (``"i0_0"`` = input 0, dim 0), parsed by
``_shape_expr`` (never ``eval``), so dynamic batch sizes propagate. A ``null`` dim is
data-dependent (``nonzero``): known only after the engine ran; the fake kernel gives it a new
unbacked size and the runtime fetches such outputs through an output allocator.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import threading
from typing import Any, Callable, Dict, List, Optional, Union

import torch

from torch_tensorrt_rtx.runtime import _native, bounded_json
from torch_tensorrt_rtx.runtime import upstream_api as _upstream_runtime
from torch_tensorrt_rtx.dynamo._shape_expr import ShapeExpressionError, evaluate_dim  # noqa: F401 (API)
from torch_tensorrt_rtx.runtime.definitions import ENGINE_OP

logger = logging.getLogger(__name__)

OP_NAME = ENGINE_OP.qualified_name
Dim = Union[int, str]


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    dtype: str  # torch dtype name without the "torch." prefix
    shape: List[Optional[Dim]]  # None: a data-dependent dim

    @property
    def data_dependent(self) -> bool:
        return any(d is None for d in self.shape)


@dataclasses.dataclass(frozen=True)
class OutputSpec:
    name: str  # engine name
    sha256: str  # of the serialized engine: identity of the engine across processes
    inputs: List[TensorSpec]
    outputs: List[TensorSpec]
    fx_nodes: List[str]  # "<node name>:<op>" for every node converted into this engine
    # Weightless engines: TensorRT weight names of the op's trailing inputs (after the engine's own
    # inputs), refitted into the engine before its first run. Empty: the engine holds its weights.
    refit_weights: List[str] = dataclasses.field(default_factory=list)
    # Those of them computed from model weights at build time (a folded batch norm, a second use
    # of a weight) -> the model weights' names: refit_module_weights cannot change these.
    refit_derived: Dict[str, List[str]] = dataclasses.field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> "OutputSpec":
        raw = load_spec(text)
        return cls(raw["name"], raw["sha256"], [TensorSpec(**t) for t in raw["inputs"]],
                   [TensorSpec(**t) for t in raw["outputs"]], list(raw["fx_nodes"]),
                   [str(n) for n in raw.get("refit_weights", [])],
                   {str(k): [str(n) for n in v] for k, v in raw.get("refit_derived", {}).items()})


MAX_SPEC_CHARS = 1 << 26


def load_spec(text: str) -> Any:
    """An output spec's JSON, from a saved graph: bounded in length and nesting."""
    return bounded_json.loads(text, "engine output spec", MAX_SPEC_CHARS)


def torch_dtype(name: str) -> torch.dtype:
    """A dtype named in a spec ("float32"); anything that is not a torch dtype is refused."""
    value = getattr(torch, name, None) if isinstance(name, str) and name.isidentifier() else None
    if not isinstance(value, torch.dtype):
        raise ValueError(f"output spec dtype {name!r} is not a torch dtype (expected e.g. 'float32')")
    return value


def fake_outputs(outputs: List[Any], inputs: List[torch.Tensor], device: torch.device) -> List[torch.Tensor]:
    """Empty tensors shaped by an output spec's ``outputs`` (``[{"dtype", "shape"}]``); a ``None``
    (data-dependent) dim becomes a new unbacked size of the fake kernel's context."""
    def dim(d):
        return torch.library.get_ctx().new_dynamic_size() if d is None else evaluate_dim(d, inputs)

    return [torch.empty([dim(d) for d in out["shape"]], dtype=torch_dtype(out["dtype"]), device=device)
            for out in outputs]


# -- the Python kernel (only when the C++ runtime does not provide the op) -----------------
# The attribute of a packed-record tensor holding its runtime module (which keeps the
# per-engine overrides set through torch_tensorrt_rtx.program_engines).
_MODULE_ATTR = "_torch_tensorrt_rtx_runtime_module"
_ATTACH_LOCK = threading.Lock()  # guards attaching only; it holds no engine


def _new_python_module(record: Any, name: str) -> Any:
    """The Python runtime's module for one engine (tests substitute a test double here)."""
    from torch_tensorrt_rtx.runtime import TRTModule

    return TRTModule(record, name=name)


def python_runtime_module(packed_record: torch.Tensor) -> Any:
    """The TRTModule attached to ``packed_record`` (built at the first call or override; dies
    with it). Building it decodes the record but touches no GPU and no TensorRT."""
    module = packed_record.__dict__.get(_MODULE_ATTR)
    if module is not None:
        return module
    with _ATTACH_LOCK:
        module = packed_record.__dict__.get(_MODULE_ATTR)
        if module is None:
            from torch_tensorrt_rtx.runtime import EngineRecord

            # A view of the record's bytes, not a copy (a GPU record is copied to the CPU once). It
            # goes through a detached alias, so the module (kept in packed_record.__dict__) does not
            # reference packed_record itself: no reference cycle, freed with the program.
            record = EngineRecord.from_tensor(packed_record.detach().cpu())
            module = _new_python_module(record, record.name or "trt_engine")
            packed_record.__dict__[_MODULE_ATTR] = module
    return module


def _execute_engine_python(inputs: List[torch.Tensor], packed_record: torch.Tensor,
                           output_spec: str) -> List[torch.Tensor]:
    module = python_runtime_module(packed_record)
    own = len(module.record.input_names)
    if len(inputs) > own:  # a weightless engine: the trailing inputs are its weights
        inputs, weights = inputs[:own], inputs[own:]
        if module.needs_refit:
            module.refit_before_run(list(load_spec(output_spec).get("refit_weights", [])), list(weights))
    outputs = module(*inputs)
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


def _execute_engine_fake(inputs, packed_record, output_spec):
    spec = load_spec(output_spec)
    device = inputs[0].device if inputs else packed_record.device
    return fake_outputs(spec["outputs"], list(inputs), device)


def _register() -> bool:
    """Registers the op's Python parts; True if the C++ runtime implements the op itself."""
    native = _native.engine_op_native()
    if not native:
        if _native.runtime_available():
            logger.info("%s: the C++ runtime has no TensorRT backend; engines run through the "
                        "Python runtime", OP_NAME)
        library = torch.library.Library(ENGINE_OP.namespace, "FRAGMENT")
        library.define(ENGINE_OP.schema)
        library.impl(ENGINE_OP.name, _execute_engine_python, "CompositeExplicitAutograd")
        _LIBRARIES.append(library)  # a Library deregisters its ops when collected
    torch.library.register_fake(OP_NAME)(_execute_engine_fake)
    return native


_LIBRARIES: List[Any] = []
NATIVE = _register()


def runtime_engines(module: torch.nn.Module) -> List[Any]:
    """(buffer name, runtime module) of each engine of a compiled program, for
    runtime.weight_streaming: the Python runtime's TRTModule, or on the C++ runtime a
    NativeStreamingEngine (_program_engine.py) with the same budget interface."""
    records = [(name, t) for name, t in module.named_buffers()
               if name.endswith("_engine") and t.dtype == torch.uint8 and t.dim() == 1]
    if NATIVE:
        from torch_tensorrt_rtx.dynamo._program_engine import NativeStreamingEngine

        return [(name, NativeStreamingEngine(t)) for name, t in records]
    return [(name, python_runtime_module(t)) for name, t in records]


_upstream_runtime.add_engine_finder(runtime_engines)
execute_engine = getattr(torch.ops, ENGINE_OP.namespace).execute_engine


# -- interception (verification on CPU) ------------------------------------------------------
Interceptor = Callable[["OutputSpec", List[torch.Tensor], torch.Tensor], List[torch.Tensor]]
_LOCAL = threading.local()
_INTERCEPT_LOCK = threading.Lock()
_INTERCEPT: dict = {"scopes": 0, "library": None}
# Backend keys the interceptor kernel is registered for; they take precedence over the
# op's CompositeExplicitAutograd kernel (C++ or Python) while any scope is open, which is
# still reached by redispatching to its own key.
_INTERCEPT_KEYS = ("CPU", "CUDA")
_NATIVE_KERNEL_KEYS = torch._C.DispatchKeySet(torch._C.DispatchKey.CompositeExplicitAutograd)


def _interceptor() -> Optional[Interceptor]:
    return getattr(_LOCAL, "hook", None)


def _execute_engine_intercepted(inputs, packed_record, output_spec):
    hook = _interceptor()
    if hook is not None:
        return hook(OutputSpec.from_json(output_spec), list(inputs), packed_record)
    if NATIVE:  # another thread, outside any scope: the C++ kernel, past the interceptor's keys
        return execute_engine.default.redispatch(_NATIVE_KERNEL_KEYS, list(inputs), packed_record, output_spec)
    return _execute_engine_python(inputs, packed_record, output_spec)


class intercept_engines:
    """Within this scope (this thread), engine calls go to ``hook(spec, inputs, packed_record)``
    instead of a runtime, whichever runtime implements the op and however the program runs
    (eager, torch.compile, a loaded .pt2). ``torch_tensorrt_rtx.verify`` uses it to run
    engines through the reference executor. While any scope is open, engine calls of other
    threads go through one Python function (the interceptor kernel) to their runtime."""

    def __init__(self, hook: Interceptor) -> None:
        self.hook = hook

    def __enter__(self):
        with _INTERCEPT_LOCK:
            if _INTERCEPT["scopes"] == 0:
                library = torch.library.Library(ENGINE_OP.namespace, "IMPL")
                for key in _INTERCEPT_KEYS:
                    library.impl(ENGINE_OP.name, _execute_engine_intercepted, key)
                _INTERCEPT["library"] = library
            _INTERCEPT["scopes"] += 1
        self._previous = _interceptor()
        _LOCAL.hook = self.hook
        return self

    def __exit__(self, *exc):
        _LOCAL.hook = self._previous
        with _INTERCEPT_LOCK:
            _INTERCEPT["scopes"] -= 1
            if _INTERCEPT["scopes"] == 0:
                _INTERCEPT.pop("library")._destroy()
                _INTERCEPT["library"] = None
        return False
