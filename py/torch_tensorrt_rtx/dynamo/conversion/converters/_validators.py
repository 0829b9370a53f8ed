"""Small predicates shared by converter validators. All look only at FX metadata."""
from __future__ import annotations

from typing import Iterable

import torch
from torch.fx import Node

from torch_tensorrt_rtx.dynamo.conversion._context import FLOAT_DTYPES, SUPPORTED_DTYPES
from torch_tensorrt_rtx.dynamo.conversion._registry import Refusal

_NO_TRT_TYPE = (torch.float64, torch.complex64, torch.complex128, torch.int16, torch.uint16, torch.uint32,
                torch.uint64)


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


def dtypes_in(node: Node, allowed: Iterable[torch.dtype]):
    """Every tensor the node reads or writes has a dtype in `allowed` (else a Refusal naming it)."""
    allowed = tuple(allowed)
    for v in _tensor_vals(node):
        if v.dtype not in allowed:
            if v.dtype in _NO_TRT_TYPE:
                return Refusal(f"{v.dtype} tensor: TensorRT-RTX has no such type")
            return Refusal(f"{v.dtype} tensor: this converter takes {', '.join(str(d) for d in allowed)}")
    return True


def float_tensors(node: Node) -> bool:
    return dtypes_in(node, FLOAT_DTYPES)


def numeric_tensors(node: Node) -> bool:
    return dtypes_in(node, SUPPORTED_DTYPES)


def output_is_float(node: Node) -> bool:
    val = node.meta.get("val")
    return isinstance(val, torch.Tensor) and val.dtype in FLOAT_DTYPES


def all_of(*predicates):
    """Every predicate accepts; otherwise the first refusal (a `Refusal` keeps its reason)."""
    def check(node: Node):
        for predicate in predicates:
            verdict = predicate(node)
            if not verdict:
                return verdict
        return True

    return check
