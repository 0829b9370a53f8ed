"""The torch.compile backend: ``torch.compile(model, backend="tensorrt_rtx", options={...})``.

Registered through the ``torch_dynamo_backends`` entry point in pyproject.toml, so it works
without ``import torch_tensorrt_rtx``. ``options`` are CompilationSettings fields (min_block_size,
torch_executed_ops, require_full_compilation, compute_capabilities, progress, keep_networks,
enabled_precisions, dynamic_max_size, pass_through_build_failures, truncate_double). What each
build made is its CompileReport: collect them with

    with torch_tensorrt_rtx.compile_reports() as reports:
        fast(x)                  # the first call compiles
    print(reports[-1])           # engines, converted vs PyTorch ops, ranges, times

Failures: a failure at any stage (export, lowering, partitioning, conversion, engine build,
packaging) never takes the model down. That graph runs in PyTorch, with a FallbackWarning naming
the stage and the reason. ``options={"pass_through_build_failures": True}`` raises instead (for
debugging; torch.compile reports it as BackendCompilerFailed), as does require_full_compilation.

RNNs: with torch's default ``torch._dynamo.config.allow_rnn = False`` dynamo does not trace
nn.LSTM/GRU/RNN at all: the frame calling one runs eagerly and this backend is never called for it.
A FallbackWarning says so (see _rnn_notice.py); set ``torch._dynamo.config.allow_rnn = True``
before the first call to hand RNNs to the backend.

Dynamo hands us an FX graph whose module parameters and buffers are graph inputs. They are
bound as constants (frozen, inference only) so they become engine weights, except one the graph
writes to, which stays an input. The graph is traced to ATen once more, with dynamo's own fake
inputs and shape environment (_dynamo_aten.py; torch.export where that is not safe: mutations,
grad-mode regions, unbacked sizes), decomposed and compiled by the shared pipeline.

Dynamic shapes: when dynamo marks a size dynamic (SymInt inputs), that dim gets an engine range
from dynamo's value range, capped at the `dynamic_max_size` option, or up to the example size
if that is larger. The range is added as a guard in dynamo's shape environment
(``2 <= L['x'].size()[0] <= 4096``), so a size outside it recompiles, with a range covering it,
instead of reaching the engine. A dim that cannot stay dynamic over that range is fixed to its
example size with a dynamo guard, and a WARNING names it with the guard responsible: a guard of
dynamo's own trace that the range does not imply (read before export, which would meet it again
and take far longer with the dim symbolic), or one of the export trace (e.g. adaptive pooling on
the image size). A guard naming several dims fixes only those it needs, the batch last
(`_export.symbols_to_fix`), so one engine serves every batch size. A graph whose sizes cannot be
mapped runs in PyTorch with a warning; `torch_tensorrt_rtx.compile` with explicit Input ranges
gives full control. Each CompileReport says which build of its dynamo graph it is.

Batch 1: by default dynamo treats sizes 0 and 1 as special. Its dynamic sizes start at 2, and a
call with batch 1 is traced again as a static graph, which costs a second engine. Sizes that
dynamo traces without that specialization start at 1, and one engine then serves batch 1 too:
``torch.fx.experimental._config.backed_size_oblivious = True`` (every dynamic size), or
``torch._dynamo.decorators.mark_unbacked(x, 0, min=1, max=64)`` (one dim). Such a graph is
exported with the same size-oblivious reasoning dynamo traced it with.

Python numbers: with dynamic=True (and torch's default specialize_float=False) dynamo does not
bake float attributes such as BatchNorm/LayerNorm eps, or float arguments, into the graph: it
passes each as a 0-d float64 tensor input read back with ``.item()``. Exported as an input, that
read is an unbacked SymFloat that ops like batch_norm cannot guard on. TensorRT-RTX takes such
values as build-time constants, so each one is specialized to its value with a guard in
dynamo's shape environment: a different value recompiles instead of reusing the engine. An int
argument (dynamo passes it as a SymInt input) is the size of a tensor dim when dynamo tied it to
one (then it stays symbolic, read from that tensor); otherwise it is specialized the same way.
"""
from __future__ import annotations

import contextlib
import logging
import threading
import warnings
from typing import Any, Callable, Iterator, List, Mapping, Optional, Sequence

import torch
from torch.fx import GraphModule

from torch_tensorrt_rtx.dynamo import _dynamo_aten, _rnn_notice

logger = logging.getLogger(__name__)
_rnn_notice.install()  # a FallbackWarning when dynamo leaves an LSTM/GRU/RNN out (allow_rnn=False)


def _is_module_state(node: torch.fx.Node, value: Any) -> bool:
    if isinstance(value, torch.nn.Parameter):
        return True
    grapharg = node.meta.get("grapharg")
    source = getattr(grapharg, "source", None)
    name = getattr(source, "name", None)
    name = name() if callable(name) else name  # a method in older torch, a property in newer
    name = name if isinstance(name, str) else str(node.target)
    return "_parameters" in name or "_buffers" in name


def _mutated(node: torch.fx.Node) -> bool:
    """True when dynamo's graph writes to this input (an in-place op on it or on a view of it): its
    fake tensor's version counter moved while dynamo traced. A parameter or buffer written to stays
    an input: frozen into an engine, it would keep its value at compile time (and the write would
    land on a copy)."""
    fake = node.meta.get("example_value")
    return isinstance(fake, torch.Tensor) and fake._version > 0


def _is_python_number(node: torch.fx.Node) -> bool:
    """True for a Python number dynamo passes as a 0-d tensor (read in the graph with .item())."""
    return bool(getattr(node.meta.get("grapharg"), "pass_arg_as_tensor", False))


def _replace_uses(gm: GraphModule, node: torch.fx.Node, value: Any) -> None:
    """Make every user of `node` take the constant `value` instead."""
    for user in list(node.users):
        user.args = torch.fx.node.map_arg(user.args, lambda a: value if a is node else a)
        user.kwargs = torch.fx.node.map_arg(user.kwargs, lambda a: value if a is node else a)


def _specialize_python_numbers(gm: GraphModule, numbers: Sequence[bool]) -> List[int]:
    """Replace each ``.item()`` of a wrapped Python number by its value and drop the placeholder;
    return the indices of the other placeholders. guard_scalar records the value as a guard in
    dynamo's shape environment, so dynamo recompiles when the number changes (without it a new
    float argument would silently reuse the old engine)."""
    from torch.fx.experimental.symbolic_shapes import guard_scalar

    kept = []
    for index, node in enumerate(list(gm.graph.find_nodes(op="placeholder"))):
        if not numbers[index]:
            kept.append(index)
            continue
        for read in list(node.users):
            if read.op != "call_method" or read.target != "item":
                raise _Unsupported(f"Python number {node.name} is used by {read.format_node()}, not read with .item()")
            _replace_uses(gm, read, guard_scalar(read.meta["example_value"]))
            gm.graph.erase_node(read)
        gm.graph.erase_node(node)
    if len(kept) < len(numbers):
        gm.recompile()
    return kept


def _copy(gm: GraphModule) -> GraphModule:
    """A copy of dynamo's graph that is ours to edit, with plain input names: dynamo's (``L_x_``)
    leak into export's guard code. Its Python code is generated once, when the ATen trace (or
    export) first calls it: the input mapping edits the graph and recompiles twice before that,
    and each code generation costs 3-6 ms."""
    from torch.fx._lazy_graph_module import _LazyGraphModule

    graph = torch.fx.Graph()
    val_map = {}
    for i, node in enumerate(gm.graph.find_nodes(op="placeholder")):
        val_map[node] = graph.placeholder(f"input_{i}")
        val_map[node].meta = {k: v for k, v in node.meta.items() if k == "example_value"}
    output = graph.graph_copy(gm.graph, val_map)
    graph.output(output)
    return _LazyGraphModule(gm, graph)


class _Unsupported(Exception):
    pass


def _finite(bound: Any, default: int) -> int:
    try:
        return int(bound)  # sympy Integer; torch's int_oo and None raise
    except (TypeError, ValueError, AttributeError, OverflowError):
        return default


def _sizes_dynamo_constrained(ranged: Sequence[Any], constants: Mapping[Any, int]) -> dict:
    """The symbols among `ranged` (SymInt, engine min, engine max, dim) that dynamo's own guards
    constrain beyond their engine range, each with such a guard (see `symbols_to_fix`; the batch
    dim is kept dynamic longest). `constants`: the symbols of int inputs, which become build-time
    constants, with their values (a guard such as ``s62*s68 >= 2`` on a split size and the batch
    then holds without fixing the batch).

    Export traces the same code again and meets the same guards, so such a dim would be fixed
    after an export with it dynamic anyway. Fixing it first saves that export, the slowest one: the
    sizes derived from a dynamic image size in a mobile ViT took a minute and more of sympy here."""
    from torch.fx.experimental.symbolic_shapes import free_unbacked_symbols
    from torch.utils._sympy.value_ranges import ValueRanges
    from torch_tensorrt_rtx.dynamo._export import symbols_to_fix

    backed = [dim for dim in ranged if not free_unbacked_symbols(dim[0])]
    if not backed:
        return {}
    shape_env = backed[0][0].node.shape_env
    keep_rank, hints = {}, {}
    ranges = {symbol: ValueRanges(value, value) for symbol, value in constants.items()}
    for size, lower, upper, d in backed:
        expr = size.node.expr
        ranges[expr] = ValueRanges(lower, upper)
        hints[expr] = int(size.node.hint)
        keep_rank[expr] = min(keep_rank.get(expr, 0), -d)
    return symbols_to_fix(shape_env, keep_rank, hints, ranges)


def _tensor_input_specs(gm: GraphModule, example_inputs: Sequence[Any], user_indices: List[int],
                        settings: Any, placeholder_indices: Sequence[int]):
    """Input specs for the tensor inputs among `user_indices` (`placeholder_indices`: the input
    index of each of gm's placeholders); each dynamic dim gets a min/opt/max range, guarded in
    dynamo. SymInt inputs that are dynamo's dynamic sizes are replaced by sym_size of a tensor dim
    carrying the same symbol; other int inputs are specialized to their value with a guard."""
    from torch.fx.experimental.symbolic_shapes import guard_bool, guard_int
    from torch_tensorrt_rtx.dynamo._input import Input

    users = set(user_indices)
    by_index = {i: n for i, n in zip(placeholder_indices, gm.graph.find_nodes(op="placeholder")) if i in users}
    symbol_dims = {}  # sympy symbol -> (placeholder node, dim)
    tensor_indices, bounds = [], []  # bounds: (min shape, example shape, max shape, dtype) per tensor input
    ranged = []  # (SymInt, engine min, engine max) of each dynamic dim
    constants = []  # (placeholder or None, SymInt): int inputs and dims that become build-time constants
    for index in user_indices:
        node, value = by_index[index], example_inputs[index]
        if not isinstance(value, torch.Tensor):
            continue
        fake = node.meta.get("example_value")
        shape = list(value.shape)
        lo, hi = list(shape), list(shape)
        for d, size in enumerate(getattr(fake, "shape", ())):
            if isinstance(size, torch.SymInt) and not size.node.expr.is_number:
                expr = size.node.expr
                if not expr.is_symbol:
                    raise _Unsupported(f"input {node.name} dim {d} has size {expr}; only plain symbols are mapped")
                symbol_dims.setdefault(expr, (node, d))
                vr = size.node.shape_env.var_to_range.get(expr)
                lower = _finite(getattr(vr, "lower", None), 2)
                upper = _finite(getattr(vr, "upper", None), settings.dynamic_max_size)
                lo[d], hi[d] = max(lower, 1), max(min(upper, settings.dynamic_max_size), shape[d])
                ranged.append((size, lo[d], hi[d], d))
                if shape[d] > settings.dynamic_max_size:
                    logger.warning("tensorrt_rtx backend: input %s dim %d is %d, above dynamic_max_size %d: the "
                                   "engine is ranged up to %d, and a larger size recompiles; raise dynamic_max_size "
                                   "to cover it", node.name, d, shape[d], settings.dynamic_max_size, shape[d])
        tensor_indices.append(index)
        bounds.append((lo, shape, hi, value.dtype))
    int_inputs = {value.node.expr: int(value.node.hint) for value in (example_inputs[i] for i in user_indices)
                  if isinstance(value, torch.SymInt) and value.node.expr.is_symbol and value.node.expr not in symbol_dims
                  and value.node.hint is not None}
    fixed = _sizes_dynamo_constrained(ranged, int_inputs)
    ranged = [dim for dim in ranged if dim[0].node.expr not in fixed]
    notes = []  # one line per dim fixed here, for the warning
    for k, index in enumerate(tensor_indices):
        lo, shape, hi, _ = bounds[k]
        for d, size in enumerate(by_index[index].meta["example_value"].shape):
            if isinstance(size, torch.SymInt) and size.node.expr in fixed:
                notes.append(_specialization_note(k, d, shape[d], (lo[d], hi[d]), fixed[size.node.expr]))
                lo[d] = hi[d] = shape[d]
                constants.append((None, size))  # guarded below, with the other build-time constants
    specs = [Input(min_shape=lo, opt_shape=shape, max_shape=hi, dtype=dtype) for lo, shape, hi, dtype in bounds]
    sizes = []  # (placeholder, symbol) of non-tensor inputs that are tensor sizes
    for index in user_indices:
        node, value = by_index[index], example_inputs[index]
        if isinstance(value, torch.Tensor):
            continue
        if isinstance(value, torch.SymInt) and value.node.expr in symbol_dims and value.node.expr not in fixed:
            sizes.append((node, value.node.expr))  # a tensor size: read from that tensor, stays symbolic
        elif isinstance(value, (int, torch.SymInt)) and not isinstance(value, bool):
            constants.append((node, value))  # a count, a slice bound, a factor
        else:
            raise _Unsupported(f"non-tensor input {node.name} ({type(value).__name__}) is not a tensor size")
    # Nothing below raises _Unsupported: the guards are only added for a graph we compile (the
    # one later _Unsupported, an unbacked size export cannot keep, comes with no-op guards).
    _warn_specialized(notes, "dynamo's trace of the model has")
    for size, lower, upper, _ in ranged:
        # The engine covers lower..upper only. Guarded in dynamo's shape environment, a size
        # outside (e.g. above dynamic_max_size) recompiles with a range covering it instead of
        # reaching this engine.
        guard_bool(lower <= size)
        guard_bool(size <= upper)
    for node, value in constants:
        # A build-time constant for TensorRT-RTX. guard_int records `input == value` in dynamo's
        # shape environment, so another value recompiles instead of reusing this engine.
        constant = guard_int(value)
        if node is not None:  # an int input (None: a tensor dim fixed above)
            _replace_uses(gm, node, constant)
            gm.graph.erase_node(node)
    for node, symbol in sizes:
        source, d = symbol_dims[symbol]
        last_placeholder = list(gm.graph.find_nodes(op="placeholder"))[-1]
        with gm.graph.inserting_after(last_placeholder):
            size = gm.graph.call_function(torch.ops.aten.sym_size.int, (source, d))
        node.replace_all_uses_with(size)
        gm.graph.erase_node(node)
    if sizes or any(node is not None for node, _ in constants):  # the graph changed
        gm.recompile()
    return tensor_indices, specs


def _specialization_note(k: int, d: int, value: int, bounds: Sequence[int], guard: Any) -> str:
    """"input 0 dim 2 = 64 (not [2, 4096]: guard ...)"; guard None: export fixed the dim itself."""
    text = "torch.export fixed it" if guard is None else f"guard {guard}"
    text = text if len(text) <= 160 else text[:157] + "..."
    return f"input {k} dim {d} = {value} (not [{bounds[0]}, {bounds[1]}]: {text})"


class DimSpecializedWarning(UserWarning):
    """A dim dynamo made dynamic is fixed to one size in this graph's engine."""


def _warn_specialized(notes: Sequence[str], why: str) -> None:
    """One WARNING per graph, logged and through `warnings` (the package's logger has only a
    NullHandler unless the user configures logging), for the dims that stop being dynamic: each
    gets an engine of its own per size (dynamo guards the size and recompiles for another one)."""
    if notes:
        message = (f"tensorrt_rtx backend: {len(notes)} dynamic dim(s) specialized, because {why} guards on them "
                   f"that do not hold over their whole range: {'; '.join(notes)}. Another size of such a dim "
                   f"recompiles and builds another engine.")
        logger.warning("%s", message)
        warnings.warn(message, DimSpecializedWarning, stacklevel=2)


def _export_specializing(gm: GraphModule, specs: List[Any]):
    """export_aten, letting export fix or narrow each dim it cannot keep dynamic over its range.

    Export traces the ATen decompositions, which dynamo never saw, and may meet a guard such as
    ``H // 4 != 1`` (adaptive pooling on a dynamic image size). Export reports, per dim, the
    range it kept (a single size when it fixed the dim); each decision is recorded as a guard in
    dynamo's shape environment, so a size outside recompiles instead of reaching an engine built
    for this one."""
    from torch.fx.experimental.symbolic_shapes import free_unbacked_symbols, guard_bool, guard_int
    from torch_tensorrt_rtx.dynamo._export import export_aten

    fakes = [node.meta["example_value"] for node in gm.graph.find_nodes(op="placeholder")]
    # A size dynamo traced without 0/1 specialization (its range starts below 2) is exported the
    # same way: torch.export would otherwise specialize 1 away and the engine would start at 2.
    oblivious = any(lo < 2 for spec in specs for lo, _, _ in spec.dynamic_dims.values())
    # Outside dynamo's tracing context: its guards (sources like L['x']) must not leak into the
    # exported program's guard code.
    with torch.no_grad(), torch._guards.tracing(None), \
            torch.fx.experimental._config.patch(backed_size_oblivious=oblivious):
        exported = export_aten(gm, specs, allow_specialization=True)
    for (k, d), (lo, hi) in exported.dim_ranges.items():
        wanted = (specs[k].min_shape[d], specs[k].max_shape[d])
        if (lo, hi) != wanted and free_unbacked_symbols(fakes[k].shape[d]):
            # An unbacked size (mark_unbacked) takes no guard: the engine must cover all of it.
            raise _Unsupported(f"input {k} dim {d} was marked unbacked over {list(wanted)}, but the exported "
                               f"graph holds only for [{lo}, {hi}]")
    notes = []
    for (k, d), (lo, hi) in exported.dim_ranges.items():
        size = fakes[k].shape[d]
        spec_lo, spec_hi = specs[k].min_shape[d], specs[k].max_shape[d]
        if lo == hi:
            guard = exported.fixed_by.get((k, d))
            notes.append(_specialization_note(k, d, lo, (spec_lo, spec_hi), guard))
            guard_int(size)
        elif (lo, hi) != (spec_lo, spec_hi):
            logger.info("tensorrt_rtx backend: export keeps %s in [%d, %d]; guarding it", size, lo, hi)
            guard_bool(lo <= size)
            guard_bool(size <= hi)
    _warn_specialized(notes, "the exported ATen graph has")
    return exported


def _to_aten(gm: GraphModule, example_inputs: Sequence[Any], state: Sequence[bool], kept: Sequence[int],
             specs: List[Any], copied: bool):
    """(decomposed ATen graph, {symbol: (min, opt, max)}) of `gm`, whose placeholders are the inputs
    at `kept` (`copied`: gm is `_copy`'s, not dynamo's own graph). Traced once in dynamo's fake mode
    where that is safe (_dynamo_aten.py); else the module state is frozen into a copy and the graph
    exported (a second trace, which handles mutations and grad-mode regions)."""
    weights = {k: example_inputs[i] for k, i in enumerate(kept) if state[i]}
    try:
        traced, symbol_ranges, notes = _dynamo_aten.trace_dynamo_graph(gm, weights, specs)
    except _dynamo_aten.NotTraced as exc:
        logger.info("tensorrt_rtx backend: %s; exporting the graph instead (a second trace)", exc)
    else:
        _warn_specialized(notes, "the ATen trace of dynamo's graph has")
        return traced, symbol_ranges
    if not copied:  # still dynamo's graph: freezing edits it
        gm = _copy(gm)
    _dynamo_aten.freeze(gm, weights)
    exported = _export_specializing(gm, specs)
    return exported.graph_module, exported.symbol_ranges


def _note_sizes_of_one(specs: Sequence[Any]) -> None:
    """Under torch.compile(dynamic=True) a static size 1 on an input is usually dynamo's 0/1
    specialization (the call that made this graph had batch 1, say): say what that costs and how
    to avoid it. Logged at INFO: a model that always runs batch 1 is fine as it is."""
    if torch._dynamo.config.assume_static_by_default:  # not dynamic=True
        return
    ones = [f"input {k} dim {d}" for k, spec in enumerate(specs) for d, (lo, hi) in
            enumerate(zip(spec.min_shape, spec.max_shape)) if lo == hi == 1]
    if ones:
        logger.info("tensorrt_rtx backend: dynamo traced %s as the constant 1 (it specializes sizes 0 and 1), so "
                    "this graph gets an engine of its own; to serve size 1 from the dynamic engine, set "
                    "torch.fx.experimental._config.backed_size_oblivious = True or use "
                    "torch._dynamo.decorators.mark_unbacked(x, dim, min=1, max=...)", ", ".join(ones))


def tensorrt_rtx_backend(gm: GraphModule, example_inputs: Sequence[Any],
                         options: Optional[dict] = None, **kwargs: Any) -> Callable[..., Any]:
    """Compile one dynamo graph. A failure at any stage leaves the graph to PyTorch with a
    FallbackWarning naming the stage and the reason; options={"pass_through_build_failures": True}
    (or require_full_compilation) raises it instead. Bad options always raise."""
    from torch_tensorrt_rtx.dynamo._compiler import check_settings
    from torch_tensorrt_rtx.dynamo._settings import CompilationSettings

    _rnn_notice.install()  # again: torch._dynamo.reset() drops it
    settings = CompilationSettings.from_options({**(options or {}), **kwargs})
    check_settings(settings)
    try:
        return _compile_dynamo_graph(gm, example_inputs, settings)
    except Exception as exc:  # noqa: BLE001 - the user's model must keep running
        if settings.pass_through_build_failures or settings.require_full_compilation:
            raise
        from torch_tensorrt_rtx.dynamo._compiler import one_line
        from torch_tensorrt_rtx.dynamo._summary import FallbackWarning, failed_stage

        where = failed_stage(exc, "compile")
        logger.info("tensorrt_rtx backend: %s failed; this graph runs in PyTorch", where, exc_info=True)
        kind = "" if isinstance(exc, _Unsupported) else f"{type(exc).__name__}: "
        warnings.warn(f"torch_tensorrt_rtx backend: {where} failed, so this graph runs in PyTorch: "
                      f"{kind}{one_line(exc)} (options={{'pass_through_build_failures': True}} "
                      "raises it instead)", FallbackWarning, stacklevel=2)
        return gm.forward


def _compile_dynamo_graph(gm: GraphModule, example_inputs: Sequence[Any], settings: Any) -> Callable[..., Any]:
    from torch_tensorrt_rtx.dynamo._compiler import compile_graph
    from torch_tensorrt_rtx.dynamo._summary import stage

    placeholders = list(gm.graph.find_nodes(op="placeholder"))
    state = [isinstance(v, torch.Tensor) and _is_module_state(n, v) and not _mutated(n)
             for n, v in zip(placeholders, example_inputs)]
    numbers = [_is_python_number(n) for n in placeholders]
    # Dynamo reads the graph it handed us afterwards: never edit it in place. The input mapping
    # edits it only for Python numbers and int inputs, and the export path freezes weights into
    # it (_to_aten copies it then); the ATen trace only calls it.
    copied = any(numbers) or not all(isinstance(v, torch.Tensor) for v in example_inputs)
    if copied:
        gm = _copy(gm)
    with stage("input mapping"):
        indices = _specialize_python_numbers(gm, numbers)
        user_indices, specs = _tensor_input_specs(gm, example_inputs, [i for i in indices if not state[i]],
                                                  settings, indices)
        _note_sizes_of_one(specs)
        kept = [i for i in indices if state[i] or i in user_indices]  # the input index of each placeholder left
    with stage("export"):
        aten_gm, symbol_ranges = _to_aten(gm, example_inputs, state, kept, specs, copied)
    compiled, report = compile_graph(aten_gm, symbol_ranges, settings)
    compile_id = torch._guards.CompileContext.current_compile_id()
    if compile_id is not None and compile_id.frame_compile_id is not None:
        report.graph_id, report.build_of_graph = str(compile_id), compile_id.frame_compile_id + 1
    compiled.compile_report = report
    for collected in _COLLECTORS.active:
        collected.append(report)

    def run(*args: Any) -> Any:
        return compiled(*[args[i] for i in user_indices])

    run.compiled_module = compiled  # type: ignore[attr-defined]
    return run


class _Collectors(threading.local):
    def __init__(self):
        self.active: List[List[Any]] = []


_COLLECTORS = _Collectors()


@contextlib.contextmanager
def compile_reports() -> Iterator[List[Any]]:
    """Collect the CompileReport of every ``torch.compile(..., backend="tensorrt_rtx")`` build
    that happens inside the ``with`` block, in build order:

        with torch_tensorrt_rtx.compile_reports() as reports:
            fast(x)              # dynamo compiles on the first call (and on a recompile)
        assert not reports[-1].fallback_ops, reports[-1].format()

    Contract: only builds on the calling thread are collected (dynamo builds on the thread that
    calls the compiled function); nested blocks each collect every build inside them; a call
    that reuses an earlier build adds nothing. The list stays usable after the block. Reports
    of ``torch_tensorrt_rtx.compile`` are on its result, ``compiled.compile_report``."""
    _rnn_notice.install()  # RNNs dynamo skips are reported while collecting, even after a reset
    reports: List[Any] = []
    _COLLECTORS.active.append(reports)
    try:
        yield reports
    finally:
        _COLLECTORS.active[:] = [r for r in _COLLECTORS.active if r is not reports]
