"""The engine cache's key: what decides an engine's bytes, in a canonical form.

    key = engine_key(sub, input_ranges, symbol_ranges, settings, weight_hashes)   # hex, or None

- The graph: every node of the partition in order, named by position (``%3``), with its op
  (``aten.add.Tensor``), the structure of its arguments and the dtype, shape and strides of its
  value (symbolic sizes as their sympy expressions). Node names, Python object ids and reprs
  that carry an address never enter the key; an argument of a type not known here makes the
  partition uncacheable (None) rather than keyed by something unstable.
- The weights: SHA-256 of every constant's bytes (with dtype, shape and strides), wherever the
  graph reads it.
- The input ranges (min, opt, max per dynamic dim) and the range of every size symbol the
  graph's expressions use.
- The settings of ``ENGINE_SETTINGS``; every other CompilationSettings field is listed in
  ``SETTINGS_NOT_IN_KEY`` with the reason it cannot change an engine (a test checks that every
  field is in exactly one of the two).
- Versions: TensorRT-RTX, torch, this package and its engine record ABI, the key schema, the
  platform, and a fingerprint of this package's Python sources (so a changed converter misses
  even when the version number stayed the same).
- The converters each op of the partition can reach, in lookup order; a converter or validator
  the user registered is fingerprinted by its code (``_converter_fingerprint``).

At debug level each key is logged with a digest of each of these parts (``key_parts_line``): two
runs that should have shared an entry can be compared part by part.
"""
from __future__ import annotations

import enum
import functools
import hashlib
import logging
import operator
import os
import platform
from typing import Any, Callable, Dict, List, Mapping, Set, Tuple

import sympy
import torch
from torch.fx import GraphModule, Node

logger = logging.getLogger(__name__)

KEY_SCHEMA = 2

# CompilationSettings fields that change an engine built from a given partition.
# The builder options (upstream's names) go to IBuilderConfig; assume_dynamic_shape_support can pick
# another converter for the same node; the precision options also change the lowered graph (in the
# key anyway), listed so that a change never depends on that.
ENGINE_SETTINGS = ("enabled_precisions", "compute_capabilities", "truncate_double",
                   "workspace_size", "optimization_level", "max_aux_streams", "tiling_optimization_level",
                   "l2_limit_for_tiling", "disable_tf32", "sparse_weights", "enable_weight_streaming",
                   "strip_engine_weights", "immutable_weights", "refit_identical_engine_weights",
                   "assume_dynamic_shape_support", "use_fp32_acc", "autocast_excluded_ops", "autocast_excluded_nodes")
# The other fields, and why they are not part of the key.
SETTINGS_NOT_IN_KEY = {
    "min_block_size": "changes which partitions exist; the partition's graph is in the key",
    "torch_executed_ops": "changes which partitions exist; the partition's graph is in the key",
    "require_full_compilation": "only decides whether a fallback is an error",
    "progress": "reporting only",
    "dynamic_max_size": "only bounds the ranges, which are in the key",
    "keep_networks": "what is kept in memory after the build",
    "pass_through_build_failures": "only decides whether a failure raises",
    "dryrun": "builds no engine",
    "debug": "logging only",
    "cache_built_engines": "the cache's own switch",
    "reuse_cached_engines": "the cache's own switch",
    "engine_cache_dir": "the cache's own location",
    "engine_cache_size": "the cache's own size cap",
    "custom_engine_cache": "the cache's own store",
}


class Uncacheable(Exception):
    """The partition holds something with no stable canonical form; it is built, not cached."""


def digest_parts(tensor: torch.Tensor) -> Tuple[bytes, Any]:
    """What a constant's digest covers: its dtype, shape and strides as text, and its bytes as a
    flat uint8 array sharing the tensor's memory (a copy only for a non-contiguous or non-CPU
    tensor). Hashing the parts (`hash_parts`) needs no torch call, so it can run on any thread."""
    if tensor.is_sparse or tensor.is_quantized or tensor.device.type == "meta" or \
            isinstance(tensor, torch._subclasses.FakeTensor):
        raise Uncacheable(f"a {tensor.layout} {tensor.device.type} constant")
    data = tensor.detach()
    if data.device.type != "cpu":
        data = data.cpu()
    prefix = f"{data.dtype}|{tuple(data.shape)}|{data.stride()}|".encode()
    flat = data.contiguous().reshape(-1)
    return prefix, (flat.view(torch.uint8).numpy() if flat.numel() else None)


def hash_parts(prefix: bytes, data: Any) -> str:
    """SHA-256 of `digest_parts`' output (hashlib releases the GIL for large buffers)."""
    digest = hashlib.sha256(prefix)
    if data is not None:
        digest.update(data)
    return digest.hexdigest()


def tensor_digest(tensor: torch.Tensor) -> str:
    """SHA-256 of a constant's dtype, shape, strides and bytes."""
    return hash_parts(*digest_parts(tensor))


def _callable_name(target: Callable) -> str:
    if isinstance(target, (torch._ops.OpOverload, torch._ops.HigherOrderOperator)):
        return str(target)
    module, qualname = getattr(target, "__module__", None), getattr(target, "__qualname__", None)
    if target is operator.getitem:
        return "operator.getitem"
    if not module or not qualname or "<" in qualname:
        raise Uncacheable(f"call of {target!r}, which has no importable name")
    return f"{module}.{qualname}"


class _Canonical:
    """Builds the canonical text of one graph; `symbols` collects every size symbol it used."""

    def __init__(self, gm: GraphModule, weight_digest: Callable[[torch.Tensor], str]) -> None:
        self.gm, self.weight_digest = gm, weight_digest
        self.names: Dict[Node, str] = {}
        self.symbols: Set[sympy.Symbol] = set()

    def expr(self, value: Any) -> str:
        expr = value.node.expr if isinstance(value, (torch.SymInt, torch.SymFloat, torch.SymBool)) else value
        if isinstance(expr, sympy.Basic):
            self.symbols |= expr.free_symbols
            return f"<{sympy.srepr(expr)}>"
        return repr(expr)

    def arg(self, value: Any) -> str:
        if isinstance(value, Node):
            return self.names[value]
        if isinstance(value, tuple):
            return "(" + ",".join(self.arg(v) for v in value) + ")"
        if isinstance(value, list):
            return "[" + ",".join(self.arg(v) for v in value) + "]"
        if isinstance(value, dict):
            return "{" + ",".join(f"{k!r}:{self.arg(v)}" for k, v in value.items()) + "}"
        if value is None or isinstance(value, (bool, int, float, str)):
            return repr(value)
        if isinstance(value, (torch.dtype, torch.device, torch.layout, torch.memory_format)):
            return str(value)
        if isinstance(value, (torch.SymInt, torch.SymFloat, torch.SymBool, sympy.Basic)):
            return self.expr(value)
        if isinstance(value, slice):
            return f"slice({self.arg(value.start)},{self.arg(value.stop)},{self.arg(value.step)})"
        if isinstance(value, torch.Tensor):
            return f"tensor:{self.weight_digest(value)}"
        if isinstance(value, enum.Enum):
            return f"{type(value).__qualname__}.{value.name}"
        raise Uncacheable(f"an argument of type {type(value).__name__}")

    def value(self, val: Any) -> str:
        """The traced value of a node: dtype, shape and strides of a tensor, a size expression."""
        if isinstance(val, torch.Tensor):
            shape = ",".join(self.expr(s) for s in val.shape)
            stride = ",".join(self.expr(s) for s in val.stride()) if val.layout == torch.strided else ""
            return f"{val.dtype}[{shape}]/{stride}"
        if isinstance(val, (list, tuple)):
            return "(" + ",".join(self.value(v) for v in val) + ")"
        if val is None or isinstance(val, (bool, int, float)):
            return repr(val)
        if isinstance(val, (torch.SymInt, torch.SymFloat, torch.SymBool)):
            return self.expr(val)
        raise Uncacheable(f"a node value of type {type(val).__name__}")

    def node(self, position: int, node: Node) -> str:
        self.names[node] = f"%{position}"
        if node.op == "get_attr":
            constant = operator.attrgetter(node.target)(self.gm)
            if not isinstance(constant, torch.Tensor):
                raise Uncacheable(f"a constant of type {type(constant).__name__}")
            target = f"weight:{self.weight_digest(constant)}"
        elif node.op == "call_function":
            target = _callable_name(node.target)
        elif node.op in ("placeholder", "output"):
            target = node.op
        else:
            raise Uncacheable(f"a {node.op} node")
        return (f"%{position}={target}{self.arg(tuple(node.args))}{self.arg(dict(node.kwargs))}"
                f":{self.value(node.meta.get('val'))}")

    def text(self) -> str:
        return "\n".join(self.node(i, n) for i, n in enumerate(self.gm.graph.nodes))


def canonical_graph(gm: GraphModule, weight_digest: Callable[[torch.Tensor], str] = tensor_digest
                    ) -> Tuple[str, Set[sympy.Symbol]]:
    """The graph's canonical text and the size symbols it uses."""
    canonical = _Canonical(gm, weight_digest)
    return canonical.text(), canonical.symbols


@functools.lru_cache(maxsize=1)
def package_fingerprint() -> str:
    """SHA-256 of this package's Python sources (every converter, pass and the packer)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    digest = hashlib.sha256()
    for folder, dirs, files in sorted(os.walk(root)):
        dirs.sort()
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                digest.update(os.path.relpath(path, root).encode() + b"\0")
                with open(path, "rb") as source:
                    digest.update(source.read())
    return digest.hexdigest()


@functools.lru_cache(maxsize=1)
def versions() -> str:
    import tensorrt_rtx

    from torch_tensorrt_rtx._version import __version__
    from torch_tensorrt_rtx.runtime.engine_record import ABI_VERSION

    return (f"schema={KEY_SCHEMA}|tensorrt_rtx={tensorrt_rtx.__version__}|torch={torch.__version__}|"
            f"package={__version__}|record_abi={ABI_VERSION}|platform={platform.system()}-{platform.machine()}|"
            f"sources={package_fingerprint()}")


def settings_text(settings: Any) -> str:
    parts = []
    for name in ENGINE_SETTINGS:
        value = getattr(settings, name)
        if isinstance(value, (set, frozenset)):
            value = sorted(map(str, value))
        parts.append(f"{name}={value!r}")
    return "|".join(parts)


def engine_key(sub: GraphModule, input_ranges: List[Mapping[int, Tuple[int, int, int]]],
               symbol_ranges: Mapping[Any, Tuple[int, int, int]], settings: Any,
               weight_digest: Callable[[torch.Tensor], str] = tensor_digest) -> str:
    """The cache key (hex SHA-256) of the engine built from partition `sub`; Uncacheable if the
    partition has no canonical form."""
    from torch_tensorrt_rtx.dynamo._converter_fingerprint import converters_text
    from torch_tensorrt_rtx.dynamo.conversion._registry import registry_entries

    graph, symbols = canonical_graph(sub, weight_digest)
    targets = {n.target for n in sub.graph.nodes if n.op == "call_function"}
    converters = converters_text((_callable_name(t), registry_entries(t)) for t in targets)
    used_ranges = sorted((str(s), tuple(symbol_ranges[s])) for s in symbols if s in symbol_ranges)
    inputs = [sorted(dims.items()) for dims in input_ranges]
    parts = {"versions": versions(), "settings": settings_text(settings), "inputs": f"inputs={inputs}",
             "symbols": f"symbols={used_ranges}", "converters": converters, "graph": graph}
    key = hashlib.sha256("\n".join(parts.values()).encode()).hexdigest()
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug("engine cache key %s parts %s", key, key_parts_line(parts))
    return key


def key_parts_line(parts: Mapping[str, str]) -> str:
    """What a key was made of, as ``name:value`` words: the versions verbatim (they include the
    fingerprint of this package's sources, which any edit of a .py file in it changes), every other
    part as the first 16 hex digits of its SHA-256. Logged at debug level with each key, so the
    lines of two runs, compared part by part, name what made their keys differ (as
    ``benchmarks/recompile.py`` does when a recompile misses)."""
    def value(name: str, text: str) -> str:
        return text.replace(" ", "_") if name == "versions" else hashlib.sha256(text.encode()).hexdigest()[:16]

    return " ".join(f"{name}:{value(name, text)}" for name, text in parts.items())
