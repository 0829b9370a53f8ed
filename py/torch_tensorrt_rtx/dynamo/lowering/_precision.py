"""Reduced-precision compute for an fp32 program (`enabled_precisions={torch.float16}` or bf16).

    reduce_precision(gm, torch.float16)   # rewrites gm in place; returns the number of ops moved

The policy is autocast's, written out on the ATen graph so it is explicit and the same for
both entry points. Each op's converter declares it (`precision=` on its registration,
conversion/_registry.py), and this pass reads it with `precision_policy`:
- `Precision.REDUCED` ops (matmuls, convolutions) always compute in the reduced dtype: their fp32
  inputs are cast down (casts of weights fold into fp16 constants at conversion).
- `Precision.FOLLOW` ops (activations, elementwise arithmetic, shape and data movement) compute in
  the reduced dtype when their floating inputs already are (or are constants), so a
  linear -> gelu -> linear chain stays in fp16 without casts in between.
- Everything else keeps fp32, including every numerically sensitive op: reductions (sum, mean,
  var, amax), softmax, normalization statistics (layer/group/batch norm), exp, log, pow, rsqrt,
  cumsum. Their reduced-precision inputs are cast back up first.
Graph inputs and outputs keep their dtypes, so the compiled module is called exactly like the
model. Every node's `meta["val"]` is updated to the dtype it now produces.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import torch
from torch.fx import GraphModule, Node

from torch_tensorrt_rtx.dynamo.conversion._registry import Precision, precision_policy

aten = torch.ops.aten

REDUCED = (torch.float16, torch.bfloat16)


def describe(dtype: Optional[torch.dtype]) -> str:
    """The precision line of the compile report."""
    if dtype is None:
        return "as traced (no enabled_precisions)"
    name = str(dtype).replace("torch.", "")
    return (f"{name} for matmul/convolution and the elementwise and shape ops between them; float32 for "
            "reductions, softmax, normalization, exp/log/pow and every other op")


def _tensor_nodes(value: Any):
    if isinstance(value, Node):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _tensor_nodes(v)


def _is_float32(node: Node) -> bool:
    val = node.meta.get("val")
    return isinstance(val, torch.Tensor) and val.dtype == torch.float32


def _cast_val(val: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    # Each fake tensor under its own mode: inside torch.compile the tracing context holds
    # another one, which must not be mixed in.
    with val.fake_mode:
        return val.to(dtype)


def _with_dtype(val: Any, dtype: torch.dtype) -> Any:
    if isinstance(val, torch.Tensor):
        return _cast_val(val, dtype) if val.dtype == torch.float32 else val
    if isinstance(val, (list, tuple)):
        return type(val)(_with_dtype(v, dtype) for v in val)
    return val


def reduce_precision(gm: GraphModule, dtype: torch.dtype) -> int:
    if dtype not in REDUCED:
        raise ValueError(f"reduced precision must be one of {REDUCED}, got {dtype}")
    graph = gm.graph
    reduced = set()  # nodes that now produce `dtype` where they produced float32
    casts: Dict[Tuple[Node, torch.dtype], Node] = {}

    def cast(node: Node, to: torch.dtype) -> Node:
        key = (node, to)
        if key not in casts:
            with graph.inserting_after(node):
                c = graph.call_function(aten._to_copy.default, (node,), {"dtype": to})
            c.meta = {"val": _cast_val(node.meta["val"], to)}
            casts[key] = c
        return casts[key]

    moved = 0
    for node in list(graph.nodes):
        if node.op != "call_function" or node in casts.values():
            continue
        inputs = list(dict.fromkeys(_tensor_nodes((node.args, node.kwargs))))
        floats = [a for a in inputs if _is_float32(a) or a in reduced]
        policy = precision_policy(node.target)
        if policy is Precision.REDUCED and floats:
            go_low = True
        elif policy is Precision.FOLLOW and floats:
            go_low = any(a in reduced for a in floats) and all(a in reduced or a.op == "get_attr" for a in floats)
        else:
            go_low = False
        for a in floats:
            if go_low and a not in reduced:
                node.replace_input_with(a, cast(a, dtype))
            elif not go_low and a in reduced:
                node.replace_input_with(a, cast(a, torch.float32))
        if go_low:
            node.meta["val"] = _with_dtype(node.meta.get("val"), dtype)
            reduced.add(node)
            moved += policy is Precision.REDUCED
    output = next(iter(graph.find_nodes(op="output")))
    for a in list(dict.fromkeys(_tensor_nodes(output.args))):
        if a in reduced:
            output.replace_input_with(a, cast(a, torch.float32))
    graph.lint()
    gm.recompile()
    return moved
