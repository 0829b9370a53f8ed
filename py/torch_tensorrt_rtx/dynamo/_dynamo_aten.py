"""The torch.compile backend's fast path to ATen: trace dynamo's graph once, in dynamo's own fake mode.

    gm, symbol_ranges, notes = trace_dynamo_graph(graph, weights, specs)   # or raises NotTraced

torch.export of dynamo's graph traces it again from scratch: new fake tensors, a new shape
environment, a functionalization pass and a trace, then its guards solved against the requested
ranges (0.17-0.31 s of CPU time on the tiny models of benchmarks/torch_compile_vs_eager.py, 0.67 s
for BERT under dynamic=True). Dynamo has already made fake tensors with symbolic sizes for every
input. This traces its graph to the same IR export gives (pre-dispatch ATen: linear, conv2d,
layer_norm and scaled_dot_product_attention stay whole) with those fake tensors (0.10-0.13 s;
0.32 s), so:
- one trace (make_fx, `pre_dispatch=True`) instead of export's two, and no constraint solving;
- every guard that tracing the ATen ops adds (an adaptive pooling's ``Ne(s0 // 2, 1)``) lands in
  dynamo's shape environment, so dynamo checks it and recompiles when it fails, as it does for
  Inductor. A dim that such a guard constrains within its engine range is fixed to its example
  size with a guard (`symbols_to_fix`), with the WARNING the export path gives.
Its time is reported as the compile report's "export" phase.

Then the parameters and buffers become constants (engine weights) and the graph is decomposed
node by node (lowering/_decompositions.py). It raises NotTraced, and the caller exports the graph
instead, for: a mutation (an in-place op on an input, a weight or a view), a grad-mode region or
other higher-order op, an unbacked (mark_unbacked) size, a Python call the IR does not hold, and
any failure of the trace itself.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Dict, List, Mapping, Sequence, Tuple

import sympy
import torch
from torch.fx import GraphModule

from torch_tensorrt_rtx.dynamo._summary import PHASE_SECONDS_META
from torch_tensorrt_rtx.dynamo.lowering._decompositions import no_backend_kernels

logger = logging.getLogger(__name__)
Range = Tuple[int, int, int]


class NotTraced(Exception):
    """The fast path does not apply to this graph (the reason is the message); export it instead."""


def _plain_target(target: Any) -> bool:
    """An ATen op, or the Python arithmetic on sizes that export's graphs hold too."""
    if isinstance(target, torch._ops.OpOverload):
        return True
    return getattr(target, "__module__", None) in ("_operator", "operator") or target in (
        torch.sym_float, torch.sym_int, torch.sym_max, torch.sym_min, torch.sym_not, torch.sym_sum)


def _trace(gm: GraphModule, fakes: Sequence[Any]) -> GraphModule:
    from torch._guards import detect_fake_mode
    from torch.fx.experimental.proxy_tensor import make_fx

    fake_mode = detect_fake_mode(fakes)
    if fake_mode is None or fake_mode.shape_env is None:
        raise NotTraced("dynamo's inputs carry no fake mode with a shape environment")
    try:
        with fake_mode, torch.no_grad(), no_backend_kernels():
            traced = make_fx(gm, tracing_mode="symbolic", pre_dispatch=True)(*fakes)
    except Exception as exc:  # noqa: BLE001 - whatever the trace meets, export may still take it
        from torch_tensorrt_rtx.dynamo._compiler import one_line

        raise NotTraced(f"the ATen trace failed: {type(exc).__name__}: {one_line(exc)}") from exc
    for node in traced.graph.nodes:
        if node.op == "call_function" and not _plain_target(node.target):
            raise NotTraced(f"the traced graph calls {getattr(node.target, '__name__', node.target)} ({node.name})")
        if node.op == "call_module":
            raise NotTraced(f"the traced graph calls module {node.target}")
    return traced


def freeze(gm: GraphModule, state: Mapping[int, torch.Tensor]) -> None:
    """Placeholder k in `state` (a parameter or buffer dynamo passed as an input) becomes that tensor
    (detached, the same storage), a constant of the graph: engines take it as a weight."""
    for k, node in enumerate(list(gm.graph.find_nodes(op="placeholder"))):
        if k not in state:
            continue
        name = f"_frozen_{k}"
        gm.register_buffer(name, state[k].detach())
        with gm.graph.inserting_before(node):
            constant = gm.graph.get_attr(name)
        constant.meta = dict(node.meta)
        node.replace_all_uses_with(constant)
        gm.graph.erase_node(node)
    gm.recompile()


def _decompose(gm: GraphModule) -> None:
    from torch_tensorrt_rtx.dynamo.lowering._decompositions import WholeProgramNeeded, decompose, decomposition_table

    try:
        traced = decompose(gm, decomposition_table())
    except WholeProgramNeeded as exc:
        raise NotTraced(str(exc)) from exc
    logger.debug("dynamo graph: decomposed node by node (%d node(s) traced alone)", traced)


def _ranges_after_trace(fakes: Sequence[Any], specs: Sequence[Any]) -> Tuple[Dict[sympy.Symbol, Range], List[str]]:
    """(symbol -> engine (min, opt, max), notes on the dims fixed here). A dim whose range a guard of
    the ATen trace does not hold over is fixed to its example size, guarded in dynamo."""
    from torch.fx.experimental.symbolic_shapes import guard_bool, guard_int
    from torch.utils._sympy.value_ranges import ValueRanges
    from torch_tensorrt_rtx.dynamo._export import symbols_to_fix

    dims = []  # (input, dim, SymInt, min, opt, max)
    for k, (fake, spec) in enumerate(zip(fakes, specs)):
        for d, (lo, opt, hi) in spec.dynamic_dims.items():
            dims.append((k, d, fake.shape[d], lo, opt, hi))
    notes: List[str] = []
    if not dims:
        return {}, notes
    shape_env = dims[0][2].node.shape_env
    ranges: Dict[sympy.Symbol, Any] = {}
    keep_rank: Dict[sympy.Symbol, int] = {}
    hints: Dict[sympy.Symbol, int] = {}
    for _, d, size, lo, _, hi in dims:
        expr = size.node.expr
        if expr.is_symbol:
            known = ranges.get(expr, ValueRanges(lo, hi))
            ranges[expr] = ValueRanges(max(lo, known.lower), min(hi, known.upper))
            keep_rank[expr] = min(keep_rank.get(expr, 0), -d)
            hints[expr] = int(size.node.hint)
    fixed = symbols_to_fix(shape_env, keep_rank, hints, ranges)
    from torch_tensorrt_rtx.dynamo.backend import _specialization_note

    symbol_ranges: Dict[sympy.Symbol, Range] = {}
    for k, d, size, lo, opt, hi in dims:
        expr = size.node.expr
        if expr.is_symbol and expr not in fixed:
            span = ranges[expr]
            low, high = int(span.lower), int(span.upper)
            if (low, high) != (lo, hi):  # two dims the trace found equal: the engine covers both ranges' overlap
                guard_bool(low <= size)
                guard_bool(size <= high)
            symbol_ranges[expr] = (low, min(max(opt, low), high), high)
            continue
        why = fixed.get(expr) if expr.is_symbol else f"the trace replaced the size by {expr}"
        notes.append(_specialization_note(k, d, int(size.node.hint), (lo, hi), why))
        guard_int(size)
    return symbol_ranges, notes


def trace_dynamo_graph(gm: GraphModule, state: Mapping[int, torch.Tensor],
                       specs: Sequence[Any]) -> Tuple[GraphModule, Dict[sympy.Symbol, Range], List[str]]:
    """Trace `gm` (dynamo's graph after the backend's input mapping: tensor placeholders only, each
    with dynamo's fake tensor in meta["example_value"]) to a decomposed ATen graph. `state` maps the
    placeholder index of each parameter or buffer to its tensor (frozen as a constant); `specs` are
    the Input ranges of the other placeholders, in order. Returns the graph (phase times in
    meta[PHASE_SECONDS_META]), {symbol: (min, opt, max)} and one note per dim that had to be fixed.
    Raises NotTraced (see the module docstring) before anything is guarded, except for the guards
    the trace itself adds, which hold for the example inputs."""
    fakes = [node.meta.get("example_value") for node in gm.graph.find_nodes(op="placeholder")]
    if not all(isinstance(fake, torch.Tensor) for fake in fakes):
        raise NotTraced("an input has no fake tensor from dynamo")
    from torch.fx.experimental.symbolic_shapes import free_unbacked_symbols

    user_fakes = [fake for k, fake in enumerate(fakes) if k not in state]
    if len(user_fakes) != len(specs):
        raise NotTraced(f"{len(user_fakes)} input(s) for {len(specs)} input spec(s)")
    if any(free_unbacked_symbols(fake.shape) for fake in user_fakes):
        raise NotTraced("an input has an unbacked (mark_unbacked) size")
    start = time.perf_counter()
    traced = _trace(gm, fakes)
    traced_at = time.perf_counter()
    freeze(traced, state)
    _decompose(traced)
    traced.meta[PHASE_SECONDS_META] = {"export": traced_at - start, "decompositions": time.perf_counter() - traced_at}
    symbol_ranges, notes = _ranges_after_trace(user_fakes, specs)
    return traced, symbol_ranges, notes

