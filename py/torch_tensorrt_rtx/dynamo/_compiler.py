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

import contextlib
import dataclasses
import logging
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import sympy
import torch
from torch.fx import GraphModule, Node

from torch_tensorrt_rtx.dynamo._debugger import FIRST_ARTIFACT, LayerList, PackageLogLevel
from torch_tensorrt_rtx.dynamo._debugger import emit as debug_artifact
from torch_tensorrt_rtx.dynamo._engine_cache import EngineCacheSession, start_spare_entry
from torch_tensorrt_rtx.dynamo._engine_op import OutputSpec, TensorSpec  # registers the op
from torch_tensorrt_rtx.dynamo._gc import no_full_collections
from torch_tensorrt_rtx.dynamo._settings import CompilationSettings
from torch_tensorrt_rtx.dynamo._size_solve import solve as solve_size
from torch_tensorrt_rtx.dynamo._summary import (
    PHASE_SECONDS_META,
    CompileReport,
    EngineSummary,
    PhaseClock,
    stage,
    warn_about,
)
from torch_tensorrt_rtx.dynamo.conversion._context import ConversionError
from torch_tensorrt_rtx.dynamo.conversion._engine_builder import (
    RefitBuildNeedsGpu,
    SerializedEngine,
    build_engine,
    compute_capability,
    refittable,
)
from torch_tensorrt_rtx.dynamo.conversion._lazy_network import LazyNetwork
from torch_tensorrt_rtx.dynamo.conversion._registry import op_name
from torch_tensorrt_rtx.dynamo.conversion._upstream_registry import converter_settings
from torch_tensorrt_rtx.dynamo.conversion._weight_casts import WeightCasts
from torch_tensorrt_rtx.dynamo.lowering import lower
from torch_tensorrt_rtx.dynamo.lowering._double import truncate_double
from torch_tensorrt_rtx.dynamo.lowering._precision import describe as describe_precision
from torch_tensorrt_rtx.dynamo.lowering._precision import keep_float32
from torch_tensorrt_rtx.dynamo.partitioning import partition
from torch_tensorrt_rtx.dynamo.verification import engine_sources
from torch_tensorrt_rtx.runtime.engine_record import engine_offset

logger = logging.getLogger(__name__)
Range = Tuple[int, int, int]


def _expr(dim: Any) -> Any:
    return dim.node.expr if isinstance(dim, torch.SymInt) else int(dim)


def _substitute(expr: Any, values: Mapping[Any, int]) -> int:
    if isinstance(expr, int):
        return expr
    return int(expr.xreplace({s: sympy.Integer(v) for s, v in values.items()}))


def _data_dependent_range(val: Any, expr: Any) -> Optional[Range]:
    """(min, opt, max) of a size that depends on data (unbacked symbols only, like nonzero's row
    count) when PyTorch bounds it (nonzero of a static input: at most its numel); else None."""
    shape_env = getattr(getattr(val, "fake_mode", None), "shape_env", None)
    if shape_env is None or not all(str(s).startswith("u") for s in expr.free_symbols):
        return None
    bound = shape_env.bound_sympy(expr)
    if not (bound.lower.is_integer and bound.upper.is_integer) or not bound.upper.is_finite:
        return None
    lo, hi = max(int(bound.lower), 0), int(bound.upper)
    return lo, max(lo, (lo + hi) // 2), hi


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
            data_range = _data_dependent_range(val, expr) if missing else None
            if data_range is not None:  # e.g. nonzero's row count: at most the numel of its static input
                dims[d] = data_range
                continue
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
            if unknown and is_output and all(s.startswith("u") for s in unknown):
                shape.append(None)  # data-dependent: known after the engine ran (output allocator)
                continue
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


@dataclasses.dataclass
class _Converted:
    """One partition, its network converted (or left to convert on first use when its engine is
    expected from the engine cache), waiting for its engine build."""

    name: str  # its submodule's name, "_run_on_trt_<i>"
    sub: GraphModule
    network: LazyNetwork
    spec: OutputSpec
    ranges: List[Dict[int, Range]]

    @property
    def network_def(self) -> Any:
        return self.network.get()


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


def _convert_one(name: str, sub: GraphModule, symbol_ranges, clock: PhaseClock, settings: CompilationSettings,
                 convert: bool = True) -> _Converted:
    """`convert=False`: leave the network to convert on first use (its engine is in the cache)."""
    with clock.phase("conversion"):
        try:
            ranges = _input_ranges(sub, symbol_ranges, name)
            network = LazyNetwork(sub, ranges, refittable(settings), settings)
            if convert:
                network.get()
            spec = _spec(sub, name, "", name, symbol_ranges)
        except Exception as exc:  # noqa: BLE001 - any converter failure keeps its node in PyTorch
            raise _blame_conversion(exc, sub, name) from exc
    return _Converted(name, sub, network, spec, ranges)


def _network_to_build(item: _Converted, clock: PhaseClock) -> Any:
    """The network to build `item`'s engine from, converted now if the compile expected the engine
    from the cache (whose entry then turned out damaged or unreadable)."""
    if item.network.converted:
        return item.network.get()
    with clock.phase("conversion"):
        try:
            return item.network.get()
        except Exception as exc:  # noqa: BLE001 - as in _convert_one
            raise _blame_conversion(exc, item.sub, item.name) from exc


def _package(gm: GraphModule, node: Node, converted: _Converted, engine: SerializedEngine,
             settings: CompilationSettings) -> None:
    """Replace the partition's call `node` by execute_engine on a packed EngineRecord buffer."""
    from torch_tensorrt_rtx.runtime import EngineRecord

    sub, network = converted.sub, converted.network
    name = node.target
    record = EngineRecord.new(
        engine, name=name, input_names=network.input_names, output_names=network.output_names,
        compute_capabilities=settings.compute_capabilities, engine_flavor="tensorrt_rtx")
    buffer_name = f"{name}_engine"
    gm.register_buffer(buffer_name, record.to_tensor())  # owns the packed record: no second copy
    # Asked after the copy: a HostEngine hashes itself on another core while it is copied.
    spec = dataclasses.replace(converted.spec, sha256=engine.sha256)
    with gm.graph.inserting_before(node):
        record_node = gm.graph.get_attr(buffer_name)
        weight_nodes = []
        if refittable(settings):  # weightless/refittable: the engine's weights are trailing inputs
            network_def = network.get()  # always converted: the weights' names come from conversion
            weights = network_def.context.refit_weights
            spec = dataclasses.replace(spec, refit_weights=list(weights),
                                       refit_derived=dict(network_def.context.derived_weights))
            weight_nodes = [gm.graph.get_attr(register_refit_weight(gm, name, i, w))
                            for i, w in enumerate(weights.values())]
        call = gm.graph.call_function(torch.ops.tensorrt_rtx.execute_engine.default,
                                      (list(node.args) + weight_nodes, record_node, spec.to_json()))
    call.meta = dict(node.meta)
    node.replace_all_uses_with(call)
    gm.graph.erase_node(node)
    source = engine_sources.remember(spec.sha256, sub, network if settings.keep_networks else None)
    if not hasattr(gm, "_engine_sources"):
        gm._engine_sources = {}
    gm._engine_sources[name] = source  # keeps the network alive exactly as long as the module
    delattr(gm, name)


def register_refit_weight(gm: GraphModule, engine_name: str, index: int, weight: torch.Tensor) -> str:
    """A weightless engine's weight as a program buffer (the tensor itself: no copy)."""
    buffer_name = f"{engine_name}_weight_{index}"
    gm.register_buffer(buffer_name, weight)
    return buffer_name


def _drop_unused_state(gm: GraphModule) -> None:
    """Weights now inside engines are no longer read by the graph: drop them so a saved
    program does not carry them twice."""
    used = {n.target for n in gm.graph.nodes if n.op == "get_attr"}
    used_prefixes = tuple(u + "." for u in used)
    # Partitions kept in PyTorch (submodules; deleting weights leaves them in place) own theirs.
    kept_prefixes = tuple(f"{m}." for m, _ in gm.named_children() if m.startswith("_run_on_trt_"))
    owners: Dict[str, torch.nn.Module] = {"": gm}
    # Every name of a tied weight (GPT-2's LM head and token embedding share one): deleting only
    # the first name would leave the tensor reachable, and saved, under the other.
    named = list(gm.named_parameters(remove_duplicate=False)) + list(gm.named_buffers(remove_duplicate=False))
    for name, _ in named:
        if name in used or name.startswith(used_prefixes) or name.startswith(kept_prefixes):
            continue
        owner_path, _, attr = name.rpartition(".")
        if owner_path not in owners:
            owners[owner_path] = gm.get_submodule(owner_path)
        delattr(owners[owner_path], attr)


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
             excluded: Dict[str, str], engines: Dict[str, Tuple[SerializedEngine, float]], clock: PhaseClock,
             cache: EngineCacheSession):
    """Partition with `excluded` nodes in PyTorch, convert every partition, build every engine.
    Returns (partition result, [(converted, engine, seconds)]), or None after adding the nodes
    to blame to `excluded` (the caller then tries again: each retry keeps more nodes in PyTorch).
    `lowered` is not changed: the partitions are cut out as submodules, fused by the caller."""
    with clock.phase("partitioning"):
        result = partition(lowered, settings, excluded)
    cached = set()  # partitions whose engine the cache has: converted only if something needs the network
    for name, sub in result.submodules.items():  # cached engines are read while the others convert
        with contextlib.suppress(Exception):  # a partition without ranges fails (and is blamed) below
            if cache.look_up(sub, _input_ranges(sub, symbol_ranges, name)) and not refittable(settings):
                cached.add(name)
    converted: List[_Converted] = []
    blamed: List[_Blame] = []
    for name, sub in result.submodules.items():
        try:
            converted.append(_convert_one(name, sub, symbol_ranges, clock, settings, name not in cached))
        except _Blame as blame:
            _raise_if_passed_through(blame, settings)
            blamed.append(blame)
    built = []
    if not blamed:
        for item in converted:
            # An unchanged partition (the same nodes of `lowered`, which attempts never change) is
            # not built twice.
            key = f"{[n.name for n in item.sub.graph.nodes]}\n{item.ranges}"
            if key not in engines:
                try:
                    with stage("engine build"):
                        engines[key] = cache.build(
                            item.sub, item.ranges, item.name,
                            lambda: build_engine(_network_to_build(item, clock), settings.compute_capabilities,
                                                 label=item.name, progress=settings.progress, settings=settings,
                                                 record_offset=engine_offset(item.name)))
                except _Blame as blame:  # the conversion of a partition whose cached entry was unreadable
                    _raise_if_passed_through(blame, settings)
                    blamed.append(blame)
                    break
                except Exception as exc:  # noqa: BLE001 - a failed build keeps its node(s) in PyTorch
                    if settings.pass_through_build_failures or isinstance(exc, RefitBuildNeedsGpu):
                        raise
                    blamed.append(_blame_build(exc, item))
                    break
                clock.add("engine build", engines[key][1])
                # Writing and hashing a streamed engine's chunks happened inside the build: ours.
                clock.add("packaging", getattr(engines[key][0], "write_seconds", 0.0))
            built.append((item, *engines[key]))
    if not blamed:
        return result, built
    before = len(excluded)
    for blame in blamed:
        for name in blame.nodes:
            excluded.setdefault(name, blame.reason)
        logger.debug("keeping %s in PyTorch: %s", ", ".join(blame.nodes), blame.reason)
    if len(excluded) == before:  # cannot happen while partitioning honours `excluded`; never loop
        raise RuntimeError(f"torch_tensorrt_rtx internal error: partitioning proposed excluded nodes again: "
                           f"{[b.nodes for b in blamed]}")
    return None


def _raise_if_passed_through(blame: _Blame, settings: CompilationSettings) -> None:
    if settings.pass_through_build_failures:
        with stage("conversion"):
            raise blame.__cause__  # the converter's own error


def check_settings(settings: CompilationSettings) -> None:
    """Raise for a bad setting: the user's error, never a reason to fall back to PyTorch."""
    for name in settings.compute_capabilities:
        compute_capability(name)


def _dry_run(lowered: GraphModule, settings: CompilationSettings, truncated: int, start: float,
             clock: PhaseClock) -> Tuple[GraphModule, CompileReport]:
    """Upstream's dryrun: partition without converting or building. The module returned runs the
    planned TensorRT-RTX partitions in PyTorch; the report lists them as planned engines. A string
    `dryrun` is a file the report is also written to."""
    with clock.phase("partitioning"):
        result = partition(lowered, settings, {})
        gm = result.fuse()
        gm.recompile()
    debug_artifact("partitioned_graph.txt", gm.graph)
    report = CompileReport(fallback_ops=dict(result.fallback_ops), fallback_reasons=dict(result.fallback_reasons),
                           fallback_nodes=dict(result.node_reasons),
                           precision=describe_precision(settings.reduced_precision, settings.use_fp32_acc),
                           reduced_precision=settings.reduced_precision, truncated_double_ops=truncated, dryrun=True)
    for name in result.trt_submodules:
        sub = getattr(gm, name)
        report.engines.append(EngineSummary(name, [op_name(n) for n in sub.graph.nodes if n.op == "call_function"],
                                            0.0, 0, []))
    report.total_seconds, report.phase_seconds = time.perf_counter() - start, clock.seconds
    logger.info("%s", report.format())
    debug_artifact("compile_report.txt", report.format())
    if isinstance(settings.dryrun, str):
        with open(settings.dryrun, "w", encoding="utf-8") as out:
            out.write(report.format() + "\n")
    return gm, report


def compile_graph(gm: GraphModule, symbol_ranges: Mapping[Any, Range], settings: CompilationSettings,
                  weight_digests: Optional[Any] = None, weight_casts: Optional[WeightCasts] = None,
                  at_first_build: Optional[Callable[[], None]] = None) -> Tuple[GraphModule, CompileReport]:
    """`weight_digests`: a WeightDigests (_weight_digests.py) the engine cache's key takes its
    weight hashes from, e.g. started on the module's weights before torch.export. `weight_casts`:
    the weights' reduced-precision copies conversion takes (_weight_casts.py), closed here. The
    first engine stored in the engine cache goes into a spare entry file (`start_spare_entry`).
    `at_first_build()` is called as the first engine build starts (work to do beside it)."""
    debug = PackageLogLevel(logging.DEBUG) if settings.debug else contextlib.nullcontext()
    casts = weight_casts.in_use() if weight_casts is not None else contextlib.nullcontext()
    cache = EngineCacheSession(settings, symbol_ranges, weight_digests, start_spare_entry(gm, settings),
                               at_first_build)
    try:
        with converter_settings(settings), debug, no_full_collections(), casts:  # what upstream-style converters see
            return _compile_graph(gm, symbol_ranges, settings, cache)
    finally:
        cache.close()
        if weight_casts is not None:
            weight_casts.close()


def _compile_graph(gm: GraphModule, symbol_ranges: Mapping[Any, Range], settings: CompilationSettings,
                   cache: EngineCacheSession) -> Tuple[GraphModule, CompileReport]:
    start = time.perf_counter()
    clock = PhaseClock(gm.meta.pop(PHASE_SECONDS_META, None))  # export phases, when export_aten made gm
    check_settings(settings)
    with clock.phase("lowering"):
        truncated = truncate_double(gm) if settings.truncate_double else 0
        lowered = lower(gm, settings.reduced_precision, settings.use_fp32_acc,
                        keep_float32(settings.autocast_excluded_ops, settings.autocast_excluded_nodes),
                        recompile=False)  # packaging (or the dry run) recompiles the fused graph
    debug_artifact(FIRST_ARTIFACT, lowered.graph)
    if settings.dryrun:
        return _dry_run(lowered, settings, truncated, start, clock)
    ops = {n.name: op_name(n) for n in lowered.graph.nodes if n.op == "call_function"}
    excluded: Dict[str, str] = {}  # FX node name -> why it stays in PyTorch
    engines: Dict[str, Tuple[SerializedEngine, float]] = {}
    attempt = None
    while attempt is None:  # terminates: every failed attempt excludes at least one more node
        attempt = _attempt(lowered, symbol_ranges, settings, excluded, engines, clock, cache)
    result, built = attempt
    del attempt  # holds the engines' buffers too
    if cache.store_seconds:
        clock.add("engine cache store", cache.store_seconds)
    # The attempts left `lowered` unchanged; the successful one's partitions are fused into it now.
    # It is the module handed back: it carries what torch.export attached (input-constraint hooks,
    # range_constraints, the pytree calling convention).
    with clock.phase("partitioning"):
        gm = result.fuse()
    debug_artifact("partitioned_graph.txt", gm.graph)
    calls = {n.target: n for n in gm.graph.nodes if n.op == "call_module" and n.target in result.submodules}
    report = CompileReport(fallback_ops=dict(result.fallback_ops), fallback_reasons=dict(result.fallback_reasons),
                           fallback_nodes=dict(result.node_reasons),
                           failed_nodes={name: f"{ops.get(name, '?')}: {reason}" for name, reason in excluded.items()},
                           precision=describe_precision(settings.reduced_precision, settings.use_fp32_acc),
                           reduced_precision=settings.reduced_precision, truncated_double_ops=truncated,
                           engine_cache_hits=cache.hits)
    engines.clear()
    while built:  # each engine is read once, into its packed record; its temporary file then closed
        item, engine, seconds = built.pop(0)
        debug_artifact(f"{item.name}_layers.txt", LayerList(item.network))  # converted only if listened to
        with clock.phase("packaging"):
            _package(gm, calls[item.name], item, engine, settings)
        report.engines.append(EngineSummary(item.name, item.network.converted_ops, seconds, len(engine),
                                            [str(r) for r in item.ranges], engine.sha256,
                                            cache.key(item.sub, item.ranges)))
        engine.close()  # its temporary file
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
    debug_artifact("compile_report.txt", report.format())
    warn_about(report, stacklevel=4)
    return gm, report
