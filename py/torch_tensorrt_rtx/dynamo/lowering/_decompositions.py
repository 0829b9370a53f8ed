"""ATen decompositions: the table, and applying it node by node instead of retracing the program.

The table is torch's default (core ATen) table minus every op that has a registered converter:
an op we convert natively (e.g. silu -> one activation) is better kept whole than decomposed.

Building it materializes torch's table, which walks every operator namespace for
CompositeImplicitAutograd ops (20-60 ms warm, a few hundred ms on the first call), so it is
built once and rebuilt only when a converter has been registered since, or the set of dispatcher
operators torch's table would decompose changed (a CompositeImplicitAutograd kernel of a
custom-op library loaded later, or one that went away). Each caller gets its own copy.

`decompose(gm, table)` takes the graph torch.export made (weights unlifted) to the ops
`ExportedProgram.run_decompositions(table)` would give, without retracing the whole program
(a full retrace cost 38-50% of a compile). Node by node:
- an op with a converter that accepts the node stays whole (linear, layer_norm,
  scaled_dot_product_attention, reshape, ...), as run_decompositions keeps it;
- in-place ops on fresh tensors become functional (_rewrites.functionalize_in_place);
- common composite ops are rewritten directly (_rewrites.REWRITES: conv2d -> convolution, ...);
- any other op in the table, or composite (CompositeImplicitAutograd), is traced alone
  through the table under the program's fake mode, and the small graph is spliced in its place.
Where the program needs more (a higher-order op such as a grad-mode region, an in-place op an
alias could observe, an input or buffer mutation) it raises `WholeProgramNeeded`, and the caller
runs `run_decompositions` on the whole program as before.
"""
from __future__ import annotations

import contextlib
import functools
import logging
import operator
from typing import Any, Callable, Dict, FrozenSet, Iterator, List

import torch
from torch.fx import GraphModule, Node

from torch_tensorrt_rtx.dynamo.conversion._registry import _lookup_converter, registered_targets
from torch_tensorrt_rtx.dynamo.lowering._rewrites import REWRITES, functionalize_in_place

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def no_backend_kernels() -> Iterator[None]:
    """The backend kernels torch.export turns off while it traces (an LSTM would trace to
    mkldnn_rnn_layer otherwise). set_flags(False) changes only `enabled`; the `flags` context
    managers would also set oneDNN's TF32 switch, which warns on CPU builds of torch."""
    backends = (torch.backends.mkldnn, torch.backends.nnpack, torch.backends.cudnn)
    saved = [backend.set_flags(False) for backend in backends]
    try:
        yield
    finally:
        for backend, flags in zip(backends, saved):
            backend.set_flags(*flags)


def decomposition_table() -> Dict[torch._ops.OperatorBase, Callable]:
    # A fresh dict each call: run_decompositions copies it today, but callers may edit theirs.
    return dict(_table_without(frozenset(registered_targets()), _operators_generation()))


_composite_operators: FrozenSet[str] = frozenset()
_generation = 0


def _operators_generation() -> int:
    """A number that changes when the dispatcher's operators with a CompositeImplicitAutograd
    kernel changed since the last call: torch's table holds those, beside core ATen's fixed list.
    Other operators coming or going (transformers' custom ops, defined when a model is built)
    leave the table as it was, so they do not cost a rebuild. One query of that kernel's
    registrations, about 0.2 ms per compile (listing every operator name took about 2 ms); it also
    sees a composite kernel added to an operator that was defined before the last call."""
    global _generation, _composite_operators
    names = frozenset(torch._C._dispatch_get_registrations_for_dispatch_key("CompositeImplicitAutograd"))
    if names != _composite_operators:
        _generation += 1
        _composite_operators = names
    return _generation


@functools.lru_cache(maxsize=1)
def _table_without(converted: FrozenSet[object], generation: int) -> Dict[torch._ops.OperatorBase, Callable]:
    del generation  # only part of the cache key
    table = dict(torch.export.default_decompositions())
    for target in converted:
        table.pop(target, None)
    return table


class WholeProgramNeeded(Exception):
    """The graph cannot be decomposed node by node; run_decompositions on the program instead."""


@functools.lru_cache(maxsize=None)
def _composite(target: torch._ops.OpOverload) -> bool:
    return torch._C._dispatch_has_kernel_for_dispatch_key(target.name(), torch._C.DispatchKey.CompositeImplicitAutograd)


def decompose(gm: GraphModule, table: Dict[Any, Callable], recompile: bool = True) -> int:
    """Decompose `gm` in place (see the module docstring); returns how many nodes were traced
    alone. Raises WholeProgramNeeded, leaving `gm` partly rewritten, when it cannot.
    `recompile=False` leaves gm's Python code stale and the graph unlinted, for a caller that
    does both later (compile_graph: lowering's dead-code elimination lints it)."""
    for node in gm.graph.nodes:
        if node.op == "call_function" and isinstance(node.target, torch._ops.HigherOrderOperator):
            raise WholeProgramNeeded(f"{node.name} is a higher-order op ({node.target.name()})")
    refused = functionalize_in_place(gm.graph)
    if refused is not None:
        raise WholeProgramNeeded(f"{refused.name} ({refused.target}) mutates a tensor that an alias may observe")
    converted = set(registered_targets())
    traced = 0
    for node in list(gm.graph.nodes):
        if node.op != "call_function" or not isinstance(node.target, torch._ops.OpOverload):
            continue
        target = node.target
        if not (target in table or _composite(target)):
            continue
        # An op with a converter stays whole, unless that converter refuses this call (a batch
        # norm in training mode): then its decomposition may convert (batch-statistics norm).
        if target in converted and _lookup_converter(node) is not None:
            continue
        rewrite = REWRITES.get(target)
        if rewrite is None or not rewrite(gm.graph, node):
            _trace_alone(gm, node, table)
            traced += 1
    if recompile:
        gm.graph.lint()
        gm.recompile()
    return traced


def _trace_alone(gm: GraphModule, node: Node, table: Dict[Any, Callable]) -> None:
    """Replace `node` by the graph of its decomposition, traced under the program's fake mode
    with the traced values of its inputs (so symbolic sizes stay the program's symbols)."""
    from torch._guards import detect_fake_mode
    from torch.fx.experimental.proxy_tensor import make_fx

    flat, spec = torch.utils._pytree.tree_flatten((node.args, node.kwargs))
    positions = [k for k, a in enumerate(flat) if isinstance(a, Node)]
    inputs = [flat[k] for k in positions]
    values = [n.meta.get("val") for n in inputs]
    if any(v is None for v in values):
        raise WholeProgramNeeded(f"{node.name}: an input has no traced value")

    def call(*args: Any) -> Any:
        items = list(flat)
        for k, value in zip(positions, args):
            items[k] = value
        call_args, call_kwargs = torch.utils._pytree.tree_unflatten(items, spec)
        return node.target(*call_args, **call_kwargs)

    fake_mode = detect_fake_mode(values)
    try:  # with the backend kernels torch.export turns off (an LSTM decomposes to mkldnn_rnn_layer otherwise)
        with fake_mode, no_backend_kernels():
            sub = make_fx(call, decomposition_table=table, tracing_mode="symbolic")(*values)
    except Exception as exc:  # noqa: BLE001 - data-dependent decompositions and the like
        raise WholeProgramNeeded(f"{node.name} ({node.target}) did not trace alone: {exc}") from exc
    _splice(gm, node, sub, inputs)


def _splice(gm: GraphModule, node: Node, sub: GraphModule, inputs: List[Node]) -> None:
    graph = gm.graph
    env: Dict[Node, Any] = dict(zip(sub.graph.find_nodes(op="placeholder"), inputs))
    provenance = {k: v for k, v in node.meta.items() if k != "val"}
    output = None
    with graph.inserting_before(node):
        for inner in sub.graph.nodes:
            if inner.op == "placeholder":
                continue
            if inner.op == "output":
                output = torch.fx.node.map_arg(inner.args[0], lambda n: env[n])
                break
            if inner.op == "get_attr":  # a constant the decomposition made (a torch.tensor(...))
                name = _free_name(gm, f"_decomposed_{inner.target}")
                gm.register_buffer(name, getattr(sub, inner.target))
                new = graph.get_attr(name)
            elif inner.op == "call_function":
                new = graph.node_copy(inner, lambda n: env[n])
                if isinstance(inner.target, torch._ops.OpOverload) and inner.target._schema.is_mutable:
                    raise WholeProgramNeeded(f"the decomposition of {node.name} ({node.target}) mutates a tensor")
            else:
                raise WholeProgramNeeded(f"the decomposition of {node.name} has a {inner.op} node")
            new.meta = {**provenance, **{k: v for k, v in inner.meta.items() if k == "val"}}
            env[inner] = new
    if isinstance(output, (list, tuple)):
        for user in list(node.users):
            if user.target is not operator.getitem or not isinstance(output[user.args[1]], Node):
                raise WholeProgramNeeded(f"{node.name}: a multi-output decomposition read other than by index")
            user.replace_all_uses_with(output[user.args[1]])
            graph.erase_node(user)
    elif isinstance(output, Node):
        node.replace_all_uses_with(output)
    else:
        raise WholeProgramNeeded(f"the decomposition of {node.name} returns {type(output).__name__}")
    graph.erase_node(node)


def _free_name(gm: GraphModule, base: str) -> str:
    name, k = base, 0
    while hasattr(gm, name):
        k += 1
        name = f"{base}_{k}"
    return name

