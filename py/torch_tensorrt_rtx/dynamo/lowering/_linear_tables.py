"""Pad a weight table that linear layers read (an LM head, tied to an embedding or not) with zero
rows up to a multiple of ROW_MULTIPLE, so that TensorRT-RTX does not make a copy of it.

    padded = pad_linear_tables(gm)   # how many tables were padded

With a linear weight whose row count N (the output features) is not a multiple of 4, TensorRT-RTX
makes a second copy of it for the matrix product while it builds. Measured on GPT-2 small fp32
(50257 x 768 = 147 MB, batch 1..8, seq 2..128), peak above the baseline / engine:
- LM head tied to the token embedding: the copy stays in the engine next to the gather's table,
  636 MB, and the compile peaks at 994 MB; padded, one table serves both: 488 MB, peak 743-758 MB;
- untied LM head: a 636 MB engine either way, but the copy is a transient of the build: peak 994 MB,
  padded 890-904 MB.

The rewrite, for a table T of N rows (directly, or through a dtype cast the precision pass added):

    embedding(T, ids)   ->  embedding(P, ids)                      P = constant_pad_nd(T, N' - N
    linear(x, T)        ->  slice(linear(x, P), -1, 0, N)              zero rows below)

The lookup's indices are below N, so it reads the same rows; the linear's extra output columns are
zeros, cut off on the last dim, whose size N is static (dynamic batch/sequence dims are unaffected).
P is one node for all of T's uses of one dtype. It is larger than T, so the interpreter does not fold
it on the host (no padded host copy): it becomes a padding layer on T's constant, which TensorRT-RTX
folds while it builds.

Only when every use of the table is such a lookup or linear, at least one a linear (a table only
looked up is stored once already), and the table has at least MIN_TABLE_BYTES (a small table's copy
costs little). Not for refittable or weightless engines, whose constants carry their model weight's
name and shape.
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
    if (user.target == aten.linear.default and len(user.args) >= 2 and user.args[1] is table
            and table not in user.args[:1] + user.args[2:] and table not in user.kwargs.values()):
        return "linear"
    return None


Use = Tuple[Node, Node, str]  # (the node giving the table: the get_attr or a cast of it, its reader, role)


def _uses(node: Node) -> Optional[List[Use]]:
    """Every reader of the weight get_attr `node` gives, seen through dtype casts; None when one of
    them is neither a lookup nor a linear."""
    uses = []
    for user in node.users:
        pairs = [(user, reader) for reader in user.users] if _is_dtype_cast(user) else [(node, user)]
        for table, reader in pairs:
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


def _pad_rows(graph, user: Node, source: Node, extra: int) -> Node:
    """`source` with `extra` zero rows (dim 0) appended, a node inserted before `user`."""
    val = source.meta["val"]
    with graph.inserting_before(user):
        padded = graph.call_function(aten.constant_pad_nd.default, (source, [0, 0] * (val.dim() - 1) + [0, extra], 0.0))
    padded.meta = dict(source.meta)
    padded.meta["val"] = _grown_val(val, extra, 0)
    return padded


def _pad_table(graph, uses: List[Use], rows: int, extra: int, order: Dict[Node, int]) -> None:
    # One padded node per dtype the table is read in (the weight's own, or each cast of it).
    by_dtype: Dict[torch.dtype, List[Use]] = defaultdict(list)
    for use in uses:
        by_dtype[use[0].meta["val"].dtype].append(use)
    for group in by_dtype.values():
        first_table, first_reader, _ = min(group, key=lambda use: order[use[1]])
        padded = _pad_rows(graph, first_reader, first_table, extra)
        for table, reader, role in group:
            reader.replace_input_with(table, padded)
            if role == "linear":
                _pad_bias(graph, reader, extra)
                _slice_output(graph, reader, rows, extra)


def _pad_bias(graph, linear: Node, extra: int) -> None:
    """A bias of `linear` (N entries) gets `extra` zeros, to match the padded weight's N' rows."""
    bias = linear.args[2] if len(linear.args) > 2 else linear.kwargs.get("bias")
    if isinstance(bias, Node):
        linear.replace_input_with(bias, _pad_rows(graph, linear, bias, extra))


def _slice_output(graph, linear: Node, rows: int, extra: int) -> None:
    """`linear` now computes `extra` more (zero) columns: its users read the first `rows` of them."""
    val = linear.meta["val"]
    last = val.dim() - 1
    with graph.inserting_after(linear):
        sliced = graph.call_function(aten.slice.Tensor, (linear, last, 0, rows))
    linear.replace_all_uses_with(sliced, delete_user_cb=lambda user: user is not sliced)
    sliced.meta = dict(linear.meta)
    linear.meta["val"] = _grown_val(val, extra, last)


def pad_linear_tables(gm: GraphModule) -> int:
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
        if rows % ROW_MULTIPLE == 0 or rows * width * dtype.itemsize < MIN_TABLE_BYTES:
            continue
        found = [_uses(node) for node in nodes]
        if any(uses is None for uses in found):
            continue
        uses = [use for node_uses in found for use in node_uses]
        if not any(role == "linear" for _, _, role in uses):
            continue
        extra = -rows % ROW_MULTIPLE
        _pad_table(gm.graph, uses, rows, extra, order)
        logger.debug("padded the %d x %d table %s (%d lookups and linears) to %d rows",
                     rows, width, nodes[0].target, len(uses), rows + extra)
        padded += 1
    return padded
