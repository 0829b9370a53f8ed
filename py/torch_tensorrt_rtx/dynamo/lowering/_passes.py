"""Graph passes run on the exported ATen graph before partitioning.

- give kernels that need a contiguous input (native_group_norm) one;
- drop runtime metadata assertions (`_assert_tensor_metadata`) and the export guard module:
  they would otherwise pin tensors as partition outputs, and engines check shapes themselves;
- with a reduced precision, cast matmuls/convolutions and the ops between them (_precision.py);
- give every get_attr / sym_size node a single user, so each can join its user's partition
  (weights become engine constants instead of engine inputs; sizes become shape layers).
"""
from __future__ import annotations

import logging
from typing import Callable, Optional

import torch
from torch.fx import GraphModule, Node

from torch_tensorrt_rtx.dynamo.lowering._precision import reduce_precision_in_graph

logger = logging.getLogger(__name__)
aten = torch.ops.aten

_DROPPABLE = {aten._assert_tensor_metadata.default}


def _drop_assertions(gm: GraphModule) -> None:
    for node in list(gm.graph.nodes):
        if node.op == "call_function" and node.target in _DROPPABLE and not node.users:
            gm.graph.erase_node(node)
        elif node.op == "call_module" and node.target == "_guards_fn" and not node.users:
            gm.graph.erase_node(node)
            delattr(gm, "_guards_fn")


# ATen kernels that reject inputs whose strides are not contiguous (the CompositeImplicit op
# above them, e.g. F.group_norm, made the input contiguous first; the decomposition does not).
_NEEDS_CONTIGUOUS = {aten.native_group_norm.default}


def _contiguous_inputs(gm: GraphModule) -> None:
    """Give those kernels a contiguous input: a clone (identity in an engine) where the traced
    input is strided, e.g. a transposed attention output reshaped back to an image. Without it
    the graph cannot run eagerly (PyTorch fallback, and `verify` running a partition)."""
    for node in list(gm.graph.nodes):
        if node.op != "call_function" or node.target not in _NEEDS_CONTIGUOUS:
            continue
        source = node.args[0]
        val = source.meta.get("val") if isinstance(source, torch.fx.Node) else None
        if not isinstance(val, torch.Tensor) or val.is_contiguous():
            continue
        with gm.graph.inserting_before(node):
            copy = gm.graph.call_function(aten.clone.default, (source,), {"memory_format": torch.contiguous_format})
        copy.meta = dict(source.meta)
        copy.meta["val"] = val.clone(memory_format=torch.contiguous_format)
        node.replace_input_with(source, copy)


def _one_user_each(gm: GraphModule) -> None:
    for node in list(gm.graph.nodes):
        is_size = node.op == "call_function" and node.target == aten.sym_size.int
        if not (node.op == "get_attr" or is_size) or len(node.users) <= 1:
            continue
        for user in list(node.users)[1:]:
            with gm.graph.inserting_before(user):
                if is_size:
                    copy = gm.graph.call_function(node.target, node.args, node.kwargs)
                else:
                    copy = gm.graph.get_attr(node.target)
            copy.meta = dict(node.meta)
            user.replace_input_with(node, copy)


def lower(gm: GraphModule, reduced_precision: Optional[torch.dtype] = None, fp32_accumulation: bool = False,
          keep_fp32: Optional[Callable[[Node], bool]] = None, recompile: bool = True) -> GraphModule:
    """`recompile=False` leaves gm's Python code stale, for a caller that only reads the graph
    and recompiles it later (compile_graph: partitioning reads the graph, packaging recompiles)."""
    _drop_assertions(gm)
    _contiguous_inputs(gm)
    if reduced_precision is not None:
        reduce_precision_in_graph(gm.graph, reduced_precision, fp32_accumulation, keep_fp32)
    _one_user_each(gm)
    gm.graph.eliminate_dead_code()  # lints the graph first (torch's eliminate_dead_code); removing nodes keeps it valid
    if recompile:
        gm.recompile()
    return gm
