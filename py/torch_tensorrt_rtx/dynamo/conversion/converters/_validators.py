"""Small predicates shared by converter validators. All look only at FX metadata."""
from __future__ import annotations

from typing import Any, Iterable

import torch
from torch.fx import Node

from torch_tensorrt_rtx.dynamo.conversion._context import FLOAT_DTYPES, SUPPORTED_DTYPES


def _tensor_vals(node: Node) -> Iterable[torch.Tensor]:
    for arg in node.all_input_nodes:
        val = arg.meta.get("val")
        if isinstance(val, torch.Tensor):
            yield val
    val = node.meta.get("val")
    if isinstance(val, torch.Tensor):
        yield val
    elif isinstance(val, (tuple, list)):
        yield from (v for v in val if isinstance(v, torch.Tensor))


def dtypes_in(node: Node, allowed: Iterable[torch.dtype]) -> bool:
    """Every tensor the node reads or writes has a dtype in `allowed`."""
    allowed = tuple(allowed)
    return all(v.dtype in allowed for v in _tensor_vals(node))


def float_tensors(node: Node) -> bool:
    return dtypes_in(node, FLOAT_DTYPES)


def numeric_tensors(node: Node) -> bool:
    return dtypes_in(node, SUPPORTED_DTYPES)


def output_is_float(node: Node) -> bool:
    val = node.meta.get("val")
    return isinstance(val, torch.Tensor) and val.dtype in FLOAT_DTYPES


def static_dims(node: Any, dims: Iterable[int]) -> bool:
    val = node.meta.get("val") if isinstance(node, Node) else None
    if not isinstance(val, torch.Tensor):
        return False
    return all(isinstance(val.shape[d], int) for d in dims)


def all_of(*predicates):
    """Every predicate accepts; otherwise the first refusal (a `Refusal` keeps its reason)."""
    def check(node: Node):
        for predicate in predicates:
            verdict = predicate(node)
            if not verdict:
                return verdict
        return True

    return check
