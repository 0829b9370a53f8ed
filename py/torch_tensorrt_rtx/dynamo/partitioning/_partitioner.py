"""Split a lowered ATen graph into TensorRT-RTX partitions and PyTorch fallback.

    result = partition(gm, settings, excluded={"linear_3": "converter failed: ..."})
    result.module            # gm with each partition fused into a submodule "_run_on_trt_<i>"
    result.trt_submodules    # names of those submodules, in graph order
    result.fallback_ops      # {"aten.foo.default": count} left to PyTorch, and why

A node goes to TensorRT when a registered converter's validator accepts it and it is not in
`settings.torch_executed_ops` or named in `excluded` (nodes whose conversion or engine build
failed: the pipeline re-partitions around them, so one bad node never sends its neighbours to
PyTorch). Only ATen/custom ops (OpOverloads) are counted as fallback: size arithmetic
(`operator.mul` on SymInts), `getitem` and range checks are bookkeeping, not ops a user could act on. Partition boundaries must carry tensors only: a node that would
receive or produce a non-tensor value across the boundary is moved back to PyTorch. Partitions
with fewer than `min_block_size` compute nodes are dropped (their nodes run in PyTorch).
"""
from __future__ import annotations

import collections
import dataclasses
import logging
import operator
from typing import Dict, List, Mapping, Optional, Set

import torch
from torch.fx import GraphModule, Node
from torch.fx.passes.infra.partitioner import CapabilityBasedPartitioner
from torch.fx.passes.operator_support import OperatorSupportBase
from torch.fx.passes.utils.fuser_utils import fuse_by_partitions, validate_partition

from torch_tensorrt_rtx.dynamo._settings import CompilationSettings
from torch_tensorrt_rtx.dynamo.conversion._registry import lookup, op_name, refusal_reason
from torch_tensorrt_rtx.dynamo.lowering._double import BOUNDARY_CAST, DOUBLE_REASON, touches_double

logger = logging.getLogger(__name__)

PREFIX = "_run_on_trt_"
# Bookkeeping: tuple access, size reads, and the range checks export inserts for unbacked sizes
# (they run in PyTorch on SymInts, beside the engines, and are not fallback a user could act on).
_NON_COMPUTE = {operator.getitem, torch.ops.aten.sym_size.int, torch.ops.aten._assert_scalar.default,
                torch.ops.aten.sym_constrain_range_for_size.default}


@dataclasses.dataclass
class PartitionResult:
    module: GraphModule
    trt_submodules: List[str]
    fallback_ops: Dict[str, int]
    fallback_reasons: Dict[str, str]   # op name -> its nodes' distinct reasons, with counts when they differ
    node_reasons: Dict[str, str] = dataclasses.field(default_factory=dict)  # FX node name -> one-line reason
    partition_nodes: List[List[str]] = dataclasses.field(default_factory=list)  # node names of each partition


class _Support(OperatorSupportBase):
    def __init__(self, settings: CompilationSettings, excluded: Mapping[str, str]) -> None:
        self.settings = settings
        self.excluded = excluded
        self.reasons: Dict[Node, str] = {}  # why each unsupported node stays in PyTorch (first reason wins)

    def is_node_supported(self, submodules, node: Node) -> bool:
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


def _boundary_violations(nodes: Set[Node]) -> Set[Node]:
    """Nodes of a partition that receive or produce a non-tensor across its boundary."""
    bad = set()
    for node in nodes:
        for arg in node.all_input_nodes:
            if arg not in nodes and arg.op != "get_attr" and not _is_tensor(arg):
                bad.add(node)
        if any(user not in nodes for user in node.users) and not _is_tensor(node):
            bad.add(node)
    return bad


def _compute_size(nodes: Set[Node]) -> int:
    return sum(1 for n in nodes if n.op == "call_function" and n.target not in _NON_COMPUTE)


def _levels(nodes: Set[Node], graph_nodes) -> Dict[Node, int]:
    """For each node of a partition, how many times a path from the partition's inputs to it
    must leave the partition and come back. Nodes of one level never reach each other through
    the outside (the count only grows along a path, and grows on every exit), so each level
    can be fused without creating a cycle, and no node has to be given up."""
    level: Dict[Node, int] = {}
    outside: Dict[Node, int] = {}  # outside node -> lowest level a partition node after it may have
    for node in graph_nodes:
        if node in nodes:
            level[node] = max([level[i] if i in nodes else outside.get(i, 0) for i in node.all_input_nodes],
                              default=0)
        else:
            outside[node] = max([level[i] + 1 if i in nodes else outside.get(i, 0) for i in node.all_input_nodes],
                                default=0)
    return level


def _connected(nodes: Set[Node]) -> List[Set[Node]]:
    remaining, pieces = set(nodes), []
    while remaining:
        stack, piece = [remaining.pop()], set()
        while stack:
            node = stack.pop()
            piece.add(node)
            for other in list(node.all_input_nodes) + list(node.users):
                if other in remaining:
                    remaining.discard(other)
                    stack.append(other)
        pieces.append(piece)
    return pieces


def _acyclic_components(nodes: Set[Node], graph_nodes) -> List[Set[Node]]:
    """Split a shrunken partition into connected pieces that can each be fused. A piece whose
    fusion would form a cycle (a path leaves it through a node moved back to PyTorch and
    re-enters it) is split by level (`_levels`) instead of being dropped."""
    pieces = []
    for piece in _connected(nodes):
        if validate_partition(list(piece)):
            pieces.append(piece)
            continue
        level = _levels(piece, graph_nodes)
        by_level: Dict[int, Set[Node]] = collections.defaultdict(set)
        for node in piece:
            by_level[level[node]].add(node)
        logger.debug("splitting a TensorRT partition in %d to avoid a cycle through PyTorch", len(by_level))
        for group in by_level.values():
            pieces.extend(_connected(group))
    return pieces


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


class _Partitioner(CapabilityBasedPartitioner):
    """torch's partitioner, minus the ``dict(graph_module.named_modules())`` it builds for every node
    it asks about: that made partitioning quadratic in graph size (0.57 s of 1.30 s at 32 encoder
    layers), and `_Support` never reads submodules."""

    def _is_node_supported(self, node: Node) -> bool:
        return self.operator_support.is_node_supported({}, node)


def _propose(gm: GraphModule, settings: CompilationSettings, support: _Support) -> List[Set[Node]]:
    partitioner = _Partitioner(gm, support, allows_single_node_partition=True, skip_horizontal_fusion=True)
    kept: List[Set[Node]] = []
    for proposal in partitioner.propose_partitions():
        nodes = set(proposal.nodes)
        # Shrink until the boundary carries tensors only (removing a node can expose another).
        while True:
            bad = _boundary_violations(nodes)
            if not bad:
                break
            for node in bad:
                support.reasons.setdefault(node, "its value would cross a TensorRT boundary as a non-tensor")
            nodes -= bad
        for piece in _acyclic_components(nodes, gm.graph.nodes):
            if _compute_size(piece) < settings.min_block_size:
                for node in piece:
                    support.reasons.setdefault(
                        node, f"in a block smaller than min_block_size={settings.min_block_size}")
                continue
            # Weights (each get_attr has one user after lowering) join their user's partition.
            for node in list(piece):
                for arg in node.all_input_nodes:
                    if arg.op == "get_attr" and len(arg.users) == 1:
                        piece.add(arg)
            kept.append(piece)
    return kept


def partition(gm: GraphModule, settings: CompilationSettings,
              excluded: Optional[Mapping[str, str]] = None, *,
              same_as: Optional[PartitionResult] = None) -> PartitionResult:
    """Partition `gm` and fuse each partition into a submodule. With `same_as`, the result of
    partitioning a copy of this graph (same node names) with the same settings and `excluded`,
    its partitions are fused again here without being proposed again."""
    support = _Support(settings, excluded or {})
    if same_as is None:
        kept = _propose(gm, settings, support)
    else:
        by_name = {n.name: n for n in gm.graph.nodes}
        kept = [{by_name[name] for name in names} for names in same_as.partition_nodes]
        support.reasons.update({by_name[name]: reason for name, reason in same_as.node_reasons.items()})
    in_trt = set().union(*kept) if kept else set()
    fallback = collections.Counter(op_name(n) for n in gm.graph.nodes if n not in in_trt and is_reported_op(n))
    node_reasons = {n.name: support.reasons.get(n, _UNPLACED) for n in gm.graph.nodes
                    if n not in in_trt and is_reported_op(n)}
    reasons = _reasons_by_op({n: r for n, r in node_reasons.items()}, {n.name: op_name(n) for n in gm.graph.nodes})
    partition_nodes = []
    if kept:
        order = {n: i for i, n in enumerate(gm.graph.nodes)}
        kept.sort(key=lambda ns: min(order[n] for n in ns))
        partition_nodes = [[n.name for n in sorted(ns, key=order.get)] for ns in kept]
        gm = fuse_by_partitions(gm, [dict.fromkeys(sorted(ns, key=order.get)) for ns in kept],
                                prefix=PREFIX, always_return_tuple=True)
    submodules = [n.target for n in gm.graph.nodes if n.op == "call_module" and n.target.startswith(PREFIX)]
    for name, count in sorted(fallback.items()):
        logger.debug("PyTorch fallback: %s x%d (%s)", name, count, reasons[name])
    return PartitionResult(gm, submodules, dict(fallback), reasons, node_reasons, partition_nodes)
