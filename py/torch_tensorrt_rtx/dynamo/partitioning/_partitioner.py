"""Split a lowered ATen graph into TensorRT-RTX partitions and PyTorch fallback, in time linear in
the graph's size.

    result = partition(gm, settings, excluded={"linear_3": "converter failed: ..."})
    result.submodules        # {"_run_on_trt_<i>": GraphModule} in graph order; gm is not changed yet
    result.fallback_ops      # {"aten.foo.default": count} left to PyTorch, and why
    result.fuse()            # gm with each partition replaced by a call of its submodule

A node goes to TensorRT when a registered converter's validator accepts it and it is not in
`settings.torch_executed_ops` or named in `excluded` (nodes whose conversion or engine build
failed: the pipeline re-partitions around them, so one bad node never sends its neighbours to
PyTorch). Only ATen/custom ops (OpOverloads) are counted as fallback: size arithmetic
(`operator.mul` on SymInts), `getitem` and range checks are bookkeeping, not ops a user could act on.
TensorRT nodes are grouped by stage (`_stages`): connected TensorRT nodes of one stage form a
partition, and no path leaves a partition and comes back into it, so fusing never makes a cycle.
Partition boundaries must carry tensors only: a node that would receive or produce a non-tensor
value across the boundary is moved back to PyTorch (and the stages are computed again). Partitions
with fewer than `min_block_size` compute nodes are dropped (their nodes run in PyTorch).
"""
from __future__ import annotations

import collections
import dataclasses
import itertools
import logging
import operator
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Set

import torch
from torch.fx import GraphModule, Node

from torch_tensorrt_rtx.dynamo._settings import CompilationSettings
from torch_tensorrt_rtx.dynamo.conversion._registry import lookup, op_name, refusal_reason
from torch_tensorrt_rtx.dynamo.lowering._double import BOUNDARY_CAST, DOUBLE_REASON, touches_double
from torch_tensorrt_rtx.dynamo.partitioning._fuser import extract, fuse

logger = logging.getLogger(__name__)

PREFIX = "_run_on_trt_"
# Bookkeeping: tuple access, size reads, and the range checks export inserts for unbacked sizes
# (they run in PyTorch on SymInts, beside the engines, and are not fallback a user could act on).
_NON_COMPUTE = {operator.getitem, torch.ops.aten.sym_size.int, torch.ops.aten._assert_scalar.default,
                torch.ops.aten.sym_constrain_range_for_size.default}


@dataclasses.dataclass
class PartitionResult:
    module: GraphModule                # the partitioned graph; its partitions are fused by `fuse()`
    submodules: Dict[str, GraphModule]  # "_run_on_trt_<i>" -> the partition cut out, in graph order
    fallback_ops: Dict[str, int]
    fallback_reasons: Dict[str, str]   # op name -> its nodes' distinct reasons, with counts when they differ
    node_reasons: Dict[str, str] = dataclasses.field(default_factory=dict)  # FX node name -> one-line reason
    partition_nodes: List[List[Node]] = dataclasses.field(default_factory=list)  # each partition, graph order
    fused: bool = False

    @property
    def trt_submodules(self) -> List[str]:
        return list(self.submodules)

    def fuse(self) -> GraphModule:
        """Replace each partition of `module` by a call of its submodule (once); returns `module`."""
        if not self.fused:
            fuse(self.module, list(zip(self.submodules, self.partition_nodes, self.submodules.values())))
            self.fused = True
        return self.module


class _Support:
    def __init__(self, settings: CompilationSettings, excluded: Mapping[str, str]) -> None:
        self.settings = settings
        self.excluded = excluded
        self.reasons: Dict[Node, str] = {}  # why each unsupported node stays in PyTorch (first reason wins)

    def supports(self, node: Node) -> bool:
        if node.op != "call_function":
            return False
        name = op_name(node)
        if node.name in self.excluded:
            self.reasons.setdefault(node, self.excluded[node.name])
            return False
        if name in self.settings.torch_executed_ops:
            self.reasons.setdefault(node, "listed in torch_executed_ops")
            return False
        if node.target is operator.getitem:
            source = node.args[0]
            return isinstance(source, Node) and lookup(source) is not None
        if touches_double(node):
            self.reasons.setdefault(node, DOUBLE_REASON)
            return False
        if not _tensor_or_shape_output(node):
            self.reasons.setdefault(node, "produces a non-tensor value")
            return False
        if lookup(node) is None:
            self.reasons.setdefault(node, refusal_reason(node))
            return False
        return True


def _tensor_or_shape_output(node: Node) -> bool:
    val = node.meta.get("val")
    if node.target == torch.ops.aten.sym_size.int:
        return True
    if isinstance(val, torch.SymInt):
        return True  # size arithmetic (e.g. bsz * num_heads): a shape tensor inside the engine
    if isinstance(val, torch.Tensor):
        return True
    return isinstance(val, (tuple, list)) and any(isinstance(v, torch.Tensor) for v in val)


def _is_tensor(node: Node) -> bool:
    return isinstance(node.meta.get("val"), torch.Tensor)


def _compute_size(nodes: Iterable[Node]) -> int:
    return sum(1 for n in nodes if n.op == "call_function" and n.target not in _NON_COMPUTE)


def _stages(graph_nodes: Sequence[Node], supported: Set[Node]) -> Dict[Node, int]:
    """A stage for every node, never lower than its inputs' and one higher than a TensorRT node's
    when the node itself stays in PyTorch: a path that leaves TensorRT and comes back always ends
    in a later stage, so the TensorRT nodes of one stage can be fused without creating a cycle.
    Stages are first as early as the inputs allow; then a TensorRT node that joins none of its
    inputs' partitions moves as late as its users allow when that joins one of theirs (a
    `sym_size` of a graph input placed with its readers rather than alone)."""
    stage: Dict[Node, int] = {}
    for node in graph_nodes:
        bump = node not in supported
        stage[node] = max((stage[i] + (1 if bump and i in supported else 0) for i in node.all_input_nodes), default=0)
    for node in reversed(graph_nodes):
        if node not in supported or any(i in supported and stage[i] == stage[node] for i in node.all_input_nodes):
            continue
        latest = min((stage[u] - (0 if u in supported else 1) for u in node.users), default=stage[node])
        if latest > stage[node] and any(u in supported and stage[u] == latest for u in node.users):
            stage[node] = latest
    return stage


def _pieces(graph_nodes: Sequence[Node], supported: Set[Node], stage: Mapping[Node, int]) -> Dict[Node, int]:
    """Number the connected groups of TensorRT nodes that share a stage, in graph order of their first node."""
    piece_of: Dict[Node, int] = {}
    count = 0
    for node in graph_nodes:
        if node not in supported or node in piece_of:
            continue
        piece_of[node] = count
        stack = [node]
        while stack:
            current = stack.pop()
            for other in itertools.chain(current.all_input_nodes, current.users):
                if other in supported and other not in piece_of and stage[other] == stage[current]:
                    piece_of[other] = count
                    stack.append(other)
        count += 1
    return piece_of


def _boundary_violations(supported: Set[Node], piece_of: Mapping[Node, int]) -> Set[Node]:
    """TensorRT nodes that would receive or produce a non-tensor across their partition's boundary."""
    bad = set()
    for node in supported:
        piece = piece_of[node]
        for arg in node.all_input_nodes:
            if piece_of.get(arg) != piece and arg.op != "get_attr" and not _is_tensor(arg):
                bad.add(node)
        if not _is_tensor(node) and any(piece_of.get(user) != piece for user in node.users):
            bad.add(node)
    return bad


_UNPLACED = "accepted by a converter but placed in no TensorRT partition (partitioner)"


def _reasons_by_op(node_reasons: Mapping[str, str], ops: Mapping[str, str]) -> Dict[str, str]:
    """One line per op: its nodes' reasons, most common first, each with a count when they differ."""
    per_op: Dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for name, reason in node_reasons.items():
        per_op[ops[name]][reason] += 1
    out = {}
    for op, counter in per_op.items():
        if len(counter) == 1:
            out[op] = next(iter(counter))
        else:
            out[op] = "; ".join(f"{n}x {reason}" for reason, n in counter.most_common())
    return out


def is_reported_op(node: Node) -> bool:
    """An op worth naming in a fallback list: an ATen or custom op, not getitem or SymInt math."""
    return node.op == "call_function" and isinstance(node.target, torch._ops.OpOverload) \
        and node.target not in _NON_COMPUTE and not node.meta.get(BOUNDARY_CAST)


def _in_graph_order(graph_nodes: Sequence[Node], group_of: Mapping[Node, int]) -> List[List[Node]]:
    """The groups' nodes in graph order, the groups ordered by their first node."""
    groups: Dict[int, List[Node]] = {}
    for node in graph_nodes:
        if node in group_of:
            groups.setdefault(group_of[node], []).append(node)
    return list(groups.values())


def _propose(graph_nodes: Sequence[Node], settings: CompilationSettings, support: _Support) -> List[List[Node]]:
    """The partitions, each in graph order, ordered by their first node (weights included)."""
    supported = {n for n in graph_nodes if support.supports(n)}
    while True:  # each round moves at least one node to PyTorch; usually one or two rounds
        piece_of = _pieces(graph_nodes, supported, _stages(graph_nodes, supported))
        bad = _boundary_violations(supported, piece_of)
        if not bad:
            break
        for node in bad:
            support.reasons.setdefault(node, "its value would cross a TensorRT boundary as a non-tensor")
        supported -= bad
    kept: Dict[Node, int] = {}
    for nodes in _in_graph_order(graph_nodes, piece_of):
        if _compute_size(nodes) < settings.min_block_size:
            for node in nodes:
                support.reasons.setdefault(node, f"in a block smaller than min_block_size={settings.min_block_size}")
            continue
        kept.update(dict.fromkeys(nodes, piece_of[nodes[0]]))
    # Weights (each get_attr has one user after lowering) join their user's partition.
    for node in list(kept):
        for arg in node.all_input_nodes:
            if arg.op == "get_attr" and len(arg.users) == 1:
                kept[arg] = kept[node]
    return _in_graph_order(graph_nodes, kept)


def partition(gm: GraphModule, settings: CompilationSettings,
              excluded: Optional[Mapping[str, str]] = None) -> PartitionResult:
    """Propose the partitions of `gm` and cut each out as a submodule; `gm` changes only when the
    result's `fuse()` is called."""
    support = _Support(settings, excluded or {})
    graph_nodes = list(gm.graph.nodes)
    partitions = _propose(graph_nodes, settings, support)
    in_trt = set(itertools.chain.from_iterable(partitions))
    left = [n for n in graph_nodes if n not in in_trt and is_reported_op(n)]
    fallback = collections.Counter(op_name(n) for n in left)
    node_reasons = {n.name: support.reasons.get(n, _UNPLACED) for n in left}
    reasons = _reasons_by_op(node_reasons, {n.name: op_name(n) for n in left})
    submodules = {f"{PREFIX}{i}": extract(gm, nodes, f"{PREFIX}{i}") for i, nodes in enumerate(partitions)}
    for name, count in sorted(fallback.items()):
        logger.debug("PyTorch fallback: %s x%d (%s)", name, count, reasons[name])
    return PartitionResult(gm, submodules, dict(fallback), reasons, node_reasons, partitions)
