"""The pipeline shared by torch.compile(backend="tensorrt_rtx") and torch_tensorrt_rtx.compile.

    compiled, report = compile_graph(aten_gm, symbol_ranges, settings)

`aten_gm` is an exported, decomposed ATen graph (weights as get_attr). `symbol_ranges` maps each
shape symbol of its inputs to (min, opt, max). Each TensorRT partition becomes one engine, stored
as a packed EngineRecord buffer and called through torch.ops.tensorrt_rtx.execute_engine; the
rest of the graph runs in PyTorch. A partition whose conversion or build fails is kept in PyTorch
with a warning naming the node (never a TensorRT assertion).
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import platform
import time
from typing import Any, Dict, List, Mapping, Tuple

import sympy
import torch
from torch.fx import GraphModule, Node

from torch_tensorrt_rtx.dynamo import _debug
from torch_tensorrt_rtx.dynamo._engine_op import OutputSpec, TensorSpec  # registers the op
from torch_tensorrt_rtx.dynamo._settings import CompilationSettings
from torch_tensorrt_rtx.dynamo._summary import PHASE_SECONDS_META, CompileReport, EngineSummary, PhaseClock
from torch_tensorrt_rtx.dynamo.conversion._context import ConversionError
from torch_tensorrt_rtx.dynamo.conversion._engine_builder import build_engine, compute_capability
from torch_tensorrt_rtx.dynamo.conversion._interpreter import build_network
from torch_tensorrt_rtx.dynamo.conversion._registry import op_name
from torch_tensorrt_rtx.dynamo.lowering import lower
from torch_tensorrt_rtx.dynamo.partitioning import partition

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
                raise ConversionError(f"{label}: input {node.name} dim {d} has size {expr}, which depends on data "
                                      f"({missing}); TensorRT-RTX needs a bounded range")
            dims[d] = tuple(_substitute(expr, {s: r[k] for s, r in symbol_ranges.items()}) for k in range(3))
        ranges.append(dims)
    return ranges


def _spec(sub: GraphModule, name: str, sha: str, label: str) -> OutputSpec:
    placeholders = list(sub.graph.find_nodes(op="placeholder"))
    names: Dict[Any, sympy.Symbol] = {}
    inputs = []
    for k, node in enumerate(placeholders):
        val = node.meta["val"]
        shape = []
        for d, size in enumerate(val.shape):
            expr = _expr(size)
            if isinstance(expr, sympy.Symbol) and expr not in names:
                names[expr] = sympy.Symbol(f"i{k}_{d}", integer=True, positive=True)
            shape.append(int(expr) if isinstance(expr, int) or expr.is_number else str(expr.xreplace(names)))
        inputs.append(TensorSpec(str(val.dtype).replace("torch.", ""), shape))
    output_node = next(iter(sub.graph.find_nodes(op="output")))
    outputs = []
    for out in output_node.args[0]:
        val = out.meta["val"]
        shape = []
        for size in val.shape:
            expr = _expr(size)
            if isinstance(expr, int) or expr.is_number:
                shape.append(int(expr))
                continue
            unknown = [s for s in expr.free_symbols if s not in names]
            if unknown:
                raise ConversionError(f"{label}: output {out.name} has size {expr}, which is not a function of the "
                                      "engine's input sizes (data-dependent shape)")
            shape.append(str(expr.xreplace(names)))
        outputs.append(TensorSpec(str(val.dtype).replace("torch.", ""), shape))
    fx_nodes = [f"{n.name}:{op_name(n)}" for n in sub.graph.nodes if n.op == "call_function"]
    return OutputSpec(name, sha, inputs, outputs, fx_nodes)


def _target_platform() -> str:
    return f"{platform.system().lower()}_{platform.machine().lower()}"


def _build_one(gm: GraphModule, node: Node, symbol_ranges, settings: CompilationSettings, report: CompileReport,
               clock: PhaseClock):
    name = node.target
    sub = getattr(gm, name)
    with clock.phase("conversion"):
        ranges = _input_ranges(sub, symbol_ranges, name)
        network_def = build_network(sub, ranges)
    start = time.perf_counter()
    engine, seconds = build_engine(network_def, settings.compute_capabilities, label=name, progress=settings.progress)
    clock.add("engine build", seconds)
    clock.add("conversion", time.perf_counter() - start - seconds)  # builder config and optimization profile
    with clock.phase("packaging"):
        _package(gm, node, sub, network_def, engine, settings)
    report.engines.append(EngineSummary(name, network_def.converted_ops, seconds, len(engine),
                                        [str(r) for r in ranges]))


def _package(gm: GraphModule, node: Node, sub: GraphModule, network_def, engine: bytes,
             settings: CompilationSettings) -> None:
    """Replace the partition's call by execute_engine on a packed EngineRecord buffer."""
    from torch_tensorrt_rtx.runtime import EngineRecord

    name = node.target
    sha = hashlib.sha256(engine).hexdigest()
    spec = _spec(sub, name, sha, name)
    record = EngineRecord.new(
        engine, name=name, input_names=network_def.input_names, output_names=network_def.output_names,
        metadata=dataclasses.asdict(spec) | {"compute_capabilities": list(settings.compute_capabilities) or "portable"},
        hw_compatible=False, target_platform=_target_platform(), engine_flavor="tensorrt_rtx")
    buffer_name = f"{name}_engine"
    gm.register_buffer(buffer_name, record.to_tensor().clone())
    with gm.graph.inserting_before(node):
        record_node = gm.graph.get_attr(buffer_name)
        call = gm.graph.call_function(torch.ops.tensorrt_rtx.execute_engine.default,
                                      (list(node.args), record_node, spec.to_json()))
    call.meta = dict(node.meta)
    node.replace_all_uses_with(call)
    gm.graph.erase_node(node)
    source = _debug.remember(sha, sub, network_def if settings.keep_networks else None)
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


def compile_graph(gm: GraphModule, symbol_ranges: Mapping[Any, Range],
                  settings: CompilationSettings) -> Tuple[GraphModule, CompileReport]:
    start = time.perf_counter()
    clock = PhaseClock(gm.meta.pop(PHASE_SECONDS_META, None))  # export phases, when export_aten made gm
    for name in settings.compute_capabilities:
        compute_capability(name)  # a bad setting is the user's error, not a reason to fall back
    with clock.phase("lowering"):
        gm = lower(gm)
    with clock.phase("partitioning"):
        result = partition(gm, settings)
    gm = result.module
    report = CompileReport(fallback_ops=dict(result.fallback_ops), fallback_reasons=dict(result.fallback_reasons))
    for node in list(gm.graph.nodes):
        if node.op != "call_module" or node.target not in result.trt_submodules:
            continue
        try:
            _build_one(gm, node, symbol_ranges, settings, report, clock)
        except Exception as exc:  # noqa: BLE001 - any TensorRT-side failure keeps the subgraph in PyTorch
            if not isinstance(exc, ConversionError):
                exc = ConversionError(f"{node.target}: {type(exc).__name__}: {exc}")
            logger.warning("keeping %s in PyTorch: %s", node.target, exc)
            for sub_node in getattr(gm, node.target).graph.nodes:
                if sub_node.op == "call_function":
                    key = op_name(sub_node)
                    report.fallback_ops[key] = report.fallback_ops.get(key, 0) + 1
                    report.fallback_reasons.setdefault(key, str(exc))
    with clock.phase("packaging"):
        _drop_unused_state(gm)
        gm.graph.lint()
        gm.recompile()
    report.total_seconds = time.perf_counter() - start
    report.phase_seconds = clock.seconds
    if settings.require_full_compilation and report.fallback_ops:
        raise RuntimeError("require_full_compilation=True but these ops stay in PyTorch: "
                           + ", ".join(f"{k} ({report.fallback_reasons.get(k)})" for k in sorted(report.fallback_ops)))
    logger.info("%s", report.format())
    return gm, report
