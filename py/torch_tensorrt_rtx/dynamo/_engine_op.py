"""The graph-level op that runs one TensorRT-RTX engine: ``torch.ops.tensorrt_rtx.execute_engine``.

    outputs = torch.ops.tensorrt_rtx.execute_engine(inputs, packed_record, output_spec)

- ``inputs``: the engine's input tensors, in binding order.
- ``packed_record``: a uint8 tensor (a buffer of the program) holding ``EngineRecord.pack()``.
- ``output_spec``: the JSON text of ``OutputSpec`` (also stored in the record's
  SERIALIZED_METADATA). It is a separate string argument because export and shape
  propagation run the fake kernel on *fake* tensors, whose bytes cannot be read.

The saved graph therefore names no runtime: the real kernel hands the record to whatever
runtime `_runtime_module` picks (the C++ ``torch.classes.tensorrt.Engine`` when its library
is loaded with TensorRT-RTX, else the Python ``TRTModule``). Output shapes are expressions over
input dims (``"i0_0"`` = input 0, dim 0; e.g. ``"2*i0_0"``), so dynamic batch sizes propagate.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import threading
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import torch

OP_NAME = "tensorrt_rtx::execute_engine"
Dim = Union[int, str]


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    dtype: str  # torch dtype name without the "torch." prefix
    shape: List[Dim]


@dataclasses.dataclass(frozen=True)
class OutputSpec:
    name: str  # engine name
    sha256: str  # of the serialized engine: identity of the engine across processes
    inputs: List[TensorSpec]
    outputs: List[TensorSpec]
    fx_nodes: List[str]  # "<node name>:<op>" for every node converted into this engine

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> "OutputSpec":
        raw = json.loads(text)
        return cls(raw["name"], raw["sha256"], [TensorSpec(**t) for t in raw["inputs"]],
                   [TensorSpec(**t) for t in raw["outputs"]], list(raw["fx_nodes"]))


# Names the shape expressions may use besides input dims (sympy's printing of torch's
# symbolic-shape functions).
_SHAPE_FUNCTIONS: Dict[str, Callable] = {
    "FloorDiv": lambda a, b: a // b, "CeilDiv": lambda a, b: -(-a // b), "Mod": lambda a, b: a % b,
    "Max": lambda *a: functools.reduce(lambda x, y: x if x >= y else y, a),
    "Min": lambda *a: functools.reduce(lambda x, y: x if x <= y else y, a),
}


def evaluate_dim(dim: Dim, inputs: Sequence[Any]) -> Any:
    """An output dim from the spec: an int, or an expression of input dims (works on SymInts)."""
    if isinstance(dim, int):
        return dim
    names = {f"i{k}_{d}": size for k, t in enumerate(inputs) for d, size in enumerate(t.shape)}
    return eval(dim, {"__builtins__": {}}, {**_SHAPE_FUNCTIONS, **names})  # noqa: S307 (own format)


def _dtype(name: str) -> torch.dtype:
    return getattr(torch, name)


@torch.library.custom_op(OP_NAME, mutates_args=())
def execute_engine(inputs: List[torch.Tensor], packed_record: torch.Tensor, output_spec: str) -> List[torch.Tensor]:
    spec = OutputSpec.from_json(output_spec)
    hook = _interceptor()
    if hook is not None:
        return hook(spec, list(inputs), packed_record)
    outputs = _runtime_module(packed_record, spec)(*inputs)
    outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
    return outputs


@execute_engine.register_fake
def _execute_engine_fake(inputs, packed_record, output_spec):
    spec = OutputSpec.from_json(output_spec)
    device = inputs[0].device if inputs else packed_record.device
    return [torch.empty([evaluate_dim(d, inputs) for d in out.shape], dtype=_dtype(out.dtype), device=device)
            for out in spec.outputs]


# -- runtime dispatch ------------------------------------------------------------------------
_MODULES: Dict[str, Any] = {}
_MODULES_LOCK = threading.Lock()


def _runtime_module(packed_record: torch.Tensor, spec: OutputSpec) -> Callable[..., Any]:
    """The one place that picks the runtime for an engine record (cached per engine).

    The C++ runtime (torch.classes.tensorrt.Engine) is used when its library was built (with
    TensorRT-RTX); otherwise the Python runtime's TRTModule.
    """
    with _MODULES_LOCK:
        module = _MODULES.get(spec.sha256)
        if module is None:
            packed = packed_record.detach().cpu().clone()
            if _cpp_runtime_available():
                module = _CppEngineRunner(torch.ops.tensorrt.engine_from_packed(packed))
            else:
                from torch_tensorrt_rtx.runtime import EngineRecord, TRTModule

                module = TRTModule(EngineRecord.from_tensor(packed), name=spec.name)
            _MODULES[spec.sha256] = module
        return module


def _cpp_runtime_available() -> bool:
    # Loads the C++ runtime library (once) if it was built; never raises.
    from torch_tensorrt_rtx import _native

    return _native.tensorrt_available()


class _CppEngineRunner:
    """Runs a C++ ``torch.classes.tensorrt.Engine`` like a TRTModule runs a Python engine.

    Registered as a runtime-cache owner, so leaving a ``runtime.settings`` scope saves its
    cache exactly as it saves the Python modules' caches.
    """

    def __init__(self, engine: Any) -> None:
        from torch_tensorrt_rtx.runtime.runtime_settings import register_cache_owner

        self.engine = engine
        register_cache_owner(self)

    def __call__(self, *inputs: torch.Tensor) -> List[torch.Tensor]:
        # The same scoped runtime settings reach both runtimes; the C++ Engine recreates its
        # execution context lazily, and only when a setting really changed.
        from torch_tensorrt_rtx import _native
        from torch_tensorrt_rtx.runtime import current_settings

        _native.apply_settings(self.engine, current_settings())
        return torch.ops.tensorrt.execute_engine(list(inputs), self.engine)

    def save_runtime_cache(self) -> bool:
        return bool(self.engine.save_runtime_cache())


# -- interception (verification on CPU) ------------------------------------------------------
_LOCAL = threading.local()
Interceptor = Callable[[OutputSpec, List[torch.Tensor], torch.Tensor], List[torch.Tensor]]


def _interceptor() -> Optional[Interceptor]:
    return getattr(_LOCAL, "hook", None)


class intercept_engines:
    """Within this scope (this thread), engine calls go to `hook` instead of a runtime.
    `torch_tensorrt_rtx.verify` uses it to run engines through the reference executor."""

    def __init__(self, hook: Interceptor) -> None:
        self.hook = hook

    def __enter__(self):
        self._previous = _interceptor()
        _LOCAL.hook = self.hook
        return self

    def __exit__(self, *exc):
        _LOCAL.hook = self._previous
        return False
