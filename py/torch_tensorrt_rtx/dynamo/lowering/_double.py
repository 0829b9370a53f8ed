"""float64 in a TensorRT-RTX program: computed in float32 (truncate_double=True, the default) or
kept in PyTorch (truncate_double=False).

TensorRT-RTX has no float64. Models still compute in it, typically a rotary embedding's
frequencies (``torch.arange(..., dtype=torch.float64)``, outer product, cos/sin, then ``.float()``).

    count = truncate_double(gm)    # rewrites gm in place: float64 ops now compute in float32

- every float64 constant (get_attr) is replaced by a float32 copy (the caller's tensors are untouched);
- every ``dtype=torch.float64`` argument (``_to_copy``, ``arange``, ``full``, ...) becomes float32;
- each node's `meta["val"]` follows, so partitioning and conversion see float32 everywhere;
- float64 graph inputs are cast to float32 on entry and float64 outputs cast back on exit, so the
  compiled module is called exactly like the model. Those casts (marked BOUNDARY_CAST) run in
  PyTorch and are not reported as fallbacks.

`count` is the number of ops that computed in float64. With truncate_double=False nothing is
rewritten and partitioning keeps every node that touches float64 in PyTorch (`touches_double`).
"""
from __future__ import annotations

from typing import Any, Dict

import torch
from torch.fx import GraphModule, Node

aten = torch.ops.aten
BOUNDARY_CAST = "torch_tensorrt_rtx_float64_boundary_cast"
DOUBLE_REASON = "float64 (TensorRT-RTX has none; truncate_double=True computes it in float32)"


def _is_double(value: Any) -> bool:
    return isinstance(value, torch.Tensor) and value.dtype == torch.float64


def _to_float(value: Any) -> Any:
    if _is_double(value):
        mode = getattr(value, "fake_mode", None)
        if mode is None:
            return value.float()
        with mode:  # each fake tensor under its own mode (inside torch.compile another one is active)
            return value.float()
    if isinstance(value, (list, tuple)):
        return type(value)(_to_float(v) for v in value)
    return value


def _has_double(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return any(_has_double(v) for v in value)
    return _is_double(value)


def touches_double(node: Node) -> bool:
    """True when `node` reads or produces a float64 tensor (or asks for one with a dtype argument)."""
    if _has_double(node.meta.get("val")):
        return True
    if any(_has_double(arg.meta.get("val")) for arg in node.all_input_nodes):
        return True
    return any(a is torch.float64 for a in list(node.args) + list(node.kwargs.values()))


def _cast(gm: GraphModule, node: Node, dtype: torch.dtype, where: Any) -> Node:
    with where:
        cast = gm.graph.call_function(aten._to_copy.default, (node,), {"dtype": dtype})
    val = node.meta.get("val")
    if isinstance(val, torch.Tensor):
        mode = getattr(val, "fake_mode", None)
        if mode is None:
            cast.meta["val"] = val.to(dtype)
        else:
            with mode:
                cast.meta["val"] = val.to(dtype)
    cast.meta[BOUNDARY_CAST] = True
    return cast


def _float_constants(gm: GraphModule) -> None:
    done: Dict[str, bool] = {}
    for node in gm.graph.find_nodes(op="get_attr"):
        owner_path, _, attr = node.target.rpartition(".")
        owner = gm.get_submodule(owner_path) if owner_path else gm
        value = getattr(owner, attr, None)
        if _is_double(value) and node.target not in done:
            converted = value.detach().float()
            if attr in owner._buffers:
                owner._buffers[attr] = converted
            elif attr in owner._parameters:
                owner._parameters[attr] = torch.nn.Parameter(converted, requires_grad=False)
            else:
                setattr(owner, attr, converted)
            done[node.target] = True
        node.meta["val"] = _to_float(node.meta.get("val"))


def truncate_double(gm: GraphModule) -> int:
    """Compute every float64 op of `gm` in float32; return how many ops did."""
    graph = gm.graph
    if not any(touches_double(n) for n in graph.nodes if n.op in ("placeholder", "get_attr", "call_function")):
        return 0
    output = next(iter(graph.find_nodes(op="output")))
    double_outputs = {n for n in output.all_input_nodes if _is_double(n.meta.get("val"))}
    _float_constants(gm)
    count = 0
    placeholders = list(graph.find_nodes(op="placeholder"))
    for node in list(graph.nodes):
        if node.op == "placeholder" and _is_double(node.meta.get("val")):
            users = [u for u in node.users if u.op == "call_function"]  # not export's guard module
            cast = _cast(gm, node, torch.float32, graph.inserting_after(placeholders[-1]))
            for user in users:
                user.replace_input_with(node, cast)
        elif node.op == "call_function" and not node.meta.get(BOUNDARY_CAST):
            node.args = tuple(torch.float32 if a is torch.float64 else a for a in node.args)
            node.kwargs = {k: torch.float32 if v is torch.float64 else v for k, v in node.kwargs.items()}
            if _has_double(node.meta.get("val")):
                node.meta["val"] = _to_float(node.meta["val"])
                count += 1
    for node in double_outputs:  # the model returned float64: so does the compiled module
        output.replace_input_with(node, _cast(gm, node, torch.float64, graph.inserting_before(output)))
    graph.lint()
    gm.recompile()
    return count
