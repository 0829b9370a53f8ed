"""Export: trace a module with torch.export and decompose it to the ATen graph the compiler takes.

The decompositions run node by node on export's graph (lowering/_decompositions.py): ops with a
converter stay whole and nothing is traced twice; only a program that needs it (a grad-mode
region, a mutation an alias can see) is retraced whole with `run_decompositions`.

    exported = export_aten(module, [Input(min_shape=(1, 64), opt_shape=(8, 64), max_shape=(32, 64))])
    exported.graph_module, exported.symbol_ranges      # ATen graph, {symbol: (min, opt, max)}

Every dynamic dim of an Input becomes a `torch.export.Dim` over its range (one Dim per dim name,
so named dims shared between inputs are equal to torch.export). That is strict: export fails if
the graph cannot stay dynamic over the whole range, and `torch_tensorrt_rtx.compile` reports it.

With ``allow_specialization=True`` (the torch.compile backend, whose ranges are guesses from
dynamo's value ranges) a dim that the trace cannot keep dynamic over its range is fixed to its
example size instead, and export runs again. Such a dim is found from the guards in export's
shape environment (sympy expressions, such as ``Ne(s0 // 2, 1)`` from an ATen decomposition
of adaptive pooling that dynamo never saw), not from an error message. What was decided comes
back as data, `ExportedAten.dim_ranges`, for the caller to guard on.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import inspect
import logging
import types
from typing import Any, Dict, Iterator, List, Optional, Sequence, Set, Tuple

import sympy
import torch
from torch.utils._sympy.value_ranges import bound_sympy

from torch_tensorrt_rtx.dynamo._gc import no_full_collections
from torch_tensorrt_rtx.dynamo._input import Input, shared_dims
from torch_tensorrt_rtx.dynamo._summary import PHASE_SECONDS_META, PhaseClock
from torch_tensorrt_rtx.dynamo._unlift_weights import register_weights

Range = Tuple[int, int, int]
logger = logging.getLogger(__name__)


@dataclasses.dataclass
class ExportedAten:
    graph_module: torch.fx.GraphModule  # decomposed ATen graph, weights unlifted
    symbol_ranges: Dict[sympy.Symbol, Range]  # each dynamic size symbol -> (min, opt, max) for the engine
    examples: Tuple[torch.Tensor, ...]  # the positional example inputs export traced with
    # (input index, dim) -> (min, max) export kept for each dim given as dynamic; min == max when
    # export fixed the dim to its example size. Keyword inputs follow the positional ones.
    dim_ranges: Dict[Tuple[int, int], Tuple[int, int]]
    # (input index, dim) -> the guard of the trace that made export_aten fix that dim
    fixed_by: Dict[Tuple[int, int], str] = dataclasses.field(default_factory=dict)

    def specialized(self) -> Dict[Tuple[int, int], int]:
        """The dims export fixed, with the size it fixed each one to."""
        return {key: lo for key, (lo, hi) in self.dim_ranges.items() if lo == hi}


def _dims_of(spec: Input, label: str, named: Dict[str, Any], allow_specialization: bool) -> Dict[int, Any]:
    dims = {}
    for d, (lo, _opt, hi) in spec.dynamic_dims.items():
        name = spec.dim_name(d)
        if allow_specialization:
            dims[d] = torch.export.Dim.AUTO(min=lo, max=hi)
        elif name is None:
            dims[d] = torch.export.Dim(f"{label}_dim{d}", min=lo, max=hi)
        else:  # one Dim object per name: torch.export then knows the sizes are equal
            dims[d] = named.setdefault(name, torch.export.Dim(name, min=lo, max=hi))
    return dims


def dynamic_shapes(specs: Sequence[Input], module: Any = None, kwarg_specs: Optional[Dict[str, Input]] = None,
                   allow_specialization: bool = False) -> Any:
    """The `dynamic_shapes` argument of torch.export.export for `module` called with `specs`
    (positional) and `kwarg_specs` (by keyword); None when nothing is dynamic."""
    kwarg_specs = kwarg_specs or {}
    labels = [spec.label(k) for k, spec in enumerate(specs)] + list(kwarg_specs)
    shared_dims(list(specs) + list(kwarg_specs.values()), labels)  # one range per named dim
    named: Dict[str, Any] = {}
    shapes = [_dims_of(spec, spec.label(k), named, allow_specialization) or None for k, spec in enumerate(specs)]
    keyword_shapes = {key: _dims_of(spec, key, named, allow_specialization) or None
                      for key, spec in kwarg_specs.items()}
    if not any(shapes) and not any(keyword_shapes.values()):
        return None
    params = list(inspect.signature(module.forward).parameters.values()) if module is not None else []
    if kwarg_specs:  # keyword inputs: torch.export wants a dict keyed by forward's parameter names
        bound = inspect.signature(module.forward).bind(*specs, **kwarg_specs).arguments
        out: Dict[str, Any] = {}
        position = 0
        for name, value in bound.items():
            if isinstance(value, tuple):  # forward(*xs)
                out[name] = tuple(shapes[position:position + len(value)])
                position += len(value)
            elif isinstance(value, dict):  # forward(**kw)
                out[name] = {k: keyword_shapes[k] for k in value}
            elif name in kwarg_specs:
                out[name] = keyword_shapes[name]
            else:
                out[name] = shapes[position]
                position += 1
        return out
    if params and params[0].kind == inspect.Parameter.VAR_POSITIONAL:
        return (tuple(shapes),)  # forward(*xs): export wants one entry for the packed tuple
    return tuple(shapes)


def _bound(value: Any, default: int) -> int:
    try:
        return int(value)  # sympy Integer; torch's int_oo raises
    except (TypeError, ValueError, OverflowError):
        return default


def _user_input_values(program: torch.export.ExportedProgram) -> List[Any]:
    names = set(program.graph_signature.user_inputs)
    return [node.meta.get("val") for node in program.graph.find_nodes(op="placeholder") if node.name in names]


def _holds(expr: Any, ranges: Dict[sympy.Symbol, Any]) -> bool:
    """True when `expr` (a guard) is true for every value of its symbols in `ranges`."""
    if expr in (True, sympy.true):
        return True
    try:
        verdict = bound_sympy(expr, ranges)
    except Exception:  # noqa: BLE001 - an expression bound_sympy cannot bound proves nothing
        return False
    return verdict.lower == verdict.upper == sympy.true


def symbols_to_fix(shape_env: Any, keep_rank: Dict[sympy.Symbol, Any], hints: Dict[sympy.Symbol, int],
                   ranges: Optional[Dict[sympy.Symbol, Any]] = None) -> Dict[sympy.Symbol, Any]:
    """The size symbols (keys of `keep_rank`) to fix to their `hints` so that every guard of
    `shape_env` holds over the other symbols' ranges (`ranges` overriding the shape
    environment's), each with a guard that made it fixed.

    A guard that the ranges imply is harmless (equalities between symbols, ``Eq(s1, s0)``, are
    applied first). Each other guard is settled by fixing symbols it names: the lowest-ranked one
    (callers rank the batch dim highest) that makes it hold on its own, else the lowest-ranked one
    and on to the next. A guard relating the batch to the image size (``Eq(s0*s1, ...)``) thus
    fixes the image size alone, where fixing every symbol it names would fix the batch too."""
    ranges = {**shape_env.var_to_range, **(ranges or {})}
    guards = [shape_env.replace(guard.expr) for guard in shape_env.guards]
    pending = [g for g in guards if g.free_symbols & keep_rank.keys() and not _holds(g, ranges)]
    fixed: Dict[sympy.Symbol, Any] = {}
    values: Dict[sympy.Symbol, sympy.Integer] = {}
    while pending:
        guard = pending[0]
        names = sorted(guard.free_symbols & keep_rank.keys() - fixed.keys(), key=lambda s: (keep_rank[s], str(s)))
        if not names:  # it names no input size left to fix (an unbacked size, say)
            pending.pop(0)
            continue
        symbol = next((s for s in names if _holds(guard.xreplace({**values, s: sympy.Integer(hints[s])}), ranges)),
                      names[0])
        fixed[symbol] = guard
        values[symbol] = sympy.Integer(hints[symbol])
        pending = [g for g in pending if not _holds(g.xreplace(values), ranges)]
    return fixed


def _dims_export_cannot_keep_dynamic(program: torch.export.ExportedProgram, specs: Sequence[Input],
                                     examples: Sequence[torch.Tensor]) -> Dict[Tuple[int, int], Any]:
    """(input index, dim) of each dynamic dim that a guard of the trace constrains beyond its
    range, with that guard.

    Such a guard (``Ne(s0 // 2, 1)`` from adaptive pooling) is what strict export reports as a
    constraint violation. It is read from the shape environment as a sympy expression; see
    `symbols_to_fix` for which of the dims it names are fixed."""
    values = _user_input_values(program)
    positions: Dict[sympy.Symbol, List[Tuple[int, int]]] = {}  # symbol -> the dims whose size names it
    hints: Dict[sympy.Symbol, int] = {}
    shape_env = None
    for k, (spec, value) in enumerate(zip(specs, values)):
        for d in spec.dynamic_dims:
            size = value.shape[d]
            if not isinstance(size, torch.SymInt):
                continue
            shape_env = size.node.shape_env
            for symbol in size.node.expr.free_symbols:
                positions.setdefault(symbol, []).append((k, d))
            if size.node.expr.is_symbol:
                hints[size.node.expr] = int(examples[k].shape[d])
    if shape_env is None:
        return {}
    for symbol in positions:
        hints.setdefault(symbol, shape_env.backed_var_to_val.get(symbol))
    keep_rank = {symbol: -max(d for _, d in where) for symbol, where in positions.items() if hints[symbol] is not None}
    fixed = symbols_to_fix(shape_env, keep_rank, hints)
    found = {where: guard for symbol, guard in fixed.items() for where in positions[symbol]}
    for k, (spec, value) in enumerate(zip(specs, values)):
        for d in spec.dynamic_dims:
            size = value.shape[d]
            # Export replaced the size by a number (``Eq(s1, 3375)``) or by an expression of other
            # sizes: it cannot be a range of its own, so it is fixed to its example size.
            if isinstance(size, torch.SymInt) and not size.node.expr.is_symbol and (k, d) not in found:
                found[(k, d)] = f"export replaced the size by {size.node.expr}"
    return found


def _fixed(spec: Input, dims: Set[int], example: torch.Tensor) -> Input:
    """`spec` with `dims` static at the example's size."""
    lo, opt, hi = list(spec.min_shape), list(spec.opt_shape), list(spec.max_shape)
    for d in dims:
        lo[d] = opt[d] = hi[d] = example.shape[d]
    return Input(min_shape=lo, opt_shape=opt, max_shape=hi, dtype=spec.dtype)


class _NamedKeywords(torch.nn.Module):
    """`module`, whose forward takes keyword inputs through ``**kwargs``, with those keywords as
    named parameters: torch.export (2.13) cannot match dynamic shapes to ``**kwargs`` entries
    ("Must provide a tree_name ..."). Called the same way, `m(*inputs, **keywords)`."""

    def __init__(self, module: torch.nn.Module, positional: int, keywords: Sequence[str]) -> None:
        super().__init__()
        self.module = module
        kind = inspect.Parameter
        parameters = [kind(f"input{k}", kind.POSITIONAL_ONLY) for k in range(positional)]
        parameters += [kind(name, kind.KEYWORD_ONLY) for name in keywords]

        def forward(*args: Any, **kwargs: Any) -> Any:
            return module(*args, **kwargs)

        forward.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        self.forward = forward  # type: ignore[method-assign]


def _exportable(module: Any, specs: Sequence[Input], kwarg_specs: Dict[str, Input]) -> Any:
    """`module`, or a `_NamedKeywords` view of it when some keyword input reaches forward only
    through ``**kwargs``."""
    if not kwarg_specs or not isinstance(module, torch.nn.Module):
        return module
    parameters = inspect.signature(module.forward).parameters
    if all(name in parameters and parameters[name].kind != inspect.Parameter.POSITIONAL_ONLY for name in kwarg_specs):
        return module
    return _NamedKeywords(module, len(specs), list(kwarg_specs))


_WEIGHT_KINDS = ("PARAMETER", "BUFFER", "CONSTANT_TENSOR", "CUSTOM_OBJ")


def _unlifted(program: torch.export.ExportedProgram, generate_code: bool = True) -> Optional[torch.fx.GraphModule]:
    """`program.module(check_guards=False)` built the way torch builds it, without its repeated
    work: torch's regenerates the Python code of the whole graph three times (two GraphModules
    and an unlift pass) and records a provenance entry (a deep copy of the node's history) for
    every node; here the code is generated once, by the module handed back, and no provenance
    is added. `generate_code=False`: not even that; the module's forward raises
    `CodeNotGeneratedYet` until its `recompile()` (compile_graph changes the graph and generates
    the code once, at the end). Same graph (node names included), same weights, input-constraint
    hooks, pytree calling convention and train()/eval() refusal. None when the program is one
    this does not cover (a mutation, an effect token) or torch lacks the helpers it uses: the
    caller then takes `program.module()`."""
    try:
        from torch.export._unlift import _create_stateful_graph_module, _get_codegen
        from torch.export.unflatten import _assign_attr, _AttrKind, _is_call_name  # noqa: F401 (_unlift_weights)
        from torch.fx._lazy_graph_module import _LazyGraphModule
    except ImportError:
        return None
    signature = program.graph_signature
    kinds = [spec.kind.name for spec in signature.input_specs]
    if (any(kind not in ("USER_INPUT",) + _WEIGHT_KINDS for kind in kinds)
            or any(spec.kind.name != "USER_OUTPUT" for spec in signature.output_specs)):
        return None
    graph = copy.deepcopy(program.graph)
    placeholders = list(graph.find_nodes(op="placeholder"))
    if len(placeholders) != len(kinds):
        return None
    # Lazy: this module only carries the attributes over; its code would never be used.
    plain = _LazyGraphModule(program.graph_module, graph)
    plain.meta.update(program.graph_module.meta)
    register_weights(plain, signature, program.state_dict, program.constants)
    for node, spec in zip(placeholders, signature.input_specs):
        if spec.kind.name in _WEIGHT_KINDS:
            with graph.inserting_after(node):
                weight = graph.create_node("get_attr", spec.target)
            node.replace_all_uses_with(weight)
            weight.meta = node.meta
            graph.erase_node(node)
    call = program.module_call_graph[0].signature
    graph._codegen = _get_codegen(program.call_spec.in_spec, program.call_spec.out_spec,
                                  call.forward_arg_names if call else None)
    with contextlib.nullcontext() if generate_code else _code_generated_later(graph):
        module = _create_stateful_graph_module(plain, program.range_constraints, program)
    module.meta.update(program.graph_module.meta)
    module.train = types.MethodType(_refuse_mode("train"), module)  # as program.module() does
    module.eval = types.MethodType(_refuse_mode("eval"), module)
    return module


class CodeNotGeneratedYet(RuntimeError):
    """The module of `export_aten(..., for_compile_graph=True)` was called before compile_graph
    generated its code."""


def _not_generated_yet(*args: Any, **kwargs: Any) -> Any:
    raise CodeNotGeneratedYet("torch_tensorrt_rtx internal error: the exported module was called before "
                              "compile_graph generated its Python code (export_aten(for_compile_graph=True))")


@contextlib.contextmanager
def _code_generated_later(graph: torch.fx.Graph) -> Iterator[None]:
    """While the module over `graph` is built: its Python code is a stub that raises
    `CodeNotGeneratedYet`, not the code of the whole graph (about 20 ms for resnet50's 500 nodes),
    which compile_graph would throw away: it changes the graph and generates the code once, at
    the end. The codegen (pytree calling convention included) is `graph`'s own, unchanged."""
    codegen = graph._codegen
    stub = torch.fx.Graph()
    stub.output(None)
    stub_code = stub.python_code(root_module="self")
    stub_code.globals["_not_generated_yet"] = _not_generated_yet
    stub_code.src = "\n\ndef forward(self, *args, **kwargs):\n    return _not_generated_yet()\n"
    codegen._gen_python_code = lambda *args, **kwargs: stub_code  # this instance only
    try:
        yield
    finally:
        del codegen._gen_python_code


def _refuse_mode(name: str) -> Any:
    def refuse(self: Any, mode: bool = True) -> Any:
        raise NotImplementedError(f"Calling {name}() is not supported yet.")

    return refuse


def _decomposed(program: torch.export.ExportedProgram,
                for_compile_graph: bool = False) -> Tuple[torch.fx.GraphModule, torch.export.ExportedProgram]:
    """The program's graph with its weights unlifted (`program.module()`), decomposed node by
    node (lowering/_decompositions.py), and the program whose shape environment it uses. Where
    that cannot be done, the whole program is retraced through the table instead.
    `for_compile_graph`: see export_aten."""
    from torch_tensorrt_rtx.dynamo.lowering._decompositions import WholeProgramNeeded, decompose, decomposition_table

    table = decomposition_table()
    signature = program.graph_signature
    if signature.buffers_to_mutate or signature.user_inputs_to_mutate:
        why = "the program mutates an input or a buffer"
    else:
        # compile_graph drops the guard module; without it the input checks stay in the pre-hook.
        gm = _unlifted(program, generate_code=False) if for_compile_graph else None
        gm = program.module(check_guards=not for_compile_graph) if gm is None else gm
        try:
            traced = decompose(gm, table, recompile=not for_compile_graph)
            logger.debug("export: decomposed node by node (%d node(s) traced alone)", traced)
            return gm, program
        except WholeProgramNeeded as exc:
            why = str(exc)
    logger.info("export: %s, so the whole program is decomposed (a second trace)", why)
    program = program.run_decompositions(table)
    return program.module(check_guards=not for_compile_graph), program


def export_aten(module: torch.nn.Module, specs: Sequence[Input], kwarg_specs: Optional[Dict[str, Input]] = None, *,
                allow_specialization: bool = False, for_compile_graph: bool = False) -> ExportedAten:
    """torch.export + our decompositions (node by node where possible, see `_decomposed`). The
    time of each phase travels to compile_graph in graph_module.meta[PHASE_SECONDS_META].
    `for_compile_graph=True` skips two things compile_graph does itself (and its callers then
    get a module whose Python code may be stale): regenerating the code after decomposing
    (compile_graph does at the end) and export's `_guards_fn` module (compile_graph drops it)."""
    with no_full_collections():  # no full garbage collection starts inside (_gc.py)
        return _export_aten(module, specs, kwarg_specs, allow_specialization, for_compile_graph)


def _export_aten(module: torch.nn.Module, specs: Sequence[Input], kwarg_specs: Optional[Dict[str, Input]],
                 allow_specialization: bool, for_compile_graph: bool) -> ExportedAten:
    kwarg_specs = dict(kwarg_specs or {})
    module = _exportable(module, specs, kwarg_specs)
    given = list(specs) + list(kwarg_specs.values())  # export's flattening order: positional, then keywords
    specs = list(specs)
    clock = PhaseClock()
    examples = tuple(spec.example() for spec in specs)
    kwarg_examples = {key: spec.example() for key, spec in kwarg_specs.items()}
    all_examples = list(examples) + list(kwarg_examples.values())

    fixed_by: Dict[Tuple[int, int], str] = {}

    def dims_to_fix(program) -> Dict[Tuple[int, int], Any]:
        if not allow_specialization:
            return {}
        return _dims_export_cannot_keep_dynamic(program, specs + list(kwarg_specs.values()), all_examples)

    while True:
        shapes = dynamic_shapes(specs, module, kwarg_specs, allow_specialization)
        with clock.phase("export"):
            program = torch.export.export(module, examples, kwargs=kwarg_examples or None, dynamic_shapes=shapes,
                                          strict=False)
        fix = dims_to_fix(program)
        if not fix:
            with clock.phase("decompositions"):
                gm, program = _decomposed(program, for_compile_graph)
            fix = dims_to_fix(program)
        if not fix:
            break
        # Export again with those dims static: a graph traced for their example sizes.
        fixed_by.update((where, str(guard)) for where, guard in fix.items())
        for k, key in enumerate(list(range(len(specs))) + list(kwarg_specs)):
            dims = {d for kk, d in fix if kk == k}
            if not dims:
                continue
            if k < len(specs):
                specs[k] = _fixed(specs[k], dims, all_examples[k])
            else:
                kwarg_specs[key] = _fixed(kwarg_specs[key], dims, all_examples[k])
    gm.meta[PHASE_SECONDS_META] = clock.seconds
    symbol_ranges: Dict[sympy.Symbol, Range] = {}
    dim_ranges: Dict[Tuple[int, int], Tuple[int, int]] = {}
    for k, (spec, node) in enumerate(zip(given, gm.graph.find_nodes(op="placeholder"))):
        val = node.meta.get("val")
        for d, (lo, opt, hi) in spec.dynamic_dims.items():
            size = val.shape[d]
            if not isinstance(size, torch.SymInt):
                dim_ranges[(k, d)] = (int(size), int(size))  # export fixed it
                continue
            expr = size.node.expr
            if expr.is_number:  # export replaced the symbol by its value (e.g. 3375): fixed
                dim_ranges[(k, d)] = (int(expr), int(expr))
                continue
            if not expr.is_symbol:
                if allow_specialization:
                    raise ValueError(f"export: input {k} dim {d} became {expr} in the exported graph, an expression "
                                     f"of other sizes, not a size of its own in [{lo}, {hi}]")
                continue
            if allow_specialization:  # export may have narrowed the range it was offered
                known = program.range_constraints.get(expr)
                lo = max(lo, _bound(getattr(known, "lower", None), lo))
                hi = min(hi, _bound(getattr(known, "upper", None), hi))
            dim_ranges[(k, d)] = (lo, hi)
            symbol_ranges.setdefault(expr, (lo, min(max(opt, lo), hi), hi))
    return ExportedAten(gm, symbol_ranges, examples, dim_ranges, fixed_by)
