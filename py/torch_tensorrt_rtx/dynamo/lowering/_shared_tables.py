"""Pad a weight table that embedding lookups and linear layers share (a tied LM head) with zero
rows up to a multiple of ROW_MULTIPLE, so that TensorRT-RTX stores it once.

    padded = pad_shared_tables(gm)   # how many tables were padded

GPT-2 ties its token embedding (50257 x 768) to its LM head. With a row count that is not a
multiple of 4, TensorRT-RTX keeps a second copy of the table for the matrix product (GPT-2 small
fp32: a 636 MB engine instead of 488 MB, and a ~230 MB transient while the copy is made, the peak
of the whole compile); with a multiple of 4 the gather and the matrix product read one copy.

The rewrite, for a table T of N rows (directly, or through a dtype cast the precision pass added):

    embedding(T, ids)   ->  embedding(P, ids)                      P = constant_pad_nd(T, 0 rows
    linear(x, T)        ->  slice(linear(x, P), -1, 0, N)              above, N' - N below)

The lookup's indices are below N, so it reads the same rows; the linear's extra output columns are
zeros, cut off on the last dim, whose size N is static (dynamic batch/sequence dims are unaffected).
P is one node for all of T's uses: the interpreter folds it on the host into one constant.

Only when every use of the table is such a lookup or linear, at least one of each (a linear alone
keeps its own single copy: padding measured no smaller engine), and the table has at least
MIN_TABLE_BYTES (small tables are left as they are: the copy would cost little). Not for refittable
or weightless engines, whose constants carry their model weight's name and shape.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from typing import Dict, List, Optional, Tuple

import torch
from torch.fx import GraphModule, Node

logger = logging.getLogger(__name__)
aten = torch.ops.aten

ROW_MULTIPLE = 4
MIN_TABLE_BYTES = 1 << 20  # 1 MiB


def _attr(gm: GraphModule, target: str) -> Optional[torch.Tensor]:
    value = gm
    for part in target.split("."):
        value = getattr(value, part, None)
    return value if isinstance(value, torch.Tensor) else None


def _is_dtype_cast(node: Node) -> bool:
    """A `_to_copy` that only changes the dtype (what the precision pass adds before a consumer)."""
    return node.op == "call_function" and node.target == aten._to_copy.default and set(node.kwargs) <= {"dtype"}


def _role(table: Node, user: Node) -> Optional[str]:
    """How `user` reads `table`: "lookup" (embedding's weight), "linear" (linear's weight), or None."""
    if user.op != "call_function":
        return None
    if user.target == aten.embedding.default and user.args[0] is table and table not in user.args[1:]:
        return "lookup"
    if user.target == aten.linear.default and len(user.args) >= 2 and user.args[1] is table and user.args[0] is not table:
        return "linear"
    return None


def _uses(node: Node) -> Optional[List[Tuple[Node, Node, str]]]:
    """(table node, user, role) for every consumer of the weight read by get_attr `node`, seen
    through dtype casts; None when some consumer is neither a lookup nor a linear."""
    uses = []
    for user in node.users:
        readers = [(user, u) for u in user.users] if _is_dtype_cast(user) else [(node, user)]
        if _is_dtype_cast(user) and not user.users:
            continue
        for table, reader in readers:
            role = _role(table, reader)
            if role is None:
                return None
            uses.append((table, reader, role))
    return uses


def _grown_val(val: torch.Tensor, extra: int, dim: int) -> torch.Tensor:
    """`val` (FX metadata) with `extra` more entries on `dim`. `new_empty` keeps symbolic sizes as
    they are: running the pad op itself on a fake tensor would add guards on them."""
    shape = list(val.shape)
    shape[dim] = shape[dim] + extra
    return val.new_empty(shape)


def _pad_table(gm: GraphModule, uses: List[Tuple[Node, Node, str]], rows: int, extra: int,
               order: Dict[Node, int]) -> None:
    graph = gm.graph
    # One padded node per table dtype (the uncast weight, or each cast of it).
    by_dtype: Dict[torch.dtype, List[Tuple[Node, Node, str]]] = defaultdict(list)
    for use in uses:
        by_dtype[use[0].meta["val"].dtype].append(use)
    for group in by_dtype.values():
        first_table, first_user, _ = min(group, key=lambda use: order[use[1]])
        with graph.inserting_before(first_user):
            padded = graph.call_function(aten.constant_pad_nd.default, (first_table, [0, 0, 0, extra], 0.0))
        padded.meta = dict(first_table.meta)
        padded.meta["val"] = _grown_val(first_table.meta["val"], extra, 0)
        for table, user, role in group:
            user.replace_input_with(table, padded)
            if role == "linear":
                _slice_output(graph, user, rows, extra)


def _slice_output(graph, linear: Node, rows: int, extra: int) -> None:
    """`linear` now computes `extra` more (zero) columns: its users read the first `rows` of them."""
    val = linear.meta["val"]
    last = val.dim() - 1
    with graph.inserting_after(linear):
        sliced = graph.call_function(aten.slice.Tensor, (linear, last, 0, rows))
    linear.replace_all_uses_with(sliced, delete_user_cb=lambda user: user is not sliced)
    sliced.meta = dict(linear.meta)
    linear.meta["val"] = _grown_val(val, extra, last)


def pad_shared_tables(gm: GraphModule) -> int:
    """Pad the tables described in the module docstring; returns how many."""
    order = {node: i for i, node in enumerate(gm.graph.nodes)}
    readers: Dict[tuple, List[Node]] = defaultdict(list)  # tied weights: one tensor under several names
    for node in gm.graph.find_nodes(op="get_attr"):
        value = _attr(gm, str(node.target))
        if value is not None and value.dim() == 2 and value.is_floating_point():
            key = (value.untyped_storage().data_ptr(), value.storage_offset(), tuple(value.shape), value.stride(),
                   value.dtype, value.device)
            readers[key].append(node)
    padded = 0
    for (_, _, shape, _, dtype, _), nodes in readers.items():
        rows, width = shape
        table_bytes = rows * width * dtype.itemsize
        if rows % ROW_MULTIPLE == 0 or table_bytes < MIN_TABLE_BYTES:
            continue
        uses = [_uses(node) for node in nodes]
        if any(u is None for u in uses):
            continue
        uses = [use for node_uses in uses for use in node_uses]
        roles = {role for _, _, role in uses}
        if roles != {"lookup", "linear"}:
            continue
        extra = -rows % ROW_MULTIPLE
        _pad_table(gm, uses, rows, extra, order)
        logger.debug("padded the %d x %d table %s shared by %d lookups and linears to %d rows",
                     rows, width, nodes[0].target, len(uses), rows + extra)
        padded += 1
    return padded
