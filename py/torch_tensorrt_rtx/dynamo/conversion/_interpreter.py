"""Lower one FX graph (a TensorRT partition) into a strongly typed INetworkDefinition.

    network_def = build_network(submodule, input_ranges)

`input_ranges[i][d]` is `(min, opt, max)` for every dynamic dimension `d` of input `i`;
static dims are read from the placeholders' `meta["val"]`. Network inputs are named
`input_<i>`, outputs `output_<i>`; every other tensor is named after the FX node producing it.
Nodes whose inputs are all constants are folded on the host with torch, unless their result
would be larger than both their inputs and HOST_FOLD_LIMIT_BYTES (see `_fold_on_host`).
The host work of a conversion (folds, weight casts, batch-norm scales) runs on one intra-op thread
(see `host_threads`). A large linear weight whose row count is not a multiple of 4 is padded in the
network, the linear's output sliced back (`_linear_tables.py`).
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import operator
from typing import Any, Dict, List, Optional, Sequence, Tuple

import tensorrt_rtx as trt
import torch
from torch.fx import GraphModule, Node

from torch_tensorrt_rtx.dynamo.conversion._context import (
    ConversionContext,
    ConversionError,
    tensor_identity,
    to_trt_dtype,
)
from torch_tensorrt_rtx.dynamo.conversion._linear_tables import LinearTables
from torch_tensorrt_rtx.dynamo.conversion._native_callbacks import quiet_logger, set_log_limit
from torch_tensorrt_rtx.dynamo.conversion._registry import lookup, op_name
from torch_tensorrt_rtx.dynamo.conversion._weight_casts import ahead_cast

logger = logging.getLogger(__name__)

DimRange = Tuple[int, int, int]
_CONSTANT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.int32, torch.int64, torch.bool)

# A node whose inputs are all constants is computed with torch at build time and its result
# becomes an engine weight. When that result is larger than the node's tensor inputs (an expand
# or repeat of a weight, a zeros/arange/full factory) the engine would store the larger tensor,
# so such a node is folded only when its result is at most this many bytes (64 KiB: small masks,
# position ids and scalars stay folded); above it, the node's converter builds the value in the
# network from its inputs. A result no larger than its inputs (permute, slice, a cast to fp16)
# is always folded.
HOST_FOLD_LIMIT_BYTES = 64 << 10

# Intra-op threads for the host work of a conversion. Measured (resnet50 fp16: 54 weight casts of
# 25.5 M values, 2-core machine with other processes running): 7-16 ms on one thread, 130-540 ms on
# the default two, where each small parallel op waits for a second thread the scheduler runs late.
HOST_THREADS = 1


@contextlib.contextmanager
def host_threads(count: int = HOST_THREADS):
    """Run torch's host ops on `count` intra-op threads, then restore the caller's setting. With
    torch's OpenMP backend the setting is per thread, so other threads are not affected."""
    previous = torch.get_num_threads()
    if previous <= count:
        yield
        return
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@dataclasses.dataclass
class NetworkDefinition:
    """A built network plus what is needed to build, run and explain it."""

    builder: "trt.Builder"
    network: "trt.INetworkDefinition"
    context: ConversionContext  # keeps host weights alive
    input_names: List[str]
    output_names: List[str]
    input_ranges: List[Dict[int, DimRange]]
    node_tensors: Dict[str, str]  # FX node name -> network tensor name
    converted_ops: List[str]


_LOGGER = None


def trt_logger() -> "trt.ILogger":
    """The package's TensorRT-RTX logger (TensorRT-RTX keeps the first one it was given for the
    whole process). Which of its messages reach Python is decided again at each call."""
    global _LOGGER
    if _LOGGER is None:
        _LOGGER = _PythonLogger()
    _LOGGER.listen()
    return _LOGGER


class _PythonLogger(trt.ILogger):
    """Route TensorRT-RTX messages into `logging` under this module's logger."""

    _LEVELS = {
        trt.ILogger.INTERNAL_ERROR: logging.ERROR,
        trt.ILogger.ERROR: logging.ERROR,
        trt.ILogger.WARNING: logging.WARNING,
        trt.ILogger.INFO: logging.DEBUG,
        trt.ILogger.VERBOSE: logging.DEBUG,
    }

    def __init__(self) -> None:
        trt.ILogger.__init__(self)
        self.log_ = logging.getLogger("torch_tensorrt_rtx.tensorrt")
        self.errors: List[str] = []
        self.probe: Optional[list] = None
        # Messages nobody listens to are dropped without Python (_native_callbacks.py).
        self.native = quiet_logger(self)

    def listen(self) -> None:
        """Pass INFO and VERBOSE messages to Python only while they would be logged."""
        if self.native is not None:
            set_log_limit(self.log_.isEnabledFor(logging.DEBUG))

    def __del__(self) -> None:
        if getattr(self, "native", None) is not None:
            self.native.restore()  # the C++ object's destructor is called through its own table

    def log(self, severity, msg):  # noqa: D401 (TensorRT callback)
        if self.probe is not None:
            self.probe.append((severity, msg))
            return
        level = self._LEVELS.get(severity, logging.INFO)
        if level >= logging.ERROR:
            self.errors.append(msg)
        self.log_.log(level, "%s", msg)


def _map(value: Any, env: Dict[Node, Any]) -> Any:
    if isinstance(value, Node):
        return env[value]
    if isinstance(value, (list, tuple)):
        return type(value)(_map(v, env) for v in value)
    if isinstance(value, dict):
        return {k: _map(v, env) for k, v in value.items()}
    return value


def _contains_itensor(value: Any) -> bool:
    if isinstance(value, trt.ITensor):
        return True
    if isinstance(value, (list, tuple)):
        return any(_contains_itensor(v) for v in value)
    if isinstance(value, dict):
        return any(_contains_itensor(v) for v in value.values())
    return False


def _constants_as_tensors(ctx: ConversionContext, value: Any) -> Any:
    """Torch tensors among a node's arguments (weights, constants) as constant ITensors."""
    if isinstance(value, torch.Tensor):
        if value.dtype not in _CONSTANT_DTYPES:
            return value
        return ctx.constant(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_constants_as_tensors(ctx, v) for v in value)
    if isinstance(value, dict):
        return {k: _constants_as_tensors(ctx, v) for k, v in value.items()}
    return value


def io_names(module: GraphModule) -> Tuple[List[str], List[str]]:
    """The network's input and output names (`build_network` names them so), read off the graph."""
    inputs = len(module.graph.find_nodes(op="placeholder"))
    outputs = next(iter(module.graph.find_nodes(op="output"))).args[0]
    count = len(outputs) if isinstance(outputs, (list, tuple)) else 1
    return [_input_name(i) for i in range(inputs)], [_output_name(i) for i in range(count)]


def _input_name(index: int) -> str:
    return f"input_{index}"


def _output_name(index: int) -> str:
    return f"output_{index}"


def converted_ops(module: GraphModule) -> List[str]:
    """The ops a network of `module` converts (getitem only picks an output: not an op)."""
    return [op_name(n) for n in module.graph.nodes if n.op == "call_function" and n.target is not operator.getitem]


def build_network(module: GraphModule, input_ranges: Sequence[Dict[int, DimRange]],
                  name_weights: bool = False) -> NetworkDefinition:
    """`name_weights`: give every weight a TensorRT weight name and keep it in ``ctx.refit_weights``
    (weightless/refittable engines)."""
    with host_threads():
        return _build_network(module, input_ranges, name_weights)


def _build_network(module: GraphModule, input_ranges: Sequence[Dict[int, DimRange]],
                   name_weights: bool) -> NetworkDefinition:
    builder = trt.Builder(trt_logger())
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    ctx = ConversionContext(network, name_weights)
    tables = LinearTables(ctx, module, enabled=not name_weights)  # large linear weights padded to 4k rows
    env: Dict[Node, Any] = {}
    input_names: List[str] = []
    output_names: List[str] = []
    node_tensors: Dict[str, str] = {}
    placeholder_index = 0
    for node in module.graph.nodes:
        ctx.node = node
        if node.op == "placeholder":
            val = node.meta["val"]
            dynamic = input_ranges[placeholder_index]
            shape = tuple(-1 if d in dynamic else int(s) for d, s in enumerate(val.shape))
            name = _input_name(placeholder_index)
            env[node] = network.add_input(name, to_trt_dtype(val.dtype), shape)
            input_names.append(name)
            node_tensors[node.name] = name
            placeholder_index += 1
        elif node.op == "get_attr":
            env[node] = operator.attrgetter(node.target)(module)
            if isinstance(env[node], torch.Tensor):
                ctx.note_weight(env[node], str(node.target))
                ctx.weight_sources[node.name] = frozenset([str(node.target)])
            env[node] = tables.after(node, env[node])
        elif node.op == "call_function":
            # Model weights this node reads directly or through host-folded nodes (for naming
            # the constants its converter derives from them; see ConversionContext.derived_weights).
            sources = frozenset().union(*(ctx.weight_sources.get(n.name, ()) for n in node.all_input_nodes))
            if sources:
                ctx.weight_sources[node.name] = sources
            env[node] = tables.after(node, _convert_node(ctx, node, env))
            if isinstance(env[node], trt.ITensor):
                ctx.weight_sources.pop(node.name, None)  # computed in the engine: not a folded value
            if isinstance(env[node], trt.ITensor):
                if not env[node].is_network_input:
                    env[node].name = node.name
                node_tensors[node.name] = env[node].name
        elif node.op == "output":
            outputs = node.args[0]
            outputs = outputs if isinstance(outputs, (list, tuple)) else (outputs,)
            for i, out in enumerate(outputs):
                tensor = env[out] if isinstance(out, Node) else out
                if not isinstance(tensor, trt.ITensor):
                    tensor = ctx.constant(tensor)
                if tensor.is_network_input or tensor.is_network_output:
                    tensor = ctx.name(network.add_identity(tensor), "output").get_output(0)
                tensor.name = _output_name(i)
                network.mark_output(tensor)
                output_names.append(tensor.name)
        else:
            raise ConversionError(f"node {node.name}: unexpected op kind {node.op!r} in a TensorRT partition")
    if name_weights:
        ctx.check_weights_named()
    return NetworkDefinition(builder, network, ctx, input_names, output_names,
                             [dict(r) for r in input_ranges], node_tensors, converted_ops(module))


def _convert_node(ctx: ConversionContext, node: Node, env: Dict[Node, Any]) -> Any:
    args = _map(node.args, env)
    kwargs = _map(node.kwargs, env)
    if node.target is operator.getitem:
        return args[0][args[1]]
    all_constant = not _contains_itensor(args) and not _contains_itensor(kwargs)
    entry = None if all_constant and _fold_on_host(node, args, kwargs) else lookup(node)
    if all_constant and entry is None:
        return _fold(ctx, node, args, kwargs)
    if entry is None:
        raise ConversionError(f"node {node.name} ({node.target}) has no converter that accepts it", node=node.name)
    if not entry.host_weights:
        args, kwargs = _constants_as_tensors(ctx, args), _constants_as_tensors(ctx, kwargs)
    logged = len(trt_logger().errors)
    try:
        result = entry.fn(ctx, node, args, kwargs)
        _check_result(entry, node, result)
    except ConversionError as exc:
        exc.node = exc.node or node.name
        raise
    except Exception as exc:
        said = trt_logger().errors[logged:]  # TensorRT-RTX's own words about the layer, when it logged any
        detail = f" (TensorRT-RTX: {said[0].strip().splitlines()[0]})" if said else ""
        raise ConversionError(f"{entry.name} failed: {type(exc).__name__}: {exc}{detail}", node=node.name) from exc
    return result


def _fold(ctx: ConversionContext, node: Node, args: Any, kwargs: Any) -> Any:
    """Constant folding on the host (e.g. permute of a weight). The same op on the same weight
    (GPT-2's tied table, cast to fp16 for its embedding and for its LM head) gives one result,
    which then becomes one engine constant."""
    key = (node.target, _fold_key(args), _fold_key(kwargs))
    try:
        hash(key)
    except TypeError:  # an unhashable argument: fold without sharing
        key = None
    folds = ctx.folds
    if key is None or key not in folds:
        result = ahead_cast(node, args, kwargs)  # a weight's fp16 copy, made while torch.export ran
        if result is None:
            with torch.no_grad():
                result = node.target(*args, **kwargs)
        if key is None:
            return result
        folds[key] = result
    return folds[key]


def _fold_key(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return tensor_identity(value)
    if isinstance(value, (list, tuple)):
        return tuple(_fold_key(v) for v in value)
    if isinstance(value, dict):
        return tuple((k, _fold_key(v)) for k, v in value.items())
    return value


def _fold_on_host(node: Node, args: Any, kwargs: Any) -> bool:
    """Whether an all-constant node is computed on the host (see HOST_FOLD_LIMIT_BYTES). Results
    of unknown or symbolic size, and inputs of a dtype no engine constant has, are always folded."""
    results = list(_tensors(node.meta.get("val")))
    if not results or not all(isinstance(t.numel(), int) for t in results):
        return True
    result_bytes = sum(t.numel() * t.element_size() for t in results)
    if result_bytes <= HOST_FOLD_LIMIT_BYTES:
        return True
    constants = list(_tensors((args, kwargs)))
    if any(t.dtype not in _CONSTANT_DTYPES for t in constants):
        return True
    return result_bytes <= sum(t.numel() * t.element_size() for t in constants)


def _tensors(value: Any):
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _tensors(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors(v)


def _check_result(entry, node: Node, result: Any) -> None:
    """The converter's output has the dtype and rank FX recorded (reading its shape also makes
    TensorRT-RTX infer it, so an invalid layer fails here, attributed to this node)."""
    expected = node.meta.get("val")
    if isinstance(result, trt.ITensor) and isinstance(expected, torch.Tensor):
        if result.dtype != to_trt_dtype(expected.dtype):
            raise ConversionError(
                f"converter {entry.name} produced {result.dtype} for node {node.name}, expected {expected.dtype}",
                node=node.name)
        if len(result.shape) != expected.dim():
            raise ConversionError(
                f"converter {entry.name} produced rank {len(result.shape)} for node {node.name}, "
                f"expected {expected.dim()}", node=node.name)
