"""Pad a weight table that linear layers read (an LM head, tied to an embedding or not) with zero
rows up to a multiple of ROW_MULTIPLE, so that TensorRT-RTX does not make a copy of it.

    tables = LinearTables(ctx, partition)      # what to pad, planned from the partition's graph
    env[node] = tables.after(node, env[node])  # each node's value, padded or sliced where planned

With a linear weight whose row count N (the output features) is not a multiple of 4, TensorRT-RTX
makes a second copy of it for the matrix product while it builds. Measured on GPT-2 small fp32
(50257 x 768 = 147 MB, batch 1..8, seq 2..128), peak above the baseline / engine:
- LM head tied to the token embedding: the copy stays in the engine next to the gather's table,
  636 MB, and making it is the compile's peak, 994 MB; padded, one table serves both: a 488 MB
  engine, and the peak is the writing stage's (699-700 MB with chunks written in place);
- untied LM head: a 636 MB engine either way, but the copy is a transient of the build: peak 994 MB,
  padded 890-904 MB (both through the binding's chunk copy).
The price on a GPU (not measured here, no GPU): the head computes N' - N more output columns, and
the slice back may copy the logits once.

In the network, for a table T of N rows (a weight, or a dtype cast of one the precision pass added):

    T  ->  P = T with N' - N zero rows appended (a FILL-mode slice of T's constant: TensorRT-RTX
           folds it while it builds; no padded copy is held on the host)
    embedding(T, ids)  reads P: its indices are below N, so it reads the same rows;
    linear(x, T, b)    reads P (and b padded with zeros), and its output is sliced back to N
                       columns on the last dim, whose size is static (dynamic dims unaffected).

Planned per partition, so every reader of a padded table is in the same engine (a lookup kept in
PyTorch never sees a padded table). Only when every reader of the table in the partition is such a
lookup or linear, at least one a linear (a table only looked up is stored once already), a linear's
bias has no other reader, and the table has at least MIN_TABLE_BYTES (a small table's copy costs
little). Not for weightless/refittable engines, whose constants carry their model weight's name
and shape.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any, Dict, List, Optional, Tuple

import tensorrt_rtx as trt
import torch
from torch.fx import GraphModule, Node

from torch_tensorrt_rtx.dynamo.conversion._context import ConversionContext, to_torch_dtype, weight_key
from torch_tensorrt_rtx.dynamo.conversion.converters._layers import dims, shape_math, slice_tensor

logger = logging.getLogger(__name__)
aten = torch.ops.aten

ROW_MULTIPLE = 4
MIN_TABLE_BYTES = 1 << 20  # 1 MiB


def _attr(module: GraphModule, target: str) -> Optional[torch.Tensor]:
    value: Any = module
    for part in target.split("."):
        value = getattr(value, part, None)
    return value if isinstance(value, torch.Tensor) else None


def _is_dtype_cast(node: Node) -> bool:
    """A `_to_copy` that only changes the dtype (what the precision pass adds before a consumer)."""
    return node.op == "call_function" and node.target == aten._to_copy.default and set(node.kwargs) <= {"dtype"}


def _bias(linear: Node) -> Optional[Node]:
    bias = linear.args[2] if len(linear.args) > 2 else linear.kwargs.get("bias")
    return bias if isinstance(bias, Node) else None


def _role(table: Node, user: Node) -> Optional[str]:
    """How `user` reads `table`: "lookup" (embedding's weight), "linear" (linear's weight), or None."""
    if user.op != "call_function":
        return None
    if user.target == aten.embedding.default and user.args[0] is table and table not in user.args[1:]:
        return "lookup"
    if (user.target == aten.linear.default and len(user.args) >= 2 and user.args[1] is table
            and table not in user.args[:1] + user.args[2:] and table not in user.kwargs.values()):
        bias = _bias(user)
        return "linear" if bias is None or len(bias.users) == 1 else None
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


def plan(module: GraphModule) -> Tuple[Dict[str, int], Dict[str, int]]:
    """({FX name of a node giving a table or a bias to pad: zero rows to append},
    {FX name of a linear reading a padded table: the output columns to keep})."""
    readers: Dict[tuple, List[Node]] = defaultdict(list)  # tied weights: one tensor under several names
    for node in module.graph.find_nodes(op="get_attr"):
        value = _attr(module, str(node.target))
        if value is not None and value.dim() == 2 and value.is_floating_point():
            readers[weight_key(value) + (tuple(value.shape), value.stride())].append(node)
    pads: Dict[str, int] = {}
    slices: Dict[str, int] = {}
    for nodes in readers.values():
        value = _attr(module, str(nodes[0].target))
        rows, width = value.shape
        if rows % ROW_MULTIPLE == 0 or value.numel() * value.element_size() < MIN_TABLE_BYTES:
            continue
        found = [_uses(node) for node in nodes]
        if any(uses is None for uses in found):
            continue
        uses = [use for node_uses in found for use in node_uses]
        linears = [reader for _, reader, role in uses if role == "linear"]
        if not linears:
            continue
        extra = -rows % ROW_MULTIPLE
        pads.update({table.name: extra for table, _, _ in uses})
        for linear in linears:
            slices[linear.name] = rows
            if _bias(linear) is not None:
                pads[_bias(linear).name] = extra
        logger.debug("padding the %d x %d table %s (%d lookups and linears) to %d rows",
                     rows, width, nodes[0].target, len(uses), rows + extra)
    return pads, slices


class LinearTables:
    """The planned padding of one partition's network (see the module docstring)."""

    def __init__(self, ctx: ConversionContext, module: GraphModule, enabled: bool = True) -> None:
        self.ctx = ctx
        self.pads, self.slices = plan(module) if enabled else ({}, {})
        self._padded: Dict[str, "trt.ITensor"] = {}  # a table's tensor name -> its padded tensor

    def after(self, node: Node, value: Any) -> Any:
        """`node`'s value in the network: padded or sliced back if planned, else `value`."""
        if node.name in self.pads:
            return self._pad_rows(node, value, self.pads[node.name])
        if node.name in self.slices:
            return self._keep_columns(value, self.slices[node.name])
        return value

    def _pad_rows(self, node: Node, value: Any, extra: int) -> "trt.ITensor":
        ctx = self.ctx
        tensor = value if isinstance(value, trt.ITensor) else ctx.constant(value)
        padded = self._padded.get(tensor.name)
        if padded is None:  # one padded table for every reader of the same weight
            size = dims(ctx, tensor)
            size[0] = shape_math(ctx, size[0], extra, trt.ElementWiseOperation.SUM)
            rank = len(tensor.shape)
            zero = ctx.constant(torch.zeros((), dtype=to_torch_dtype(tensor.dtype)))
            padded = slice_tensor(ctx, tensor, [0] * rank, size, [1] * rank, mode=trt.SampleMode.FILL, fill=zero)
            self._padded[tensor.name] = padded
        elif node.op == "call_function":  # the interpreter names a node's tensor after it: give it its own
            padded = ctx.name(ctx.network.add_identity(padded), "table").get_output(0)
        return padded

    def _keep_columns(self, tensor: "trt.ITensor", columns: int) -> "trt.ITensor":
        size = dims(self.ctx, tensor)
        size[-1] = columns
        rank = len(tensor.shape)
        return slice_tensor(self.ctx, tensor, [0] * rank, size, [1] * rank)
