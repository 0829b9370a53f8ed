"""Cut partitions out of an FX graph and fuse them back as submodule calls, in time linear in
the graph's size.

    sub = extract(gm, nodes, "_run_on_trt_0")   # a GraphModule over copies of `nodes`; gm unchanged
    fuse(gm, [("_run_on_trt_0", nodes, sub)])    # each partition's nodes replaced by a call of its sub

A submodule's inputs are the values its nodes read from outside, in the order they are first read;
its outputs are its nodes that something outside reads, in graph order, always as a tuple. The
partitions must be convex (no path leaves one and comes back into it).
"""
from __future__ import annotations

import copy
import heapq
import operator
from typing import Dict, List, Sequence, Set, Tuple

from torch.fx import Graph, GraphModule, Node
from torch.fx._lazy_graph_module import _LazyGraphModule
from torch.fx.passes.utils.common import HolderModule


def _outside_inputs(nodes: Sequence[Node], members: Set[Node]) -> List[Node]:
    seen: Dict[Node, None] = {}
    for node in nodes:
        for arg in node.all_input_nodes:
            if arg not in members:
                seen.setdefault(arg)
    return list(seen)


def _read_outside(nodes: Sequence[Node], members: Set[Node]) -> List[Node]:
    return [n for n in nodes if any(user not in members for user in n.users)]


def extract(gm: GraphModule, nodes: Sequence[Node], name: str) -> GraphModule:
    """A GraphModule computing `nodes` (in graph order) from their outside inputs. `gm` is not changed;
    weights read through get_attr are shared, not copied."""
    members = set(nodes)
    subgraph = Graph()
    env: Dict[Node, Node] = {}
    for arg in _outside_inputs(nodes, members):
        placeholder = subgraph.placeholder(arg.name, type_expr=arg.type)
        placeholder.meta = copy.copy(arg.meta)
        env[arg] = placeholder
    for node in nodes:
        env[node] = subgraph.node_copy(node, env.__getitem__)
    subgraph.output(tuple(env[n] for n in _read_outside(nodes, members)))
    # Lazy: its Python code is generated when first needed (a call, `.code`), not here. A
    # partition that becomes an engine never needs it, and generating it for a graph of
    # thousands of nodes takes a good part of partitioning.
    return _LazyGraphModule(_holder(gm, subgraph), subgraph, name)


def _holder(gm: GraphModule, subgraph: Graph) -> HolderModule:
    """A module holding what `subgraph` reads from `gm` (get_attr, call_module targets) at the
    same paths, shared, not copied (as torch's lift_subgraph_as_module does)."""
    root = HolderModule({})
    for node in subgraph.nodes:
        if node.op not in ("call_module", "get_attr"):
            continue
        *path, leaf = node.target.split(".")
        owner, source = root, gm
        for part in path:
            if not hasattr(owner, part):
                owner.add_module(part, HolderModule({}))
            owner, source = getattr(owner, part), getattr(source, part)
        setattr(owner, leaf, getattr(source, leaf))
    return root


def fuse(gm: GraphModule, partitions: Sequence[Tuple[str, Sequence[Node], GraphModule]]) -> GraphModule:
    """Replace each partition's nodes (in graph order) by a call of its submodule (from `extract`
    over the same nodes) registered under its name. The graph is then put back in a topological
    order that keeps the original order wherever the data allow it."""
    graph = gm.graph
    for name, nodes, sub in partitions:
        members = set(nodes)
        inputs, outputs = _outside_inputs(nodes, members), _read_outside(nodes, members)
        gm.add_submodule(name, sub)
        with graph.inserting_after(nodes[-1]):
            call = graph.call_module(name, tuple(inputs))
        call.meta["val"] = tuple(n.meta.get("val") for n in outputs)
        with graph.inserting_after(call):
            for i, out in reversed(list(enumerate(outputs))):
                item = graph.call_function(operator.getitem, (call, i))
                item.meta = dict(out.meta)
                out.replace_all_uses_with(item, delete_user_cb=lambda user: user not in members)
        for node in reversed(nodes):
            graph.erase_node(node)
    _restore_topological_order(graph)
    return gm


def _restore_topological_order(graph: Graph) -> None:
    """A call sits after its partition's last node, but a node outside the partition placed
    between the partition's nodes may read one of its outputs: move such nodes after the call
    (Kahn's algorithm, the earliest node first; nothing moves when the order is already valid)."""
    order = {n: i for i, n in enumerate(graph.nodes)}
    if all(order[arg] < order[n] for n in order for arg in n.all_input_nodes):
        return
    waiting = {n: len(n.all_input_nodes) for n in order}
    ready = [(i, n) for n, i in order.items() if waiting[n] == 0]
    heapq.heapify(ready)
    previous = None
    while ready:
        _, node = heapq.heappop(ready)
        if previous is not None:
            previous.append(node)
        previous = node
        for user in node.users:
            waiting[user] -= 1
            if waiting[user] == 0:
                heapq.heappush(ready, (order[user], user))
