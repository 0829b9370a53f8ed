"""A test double of the few tensorrt_rtx runtime objects TRTModule uses (tests only).

``TrtDouble()`` stands in for the ``tensorrt_rtx`` module: ``Runtime``,
``ICudaEngine``, ``IRuntimeConfig``, ``IRuntimeCache``, ``IExecutionContext`` and the
enums, with the same method names, argument order and failure conventions as the 1.7
Python API (``deserialize_cuda_engine`` returns None on bad bytes, cache ``deserialize``
returns False on a bad blob, ``set_input_shape`` returns False outside the profile,
contexts read the config's strategies at creation). Every call that matters is appended
to ``api.journal`` so tests can check order.

Engines are JSON behind a magic prefix (``make_engine_bytes``). Execution computes
``relu(x)`` elementwise on CPU float32 memory through the bound addresses, and "JIT
compiles" one kernel per new input shape into the runtime cache (so caches change).
A data-dependent output (``make_engine_bytes(..., data_dependent=[name])``) holds the positive
elements of the first input, flattened (``x[x > 0]``): its shape is (-1,) until the run, which
asks the output's ``IOutputAllocator`` for memory and reports the final shape to it, as
TensorRT-RTX does; without an allocator such a run fails. Any output with an allocator set is
fetched through it.

test_trt_double_contract.py holds this claim to the real module: every class, method,
property and enum member here must exist there with a compatible signature and the same
values, except the test hooks listed in ``DOUBLE_ONLY`` (which the real API must not have).
"""
from __future__ import annotations

import ctypes
import enum
import hashlib
import json
from typing import Any

import numpy as np

ENGINE_MAGIC = b"DBLENG01"
CACHE_MAGIC = b"DBLCACHE"


class DataType(enum.Enum):
    FLOAT = 0
    HALF = 1
    INT32 = 3


class DynamicShapesKernelSpecializationStrategy(enum.Enum):
    LAZY = 0
    EAGER = 1
    NONE = 2


class CudaGraphStrategy(enum.Enum):
    DISABLED = 0
    WHOLE_GRAPH_CAPTURE = 1


class ExecutionContextAllocationStrategy(enum.Enum):
    STATIC = 0
    ON_PROFILE_CHANGE = 1
    USER_MANAGED = 2


class EngineValidity(enum.Enum):
    VALID = 0
    SUBOPTIMAL = 1
    INVALID = 2


class EngineInvalidityDiagnostics(enum.IntEnum):
    VERSION_MISMATCH = 1
    UNSUPPORTED_CC = 2
    MALFORMED_ENGINE = 32


def stand_in_device(capability: tuple = (8, 6)):
    """A replacement for ``torch_tensorrt_rtx.runtime.device._device``: a GPU of ``capability``."""
    found = f"cuda:0 stand-in GPU of the tensorrt_rtx test double, compute capability {capability[0]}.{capability[1]}"
    return lambda: (0, tuple(capability), found)


def stand_in_gpu(capability: tuple = (8, 6)):
    """Make ``torch_tensorrt_rtx.runtime.device`` report a GPU of ``capability`` (the double runs
    on host memory, so no real GPU is involved): the runtime's GPU checks run against it
    instead of being skipped. Returns a function that restores the real device query."""
    from torch_tensorrt_rtx.runtime import device

    real = device._device
    device._device = stand_in_device(capability)
    device.supported_gpu.cache_clear()

    def restore() -> None:
        device._device = real
        device.supported_gpu.cache_clear()

    return restore


def make_engine_bytes(inputs: dict[str, tuple], outputs: list[str], dtype: str = "FLOAT",
                      data_dependent: tuple = (), weights: dict[str, int] | None = None,
                      streamable: int = 0) -> bytes:
    """inputs: name -> (min, opt, max) shapes; each output has the first input's shape, except
    the `data_dependent` ones (the first input's positive elements).
    weights: a weightless engine's refittable weights, name -> element count; it runs only once
    all are refitted, and scales its output by the first element of the first weight.
    streamable: bytes of streamable weights (weight streaming; the budget starts there, is capped
    there, and the automatic budget is half of it)."""
    spec = {"inputs": {n: [list(s) for s in p] for n, p in inputs.items()},
            "outputs": outputs, "dtype": dtype, "data_dependent": list(data_dependent)}
    if weights:
        spec["weights"] = dict(weights)
    if streamable:
        spec["streamable"] = streamable
    return ENGINE_MAGIC + json.dumps(spec).encode()


class Logger:
    class Severity(enum.IntEnum):
        INTERNAL_ERROR = 0
        ERROR = 1
        WARNING = 2
        INFO = 3
        VERBOSE = 4

    WARNING = Severity.WARNING
    ERROR = Severity.ERROR

    def __init__(self, min_severity: Severity = Severity.WARNING) -> None:
        self.min_severity = min_severity


class IRuntimeCache:
    def __init__(self, api: "TrtDouble") -> None:
        self._api = api
        self.kernels: dict[str, str] = {}

    def serialize(self) -> bytes:
        self._api.journal.append("cache.serialize")
        payload = json.dumps(self.kernels, sort_keys=True).encode()
        return CACHE_MAGIC + hashlib.sha256(payload).digest() + payload

    def deserialize(self, blob) -> bool:
        data = bytes(blob)
        self._api.journal.append("cache.deserialize")
        body = data[len(CACHE_MAGIC) + 32:]
        if (not data.startswith(CACHE_MAGIC)
                or hashlib.sha256(body).digest() != data[len(CACHE_MAGIC):len(CACHE_MAGIC) + 32]):
            return False  # rejected, cache unchanged (as documented for the real one)
        self.kernels.update(json.loads(body))
        return True

    def reset(self) -> bool:
        self.kernels.clear()
        return True


class IRuntimeConfig:
    def __init__(self, api: "TrtDouble") -> None:
        self._api = api
        self._cache = None
        self._alloc = ExecutionContextAllocationStrategy.STATIC
        self.dynamic_shapes_kernel_specialization_strategy = \
            DynamicShapesKernelSpecializationStrategy.LAZY
        self.cuda_graph_strategy = CudaGraphStrategy.DISABLED

    def create_runtime_cache(self) -> IRuntimeCache:
        self._api.journal.append("config.create_runtime_cache")
        return IRuntimeCache(self._api)

    def set_runtime_cache(self, cache: IRuntimeCache = None) -> bool:
        self._api.journal.append("config.set_runtime_cache")
        self._cache = cache
        return True

    def get_runtime_cache(self):
        return self._cache

    def set_execution_context_allocation_strategy(
            self, strategy: ExecutionContextAllocationStrategy = ExecutionContextAllocationStrategy.STATIC
    ) -> None:
        self._alloc = ExecutionContextAllocationStrategy(strategy)

    def get_execution_context_allocation_strategy(self):
        return self._alloc


class IOutputAllocator:
    """Base class of output allocators (the runtime subclasses it, as for the real one)."""

    def __init__(self) -> None:
        pass


class IExecutionContext:
    def __init__(self, engine: "ICudaEngine", config: IRuntimeConfig) -> None:
        self.engine = engine
        # Like the real runtime, the context takes the strategies at creation time.
        self.kernel_strategy = DynamicShapesKernelSpecializationStrategy(
            config.dynamic_shapes_kernel_specialization_strategy)
        self.cuda_graph_strategy = CudaGraphStrategy(config.cuda_graph_strategy)
        self.allocation_strategy = config.get_execution_context_allocation_strategy()
        self.runtime_cache = config.get_runtime_cache()
        self._shapes: dict[str, tuple] = {}
        self._addresses: dict[str, int] = {}
        self._allocators: dict[str, IOutputAllocator] = {}
        self.executions = 0

    def set_input_shape(self, name: str, shape: tuple) -> bool:
        lo, _, hi = self.engine.get_tensor_profile_shape(name, 0)
        if len(shape) != len(lo) or not all(a <= v <= b for v, a, b in zip(shape, lo, hi)):
            return False
        self._shapes[name] = tuple(shape)
        return True

    def get_tensor_shape(self, name: str) -> tuple:
        if name in self.engine.spec["inputs"]:
            return self._shapes.get(name, self.engine.get_tensor_shape(name))
        if name in self.engine.spec.get("data_dependent", ()):
            return (-1,)
        first = next(iter(self.engine.spec["inputs"]))
        return self._shapes.get(first, self.engine.get_tensor_shape(first))

    def set_tensor_address(self, name: str, memory: int) -> bool:
        self._addresses[name] = memory
        return True

    def set_output_allocator(self, name: str, output_allocator: IOutputAllocator) -> bool:
        if name not in self.engine.spec["outputs"]:
            return False
        self._allocators[name] = output_allocator
        return True

    def get_output_allocator(self, name: str) -> IOutputAllocator:
        return self._allocators.get(name)

    def _output_address(self, name: str, count: int, stream_handle: int) -> int:
        """The address output `name` is written to (through its allocator when it has one); 0 if none."""
        allocator = self._allocators.get(name)
        if allocator is None:
            return 0 if name in self.engine.spec.get("data_dependent", ()) else self._addresses.get(name, 0)
        memory = allocator.reallocate_output_async(name, self._addresses.get(name, 0), count * 4, 256, stream_handle)
        if memory:
            self._addresses[name] = memory
        return memory

    def update_device_memory_size_for_shapes(self) -> int:
        return 256

    def set_device_memory(self, memory: int, size: int) -> None:
        self.engine.api.journal.append(f"context.set_device_memory {size}")
        if memory and size >= self.update_device_memory_size_for_shapes():
            self._addresses["<scratch>"] = memory

    def execute_async_v3(self, stream_handle: int) -> bool:
        if (self.allocation_strategy == ExecutionContextAllocationStrategy.USER_MANAGED
                and "<scratch>" not in self._addresses):
            return False  # as TensorRT: a user_managed context has no scratch memory of its own
        wanted = self.engine.spec.get("weights", {})
        if set(wanted) - set(self.engine.refitted):
            return False  # a weightless engine that was never refitted
        scale = float(self.engine.refitted[next(iter(wanted))][0]) if wanted else 1.0
        first = next(iter(self.engine.spec["inputs"]))
        shape = self._shapes[first]
        n = 1
        for d in shape:
            n *= d
        src = (ctypes.c_float * n).from_address(self._addresses[first])
        for out in self.engine.spec["outputs"]:
            if out in self.engine.spec.get("data_dependent", ()):
                values = [scale * v for v in src if v > 0]
                out_shape = (len(values),)
            else:
                values, out_shape = [scale * v if v > 0 else 0.0 for v in src], shape
            address = self._output_address(out, len(values), stream_handle)
            if not address:
                return False  # TensorRT: no address and no allocator for an output
            dst = (ctypes.c_float * len(values)).from_address(address)
            for i, v in enumerate(values):
                dst[i] = v
            if out in self._allocators:
                self._allocators[out].notify_shape(out, out_shape)
        kernel = f"relu{shape}"
        if self.runtime_cache is not None and kernel not in self.runtime_cache.kernels:
            self.runtime_cache.kernels[kernel] = "sass"  # "JIT": one kernel per new shape
            self.engine.api.journal.append("jit")
        self.executions += 1
        self.engine.api.journal.append("context.execute_async_v3")
        return True


class ICudaEngine:
    def __init__(self, api: "TrtDouble", spec: dict) -> None:
        self.api = api
        self.spec = spec
        self.contexts: list[IExecutionContext] = []
        self.refitted: dict[str, np.ndarray] = {}  # weight name -> values of the last refit
        self._budget = int(spec.get("streamable", 0))

    @property
    def streamable_weights_size(self) -> int:
        return int(self.spec.get("streamable", 0))

    @property
    def weight_streaming_budget_v2(self) -> int:
        return self._budget

    @weight_streaming_budget_v2.setter
    def weight_streaming_budget_v2(self, budget: int) -> None:
        self._budget = min(int(budget), self.streamable_weights_size)
        self.api.journal.append(f"engine.weight_streaming_budget_v2 {self._budget}")

    def get_weight_streaming_automatic_budget(self) -> int:
        return self.streamable_weights_size // 2

    @property
    def num_io_tensors(self) -> int:
        return len(self.spec["inputs"]) + len(self.spec["outputs"])

    def get_tensor_name(self, index: int) -> str:
        return (list(self.spec["inputs"]) + list(self.spec["outputs"]))[index]

    def get_tensor_dtype(self, name: str) -> DataType:
        return DataType[self.spec["dtype"]]

    def get_tensor_profile_shape(self, name: str, profile_index: int) -> list[tuple]:
        if profile_index != 0 or name not in self.spec["inputs"]:
            raise RuntimeError(f"no profile shape for {name!r}/{profile_index}")
        return [tuple(s) for s in self.spec["inputs"][name]]

    def get_tensor_shape(self, name: str) -> tuple:
        lo, _, hi = self.spec["inputs"].get(name, next(iter(self.spec["inputs"].values())))[::1]
        return tuple(a if a == b else -1 for a, b in zip(lo, hi))

    def create_runtime_config(self) -> IRuntimeConfig:
        self.api.journal.append("engine.create_runtime_config")
        return IRuntimeConfig(self.api)

    def create_execution_context(self, runtime_config: IRuntimeConfig = None) -> IExecutionContext:
        self.api.journal.append("engine.create_execution_context")
        ctx = IExecutionContext(self, runtime_config or IRuntimeConfig(self.api))
        self.contexts.append(ctx)
        return ctx


class Weights:
    def __init__(self, a: np.ndarray) -> None:
        self._array = np.array(a, copy=True)

    @property
    def size(self) -> int:
        return int(self._array.size)


class Refitter:
    """Records set_named_weights calls (in the journal) and refuses an unknown name or a weight of
    the wrong element count, as TensorRT does; refit_cuda_engine needs every weight set."""

    def __init__(self, engine: ICudaEngine, logger: ILogger) -> None:  # noqa: F821 (the real type name)
        self._engine = engine
        self._pending: dict[str, np.ndarray] = {}

    def get_all_weights(self) -> list[str]:
        return list(self._engine.spec.get("weights", {}))

    def get_missing_weights(self) -> list[str]:
        return [n for n in self.get_all_weights() if n not in self._pending]

    def set_named_weights(self, name: str, weights: Weights) -> bool:
        expected = self._engine.spec.get("weights", {}).get(name)
        if expected is None or expected != weights.size:
            return False
        self._engine.api.journal.append(f"refitter.set_named_weights {name}")
        self._pending[name] = weights._array.reshape(-1)
        return True

    def refit_cuda_engine(self) -> bool:
        if self.get_missing_weights():
            return False
        self._engine.api.journal.append("refitter.refit_cuda_engine")
        self._engine.refitted.update(self._pending)
        return True


class Runtime:
    def __init__(self, api: "TrtDouble", logger: Logger) -> None:
        self._api = api

    def get_engine_validity(self, buffer) -> tuple:
        if bytes(buffer[:len(ENGINE_MAGIC)]) != ENGINE_MAGIC:
            return EngineValidity.INVALID, int(EngineInvalidityDiagnostics.MALFORMED_ENGINE)
        return EngineValidity.VALID, 0

    def deserialize_cuda_engine(self, serialized_engine) -> ICudaEngine | None:
        self._api.journal.append("runtime.deserialize_cuda_engine")
        data = bytes(serialized_engine)
        if not data.startswith(ENGINE_MAGIC):
            return None
        try:
            spec = json.loads(data[len(ENGINE_MAGIC):])
        except ValueError:
            return None
        engine = ICudaEngine(self._api, spec)
        self._api.engines.append(engine)
        return engine


# Inspection hooks for tests, per class: not part of the tensorrt_rtx API. The contract test
# checks that the real classes have no member of these names.
DOUBLE_ONLY = {
    "TrtDouble": frozenset({"RUNS_ON_HOST"}),
    "IRuntimeCache": frozenset({"kernels"}),
    "ICudaEngine": frozenset({"api", "spec", "contexts", "refitted"}),
    "IExecutionContext": frozenset({"kernel_strategy", "cuda_graph_strategy", "allocation_strategy",
                                    "runtime_cache", "executions"}),
}


class TrtDouble:
    """Stands in for the ``tensorrt_rtx`` module; one journal per instance."""

    RUNS_ON_HOST = True  # executes on CPU tensors' memory (TRTModule then takes CPU inputs)
    DataType = DataType
    Logger = Logger
    DynamicShapesKernelSpecializationStrategy = DynamicShapesKernelSpecializationStrategy
    CudaGraphStrategy = CudaGraphStrategy
    ExecutionContextAllocationStrategy = ExecutionContextAllocationStrategy
    EngineValidity = EngineValidity
    EngineInvalidityDiagnostics = EngineInvalidityDiagnostics
    IOutputAllocator = IOutputAllocator
    Weights = Weights
    Refitter = Refitter

    def __init__(self) -> None:
        self.journal: list[str] = []
        self.engines: list[ICudaEngine] = []

    def Runtime(self, logger: Any) -> Runtime:  # noqa: N802 - mirrors tensorrt_rtx.Runtime
        return Runtime(self, logger)
