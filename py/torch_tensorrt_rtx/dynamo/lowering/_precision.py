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
- Lookups in a constant table (`TABLE_LOOKUP_OPS`: embedding, index_select, indexing of a weight)
  gather in the reduced dtype when a consumer computes in it, so the engine stores the table in
  that dtype (as `.half()` would) instead of fp32 (`_table_follows`).
- Everything else keeps fp32, including every numerically sensitive op: reductions (sum, mean,
  var, amax), softmax, normalization statistics (layer/group/batch norm), exp, log, pow, rsqrt,
  cumsum. Their reduced-precision inputs are cast back up first.
Graph inputs and outputs keep their dtypes, so the compiled module is called exactly like the
model. Every node's `meta["val"]` is updated to the dtype it now produces.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Dict, Iterable, Optional, Tuple

import torch
from torch._subclasses.fake_tensor import unset_fake_temporarily
from torch._prims_common import is_non_overlapping_and_dense_or_false
from torch.fx import Graph, GraphModule, Node

from torch_tensorrt_rtx.dynamo.conversion._registry import Precision, precision_policy

aten = torch.ops.aten

# Ops that read rows of their first argument; when it is a weight, its dtype is the table's.
TABLE_LOOKUP_OPS = frozenset({aten.embedding.default, aten.index_select.default, aten.index.Tensor})
REDUCED = (torch.float16, torch.bfloat16)
# With fp32 accumulation (upstream's use_fp32_acc) these compute in float32 on inputs cast up
# from the reduced dtype, and their result is cast back down for the ops that follow.
MATMUL_OPS = frozenset({aten.linear.default, aten.mm.default, aten.bmm.default, aten.matmul.default,
                        aten.addmm.default, aten.baddbmm.default})


def describe(dtype: Optional[torch.dtype], fp32_accumulation: bool = False) -> str:
    """The precision line of the compile report."""
    if dtype is None:
        return "as traced (no enabled_precisions)"
    name = str(dtype).replace("torch.", "")
    matmuls = "; matmuls in float32 on inputs cast up (use_fp32_acc)" if fp32_accumulation else ""
    return (f"{name} for matmul/convolution and the elementwise and shape ops between them; float32 for "
            f"reductions, softmax, normalization, exp/log/pow and every other op{matmuls}")


def _tensor_nodes(value: Any):
    if isinstance(value, Node):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _tensor_nodes(v)


def _is_float32(node: Node) -> bool:
    val = node.meta.get("val")
    return isinstance(val, torch.Tensor) and val.dtype == torch.float32


def _dims(sizes: Any) -> Tuple[Any, ...]:
    return tuple(s.node.expr if isinstance(s, torch.SymInt) else s for s in sizes)


def _contiguous_strides(shape: Tuple[Any, ...]) -> Tuple[Any, ...]:
    """The strides of a contiguous tensor of `shape` (ints and sympy expressions, as `_dims`
    gives them). Strides equal to these, as expressions, are non-overlapping and dense: a cheap
    first check before torch's symbolic one (about 0.4 ms a tensor with a dynamic dim)."""
    strides = []
    step: Any = 1
    for size in reversed(shape):
        strides.append(step)
        step = step * size
    return tuple(reversed(strides))


# FakeTensor attributes that a tensor made from a meta tensor leaves empty: a tensor with any of
# them set (a weight's value, a memoised data-dependent result) is not shared as another's cast.
_FAKE_EXTRAS = ("constant", "real_tensor", "pytype", "item_memo", "nonzero_memo", "unique_memo",
                "unique_consecutive_memo", "nested_int_memo")


def _plain(val: torch.Tensor) -> bool:
    """Whether `val` is what `_FakeCasts` would make for its own layout and dtype: a fake tensor at
    storage offset 0 with nothing attached."""
    offset = val.storage_offset()
    return (isinstance(offset, int) and offset == 0 and not getattr(val, "_is_param", False)
            and all(getattr(val, name, None) is None for name in _FAKE_EXTRAS))


class _FakeCasts:
    """Fake tensors cast to another dtype, made once per distinct (shape, strides, dtypes,
    device): `.to` on a fake tensor costs milliseconds (decomposition, dispatch, symbolic stride
    arithmetic), and a graph casts thousands of tensors of few distinct shapes. Nodes then share
    one fake tensor, as FX passes that copy `node.meta` already do.

    A cast's result depends only on the target dtype and the source's layout, so the source itself
    answers the way back: casting a tensor of that layout to its dtype (resnet50 in fp16: a
    convolution's fp32 output, recast to fp16, is cast back up for batch norm). In resnet50's fp16
    compile that makes 57 fewer tensors (100 -> 43), each a `torch.empty` with dynamic dims (about
    0.25 ms)."""

    def __init__(self) -> None:
        self._made: Dict[Tuple[Any, ...], torch.Tensor] = {}

    def __call__(self, val: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        shape, stride = _dims(val.shape), _dims(val.stride())
        requires_grad = val.requires_grad and torch.is_grad_enabled()

        def key(to: torch.dtype) -> Tuple[Any, ...]:
            return (id(val.fake_mode), to, val.device, requires_grad, shape, stride)

        made = self._made.get(key(dtype))
        if made is None:
            contiguous = stride == _contiguous_strides(shape)
            if contiguous or is_non_overlapping_and_dense_or_false(val):
                if requires_grad == val.requires_grad and _plain(val):  # what a cast to val.dtype would make
                    self._made.setdefault(key(val.dtype), val)
                # What `.to` makes of it (prims.convert_element_type keeps dense strides), built
                # directly rather than through `_to_copy`'s decomposition and fake dispatch
                # (`empty` where the strides are contiguous: a third of `empty_strided`'s cost
                # with dynamic dims).
                with unset_fake_temporarily():
                    meta = (torch.empty(val.shape, dtype=dtype, device="meta") if contiguous
                            else torch.empty_strided(val.shape, val.stride(), dtype=dtype, device="meta"))
                made = val.fake_mode.fake_tensor_converter.from_meta_and_device(val.fake_mode, meta, val.device)
                made.requires_grad_(requires_grad)
            else:
                # Each fake tensor under its own mode: inside torch.compile the tracing context
                # holds another one, which must not be mixed in.
                with val.fake_mode:
                    made = val.to(dtype)
            self._made[key(dtype)] = made
        return made

    def with_dtype(self, val: Any, dtype: torch.dtype) -> Any:
        """`val` (a node's meta value: a tensor or a list/tuple of them) with float32 tensors cast."""
        if isinstance(val, torch.Tensor):
            return self(val, dtype) if val.dtype == torch.float32 else val
        if isinstance(val, (list, tuple)):
            return type(val)(self.with_dtype(v, dtype) for v in val)
        return val


def _is_constant_table_lookup(node: Node) -> bool:
    table = node.args[0] if node.op == "call_function" and node.target in TABLE_LOOKUP_OPS else None
    return isinstance(table, Node) and table.op == "get_attr" and _is_float32(table)


def _computes_low(user: Node, lookup: Node, reduced) -> bool:
    """Whether `user` will compute in the reduced dtype once `lookup` produces it: a matmul or
    convolution, or an op that follows its inputs whose other floating inputs are reduced,
    constants, or lookups in constant tables themselves."""
    policy = precision_policy(user.target) if user.op == "call_function" else None
    if policy is Precision.REDUCED:
        return True
    if policy is not Precision.FOLLOW:
        return False
    others = [a for a in _tensor_nodes((user.args, user.kwargs)) if a is not lookup and _is_float32(a)]
    return all(a in reduced or a.op == "get_attr" or _is_constant_table_lookup(a) for a in others)


def _table_follows(node: Node, reduced) -> bool:
    """A lookup in an fp32 weight table gathers in the reduced dtype when a consumer computes in it
    (BERT's and GPT-2's token, position and segment embeddings feeding an add). The table is cast
    on the host, so the engine stores it in the reduced dtype."""
    return _is_constant_table_lookup(node) and any(_computes_low(user, node, reduced) for user in node.users)


def keep_float32(ops: Iterable[str] = (), node_patterns: Iterable[str] = ()) -> Callable[[Node], bool]:
    """Which nodes stay in float32 whatever their policy (upstream's autocast_excluded_ops, as
    overload names, and autocast_excluded_nodes, regular expressions searched in node names)."""
    ops, patterns = frozenset(ops), [re.compile(p) for p in node_patterns]
    return lambda node: str(node.target) in ops or any(p.search(node.name) for p in patterns)


def reduce_precision(gm: GraphModule, dtype: torch.dtype, fp32_accumulation: bool = False,
                     keep_fp32: Optional[Callable[[Node], bool]] = None) -> int:
    moved = reduce_precision_in_graph(gm.graph, dtype, fp32_accumulation, keep_fp32)
    gm.graph.lint()
    gm.recompile()
    return moved


def reduce_precision_in_graph(graph: Graph, dtype: torch.dtype, fp32_accumulation: bool = False,
                              keep_fp32: Optional[Callable[[Node], bool]] = None) -> int:
    """`reduce_precision` without the lint and recompile, for a caller that does both afterwards."""
    if dtype not in REDUCED:
        raise ValueError(f"reduced precision must be one of {REDUCED}, got {dtype}")
    reduced = set()  # nodes that now produce `dtype` where they produced float32
    casts: Dict[Tuple[Node, torch.dtype], Node] = {}
    cast_nodes = set()
    fake_casts = _FakeCasts()

    def cast(node: Node, to: torch.dtype) -> Node:
        key = (node, to)
        if key not in casts:
            with graph.inserting_after(node):
                c = graph.call_function(aten._to_copy.default, (node,), {"dtype": to})
            c.meta = {"val": fake_casts(node.meta["val"], to)}
            casts[key] = c
            cast_nodes.add(c)
        return casts[key]

    moved = 0
    for node in list(graph.nodes):
        if node.op != "call_function" or node in cast_nodes:
            continue
        inputs = list(dict.fromkeys(_tensor_nodes((node.args, node.kwargs))))
        floats = [a for a in inputs if _is_float32(a) or a in reduced]
        kept = keep_fp32 is not None and keep_fp32(node)
        if fp32_accumulation and node.target in MATMUL_OPS and floats and not kept:
            for a in floats:
                if a in reduced:
                    node.replace_input_with(a, cast(a, torch.float32))
            down = cast(node, dtype)
            for user in list(node.users):
                if user is not down:
                    user.replace_input_with(node, down)
            reduced.add(down)
            moved += 1
            continue
        policy = Precision.FLOAT32 if kept else precision_policy(node.target)
        if policy is Precision.REDUCED and floats:
            go_low = True
        elif policy is Precision.FOLLOW and floats:
            go_low = any(a in reduced for a in floats) and all(a in reduced or a.op == "get_attr" for a in floats)
        else:
            go_low = False
        go_low = go_low or (not kept and _table_follows(node, reduced))
        for a in floats:
            if go_low and a not in reduced:
                node.replace_input_with(a, cast(a, dtype))
            elif not go_low and a in reduced:
                node.replace_input_with(a, cast(a, torch.float32))
        if go_low:
            node.meta["val"] = fake_casts.with_dtype(node.meta.get("val"), dtype)
            reduced.add(node)
            moved += policy is Precision.REDUCED
    output = next(iter(graph.find_nodes(op="output")))
    for a in list(dict.fromkeys(_tensor_nodes(output.args))):
        if a in reduced:
            output.replace_input_with(a, cast(a, torch.float32))
    return moved
