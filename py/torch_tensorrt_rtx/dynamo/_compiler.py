"""The pipeline shared by torch.compile(backend="tensorrt_rtx") and torch_tensorrt_rtx.compile.

    compiled, report = compile_graph(aten_gm, symbol_ranges, settings)

`aten_gm` is an exported, decomposed ATen graph (weights as get_attr). `symbol_ranges` maps each
shape symbol of its inputs to (min, opt, max). Each TensorRT partition becomes one engine, stored
as a packed EngineRecord buffer and called through torch.ops.tensorrt_rtx.execute_engine; the
rest of the graph runs in PyTorch. A node whose converter fails, or whose layer an engine build
rejects, is kept in PyTorch alone: the graph is partitioned again without it, so the rest of its
subgraph still becomes engines (within min_block_size). When anything stays in PyTorch a
FallbackWarning (Python `warnings`, visible with default settings) gives the count and short
reasons; the report names each failed node with a one-line reason. Engine output sizes are
expressions of the engine's input dims (_size_solve: exact for linear sizes, checked over the
symbol's range for rounded ones such as a strided convolution's `((s - 1)//2) + 1`).
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import logging
import platform
import time
import warnings
from typing import Any, Dict, List, Mapping, Tuple

import sympy
import torch
from torch.fx import GraphModule, Node

from torch_tensorrt_rtx.dynamo._engine_cache import EngineCacheSession
from torch_tensorrt_rtx.dynamo._engine_op import OutputSpec, TensorSpec  # registers the op
from torch_tensorrt_rtx.dynamo._settings import CompilationSettings
from torch_tensorrt_rtx.dynamo._size_solve import solve as solve_size
from torch_tensorrt_rtx.dynamo._summary import (
    PHASE_SECONDS_META,
    CompileReport,
    EngineSummary,
    FallbackWarning,
    Float64Warning,
    PhaseClock,
    stage,
)
from torch_tensorrt_rtx.dynamo.conversion._context import ConversionError
from torch_tensorrt_rtx.dynamo.conversion._engine_builder import build_engine, compute_capability
from torch_tensorrt_rtx.dynamo.conversion._interpreter import build_network
from torch_tensorrt_rtx.dynamo.conversion._registry import op_name
from torch_tensorrt_rtx.dynamo.lowering import lower
from torch_tensorrt_rtx.dynamo.lowering._double import truncate_double
from torch_tensorrt_rtx.dynamo.lowering._precision import describe as describe_precision
from torch_tensorrt_rtx.dynamo.partitioning import partition
from torch_tensorrt_rtx.dynamo.verification import engine_sources

logger = logging.getLogger(__name__)
Range = Tuple[int, int, int]


def _expr(dim: Any) -> Any:
    return dim.node.expr if isinstance(dim, torch.SymInt) else int(dim)


def _substitute(expr: Any, values: Mapping[Any, int]) -> int:
    if isinstance(expr, int):
        return expr
    return int(expr.xreplace({s: sympy.Integer(v) for s, v in values.items()}))


def _input_ranges(sub: GraphModule, symbol_ranges: Mapping[Any, Range], label: str) -> List[Dict[int, Range]]:
    ranges = []
    for node in sub.graph.find_nodes(op="placeholder"):
        val = node.meta["val"]
        dims: Dict[int, Range] = {}
        for d, size in enumerate(val.shape):
            expr = _expr(size)
            if isinstance(expr, int) or expr.is_number:
                continue
            missing = [s for s in expr.free_symbols if s not in symbol_ranges]
            if missing:
                error = ConversionError(f"{label}: input {node.name} dim {d} has size {expr}, which depends on data "
                                        f"({missing}); TensorRT-RTX needs a bounded range")
                error.placeholder = node.name
                raise error
            dims[d] = tuple(_substitute(expr, {s: r[k] for s, r in symbol_ranges.items()}) for k in range(3))
        ranges.append(dims)
    return ranges


def _spec(sub: GraphModule, name: str, sha: str, label: str,
          symbol_ranges: Mapping[Any, Range] = None) -> OutputSpec:
    """Input and output shapes of the engine, each dim an int or an expression of the engine's
    input dims (named i<input>_<dim>), as the engine op's fake implementation evaluates them."""
    placeholders = list(sub.graph.find_nodes(op="placeholder"))
    names: Dict[Any, Any] = {}
    derived: List[Tuple[Any, sympy.Symbol]] = []
    exprs = []
    for k, node in enumerate(placeholders):
        val = node.meta["val"]
        for d, size in enumerate(val.shape):
            expr = _expr(size)
            exprs.append(expr)
            if isinstance(expr, int) or expr.is_number:
                continue
            dim_name = sympy.Symbol(f"i{k}_{d}", integer=True, positive=True)
            if isinstance(expr, sympy.Symbol):
                names.setdefault(expr, dim_name)
            else:
                derived.append((expr, dim_name))
    outputs_node = next(iter(sub.graph.find_nodes(op="output")))
    output_exprs = [_expr(size) for out in outputs_node.args[0] for size in out.meta["val"].shape]
    exprs += output_exprs
    for symbol in sorted({s for e in exprs if not isinstance(e, int) for s in e.free_symbols} - set(names), key=str):
        solved = solve_size(symbol, derived, symbol_ranges or {}, output_exprs)
        if solved is not None:
            names[symbol] = solved
    engine_dims = {s for e in list(names.values()) + [d for _, d in derived] for s in e.free_symbols}

    def through_inputs(expr):
        """`expr` in the engine's input dims: a whole input size first (``s11 + s15`` -> i0_1, also
        inside ``2*s11 + 2*s15``), then single symbols."""
        for derived_expr, dim_name in derived:
            if not derived_expr.free_symbols <= set(names):
                expr = expr.subs(derived_expr, dim_name)
        return expr.xreplace(names)

    def shape_of(val, node_name, is_output):
        shape = []
        for size in val.shape:
            expr = _expr(size)
            if isinstance(expr, int) or expr.is_number:
                shape.append(int(expr))
                continue
            named = through_inputs(expr)
            unknown = sorted(str(s) for s in named.free_symbols if s not in engine_dims)
            if unknown and is_output:
                kind = ("depends on data" if any(s.startswith("u") for s in unknown)
                        else "is not an expression of the engine's input sizes")
                raise ConversionError(f"{label}: output {node_name} has size {expr}, which {kind} "
                                      f"(unknown: {', '.join(unknown)})", node=node_name)
            shape.append(str(named))
        return shape

    inputs = [TensorSpec(str(n.meta["val"].dtype).replace("torch.", ""), shape_of(n.meta["val"], n.name, False))
              for n in placeholders]
    outputs = [TensorSpec(str(out.meta["val"].dtype).replace("torch.", ""), shape_of(out.meta["val"], out.name, True))
               for out in outputs_node.args[0]]
    fx_nodes = [f"{n.name}:{op_name(n)}" for n in sub.graph.nodes if n.op == "call_function"]
    return OutputSpec(name, sha, inputs, outputs, fx_nodes)


def _target_platform() -> str:
    return f"{platform.system().lower()}_{platform.machine().lower()}"


@dataclasses.dataclass
class _Converted:
    """One partition converted to a network, waiting for its engine build."""

    node: Node
    sub: GraphModule
    network_def: Any
    spec: OutputSpec
    ranges: List[Dict[int, Range]]


class _Blame(Exception):
    """Conversion or engine build failed; `nodes` (FX node names) stay in PyTorch next time."""

    def __init__(self, nodes: List[str], reason: str) -> None:
        super().__init__(reason)
        self.nodes = nodes
        self.reason = reason


_REASON_CHARS = 200


def one_line(text: Any, limit: int = _REASON_CHARS) -> str:
    """The first line of a message, capped: reasons never carry a printed tensor or a traceback."""
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    first = lines[0] if lines else "no message"
    return first if len(first) <= limit else first[:limit - 3] + "..."


def _compute_nodes(sub: GraphModule) -> List[str]:
    return [n.name for n in sub.graph.nodes if n.op == "call_function"]


def _blame_conversion(exc: Exception, sub: GraphModule, label: str) -> _Blame:
    reason = one_line(exc)
    names = set(_compute_nodes(sub))
    node = getattr(exc, "node", None)
    if node in names:
        return _Blame([node], reason)
    placeholder = getattr(exc, "placeholder", None)  # an input whose size depends on data: blame its readers
    for input_node in sub.graph.find_nodes(op="placeholder"):
        users = [u.name for u in input_node.users if u.name in names] if input_node.name == placeholder else []
        if users:
            return _Blame(users, reason)
    return _Blame(sorted(names), f"{label}: {reason}")


def _blame_build(exc: Exception, converted: _Converted) -> _Blame:
    """An engine build failure names layers ("<fx node>/<kind>_<n>", our own naming): keep the
    node whose layer TensorRT-RTX complained about in PyTorch, or the whole partition if none."""
    reason = one_line(exc)
    message = str(exc)
    network = converted.network_def.network
    names = set(_compute_nodes(converted.sub))
    for i in range(network.num_layers):
        layer_name = network.get_layer(i).name
        node = layer_name.split("/", 1)[0]
        if node in names and layer_name in message:
            return _Blame([node], reason)
    return _Blame(sorted(names), reason)


def _convert_one(gm: GraphModule, node: Node, symbol_ranges, clock: PhaseClock) -> _Converted:
    name = node.target
    sub = getattr(gm, name)
    with clock.phase("conversion"):
        try:
            ranges = _input_ranges(sub, symbol_ranges, name)
            network_def = build_network(sub, ranges)
            spec = _spec(sub, name, "", name, symbol_ranges)
        except Exception as exc:  # noqa: BLE001 - any converter failure keeps its node in PyTorch
            raise _blame_conversion(exc, sub, name) from exc
    return _Converted(node, sub, network_def, spec, ranges)


def _fresh_graph(lowered: GraphModule) -> GraphModule:
    """A GraphModule over a copy of `lowered`'s graph (same node names, weights shared), so each
    partitioning attempt starts from the unpartitioned graph."""
    gm = GraphModule(lowered, copy.deepcopy(lowered.graph))
    gm.meta = dict(lowered.meta)
    return gm


def _package(gm: GraphModule, converted: _Converted, engine: bytes, settings: CompilationSettings) -> None:
    """Replace the partition's call by execute_engine on a packed EngineRecord buffer."""
    from torch_tensorrt_rtx.runtime import EngineRecord

    node, sub, network_def = converted.node, converted.sub, converted.network_def
    name = node.target
    sha = hashlib.sha256(engine).hexdigest()
    spec = dataclasses.replace(converted.spec, sha256=sha)
    record = EngineRecord.new(
        engine, name=name, input_names=network_def.input_names, output_names=network_def.output_names,
        metadata=dataclasses.asdict(spec) | {"compute_capabilities": list(settings.compute_capabilities) or "portable"},
        hw_compatible=False, target_platform=_target_platform(), engine_flavor="tensorrt_rtx")
    buffer_name = f"{name}_engine"
    gm.register_buffer(buffer_name, record.to_tensor())  # owns the packed record: no second copy
    with gm.graph.inserting_before(node):
        record_node = gm.graph.get_attr(buffer_name)
        call = gm.graph.call_function(torch.ops.tensorrt_rtx.execute_engine.default,
                                      (list(node.args), record_node, spec.to_json()))
    call.meta = dict(node.meta)
    node.replace_all_uses_with(call)
    gm.graph.erase_node(node)
    source = engine_sources.remember(sha, sub, network_def if settings.keep_networks else None)
    if not hasattr(gm, "_engine_sources"):
        gm._engine_sources = {}
    gm._engine_sources[name] = source  # keeps the network alive exactly as long as the module
    delattr(gm, name)


def _drop_unused_state(gm: GraphModule) -> None:
    """Weights now inside engines are no longer read by the graph: drop them so a saved
    program does not carry them twice."""
    used = {n.target for n in gm.graph.nodes if n.op == "get_attr"}
    used_prefixes = tuple(u + "." for u in used)
    for name, _ in list(gm.named_parameters()) + list(gm.named_buffers()):
        if name in used or name.startswith(used_prefixes):
            continue
        owner_path, _, attr = name.rpartition(".")
        owner = gm.get_submodule(owner_path) if owner_path else gm
        if any(name.startswith(f"{m}.") for m, _ in gm.named_children() if m.startswith("_run_on_trt_")):
            continue  # belongs to a partition kept in PyTorch
        delattr(owner, attr)


_VIEWS = (torch.ops.aten.view.default, torch.ops.aten._unsafe_view.default)


def _views_to_reshapes(gm: GraphModule) -> int:
    """Make the views left in PyTorch safe for engine outputs. An engine returns contiguous
    tensors, but the graph was traced with the strides of the ops the engine replaced (a
    transpose, say), and a view that was legal on those strides can be illegal on contiguous
    data ("Cannot view a tensor with shape ... as ..."), at run time and when `save` traces the
    program again. reshape is a view where one exists and a copy otherwise; the graph is
    functional (no op writes through an alias), so the copy cannot change a result."""
    changed = 0
    for node in gm.graph.nodes:
        if node.op == "call_function" and node.target in _VIEWS:
            node.target = torch.ops.aten.reshape.default
            changed += 1
    return changed


def _attempt(lowered: GraphModule, symbol_ranges: Mapping[Any, Range], settings: CompilationSettings,
             excluded: Dict[str, str], engines: Dict[str, Tuple[memoryview, float]], clock: PhaseClock,
             cache: EngineCacheSession):
    """Partition with `excluded` nodes in PyTorch, convert every partition, build every engine.
    Returns (gm, partition result, [(converted, engine, seconds)]), or None after adding the nodes
    to blame to `excluded` (the caller then tries again: each retry keeps more nodes in PyTorch)."""
    gm = _fresh_graph(lowered)
    with clock.phase("partitioning"):
        result = partition(gm, settings, excluded)
    converted: List[_Converted] = []
    blamed: List[_Blame] = []
    for node in gm.graph.nodes:
        if node.op == "call_module" and node.target in result.trt_submodules:
            try:
                converted.append(_convert_one(gm, node, symbol_ranges, clock))
            except _Blame as blame:
                if settings.pass_through_build_failures:
                    with stage("conversion"):
                        raise blame.__cause__  # the converter's own error
                blamed.append(blame)
    built = []
    if not blamed:
        for item in converted:
            key = f"{item.sub.code}\n{item.ranges}"  # an unchanged partition is not built twice
            if key not in engines:
                try:
                    with stage("engine build"):
                        engines[key] = cache.build(
                            item.sub, item.ranges, item.node.target,
                            lambda: build_engine(item.network_def, settings.compute_capabilities,
                                                 label=item.node.target, progress=settings.progress))
                except Exception as exc:  # noqa: BLE001 - a failed build keeps its node(s) in PyTorch
                    if settings.pass_through_build_failures:
                        raise
                    blamed.append(_blame_build(exc, item))
                    break
                clock.add("engine build", engines[key][1])
            built.append((item, *engines[key]))
    if not blamed:
        return gm, result, built
    before = len(excluded)
    for blame in blamed:
        for name in blame.nodes:
            excluded.setdefault(name, blame.reason)
        logger.debug("keeping %s in PyTorch: %s", ", ".join(blame.nodes), blame.reason)
    if len(excluded) == before:  # cannot happen while partitioning honours `excluded`; never loop
        raise RuntimeError(f"torch_tensorrt_rtx internal error: partitioning proposed excluded nodes again: "
                           f"{[b.nodes for b in blamed]}")
    return None


def check_settings(settings: CompilationSettings) -> None:
    """Raise for a bad setting: the user's error, never a reason to fall back to PyTorch."""
    for name in settings.compute_capabilities:
        compute_capability(name)


def compile_graph(gm: GraphModule, symbol_ranges: Mapping[Any, Range],
                  settings: CompilationSettings) -> Tuple[GraphModule, CompileReport]:
    start = time.perf_counter()
    clock = PhaseClock(gm.meta.pop(PHASE_SECONDS_META, None))  # export phases, when export_aten made gm
    check_settings(settings)
    with clock.phase("lowering"):
        truncated = truncate_double(gm) if settings.truncate_double else 0
        lowered = lower(gm, settings.reduced_precision)
    ops = {n.name: op_name(n) for n in lowered.graph.nodes if n.op == "call_function"}
    excluded: Dict[str, str] = {}  # FX node name -> why it stays in PyTorch
    engines: Dict[str, Tuple[memoryview, float]] = {}
    cache = EngineCacheSession(settings, symbol_ranges)
    attempt = None
    while attempt is None:  # terminates: every failed attempt excludes at least one more node
        attempt = _attempt(lowered, symbol_ranges, settings, excluded, engines, clock, cache)
    _, proposed, built = attempt
    del attempt  # holds the engines' buffers too
    # The attempts ran on copies of the graph. The module handed back must be `lowered` itself:
    # it carries what torch.export attached (input-constraint hooks, range_constraints, the
    # pytree calling convention). The copy has the same node names, so the successful attempt's
    # partitions are fused again in `lowered`, under the same names, without proposing them again.
    with clock.phase("partitioning"):
        result = partition(lowered, settings, excluded, same_as=proposed)
    gm = result.module
    by_name = {n.target: n for n in gm.graph.nodes if n.op == "call_module" and n.target in result.trt_submodules}
    if set(by_name) != {item.node.target for item, _, _ in built}:
        raise RuntimeError(f"torch_tensorrt_rtx internal error: partitioning the graph again gave partitions "
                           f"{sorted(by_name)}, the attempt built {sorted(i.node.target for i, _, _ in built)}")
    built = [(dataclasses.replace(item, node=by_name[item.node.target]), engine, seconds)
             for item, engine, seconds in built]
    report = CompileReport(fallback_ops=dict(result.fallback_ops), fallback_reasons=dict(result.fallback_reasons),
                           fallback_nodes=dict(result.node_reasons),
                           failed_nodes={name: f"{ops.get(name, '?')}: {reason}" for name, reason in excluded.items()},
                           precision=describe_precision(settings.reduced_precision),
                           reduced_precision=settings.reduced_precision, truncated_double_ops=truncated,
                           engine_cache_hits=cache.hits)
    engines.clear()
    while built:  # each engine's TensorRT-RTX buffer is released as soon as its record is packed
        item, engine, seconds = built.pop(0)
        with clock.phase("packaging"):
            _package(gm, item, engine, settings)
        report.engines.append(EngineSummary(item.node.target, item.network_def.converted_ops, seconds, len(engine),
                                            [str(r) for r in item.ranges]))
        del engine
    with clock.phase("packaging"):
        if report.engines and report.fallback_ops:
            _views_to_reshapes(gm)
        _drop_unused_state(gm)
        gm.graph.lint()
        gm.recompile()
    report.total_seconds = time.perf_counter() - start
    report.phase_seconds = clock.seconds
    if settings.require_full_compilation and report.fallback_ops:
        raise RuntimeError("require_full_compilation=True but these ops stay in PyTorch: "
                           + ", ".join(f"{k} ({report.fallback_reasons.get(k)})" for k in sorted(report.fallback_ops)))
    logger.info("%s", report.format())
    if truncated:
        warnings.warn(f"torch_tensorrt_rtx: {truncated} float64 op(s) computed in float32 (TensorRT-RTX has no "
                      "float64; truncate_double=False keeps them in PyTorch instead)", Float64Warning, stacklevel=3)
    if report.fallback_ops:
        warnings.warn(report.fallback_summary(), FallbackWarning, stacklevel=3)
    return gm, report
