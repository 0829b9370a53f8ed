"""Direct rewrites of export's high-level ATen ops into the ops their decompositions give.

torch.export's graph keeps CompositeImplicitAutograd ops such as conv2d, dropout, contiguous
and .to(); `run_decompositions` would retrace the whole program to replace them. For the
common ones the replacement is known without tracing: each rewrite below swaps one node for
the op(s) the decomposition produces, reusing the node's traced value (meta["val"]), so it
costs no fake-tensor work. A rewrite returns False when it does not apply to this call (say a
conv2d on an unbatched input); the node is then decomposed by tracing (_decompositions.py).

    rewrite = REWRITES.get(node.target)
    done = rewrite is not None and rewrite(gm.graph, node)

`functionalize_in_place(graph)` turns in-place ops on fresh intermediate tensors
(``out += identity``, ``relu(inplace=True)``) into their functional forms; it refuses (returns
the offending node) when a mutation could be seen through an alias.
"""
from __future__ import annotations

import operator
from typing import Any, Callable, Dict, List, Optional

import torch
from torch.fx import Graph, Node

aten = torch.ops.aten


def _arg(node: Node, index: int, name: str, default: Any) -> Any:
    if len(node.args) > index:
        return node.args[index]
    return node.kwargs.get(name, default)


def _replace(node: Node, target: Any, args: tuple, kwargs: Optional[dict] = None) -> Node:
    """Put `target(*args, **kwargs)` in `node`'s place; it takes over node's value and metadata."""
    graph = node.graph
    with graph.inserting_before(node):
        new = graph.call_function(target, args, kwargs or {})
    new.meta = dict(node.meta)
    node.replace_all_uses_with(new)
    graph.erase_node(node)
    return new


def _replace_by_input(node: Node) -> bool:
    node.replace_all_uses_with(node.args[0])
    node.graph.erase_node(node)
    return True


def _ints(value: Any, count: int) -> List[Any]:
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    return values * count if len(values) == 1 else values


def _convolution(spatial: int, transposed: bool) -> Callable[[Graph, Node], bool]:
    def rewrite(graph: Graph, node: Node) -> bool:
        x = node.args[0].meta.get("val")
        if not isinstance(x, torch.Tensor) or x.dim() != spatial + 2:
            return False  # unbatched input: the decomposition adds a batch dim
        weight, bias = node.args[1], _arg(node, 2, "bias", None)
        stride = _ints(_arg(node, 3, "stride", 1), spatial)
        padding = _ints(_arg(node, 4, "padding", 0), spatial)
        if transposed:  # conv_transposeNd(input, weight, bias, stride, padding, output_padding, groups, dilation)
            output_padding = _ints(_arg(node, 5, "output_padding", 0), spatial)
            groups, dilation = _arg(node, 6, "groups", 1), _ints(_arg(node, 7, "dilation", 1), spatial)
        else:  # convNd(input, weight, bias, stride, padding, dilation, groups)
            output_padding = [0] * spatial
            dilation, groups = _ints(_arg(node, 5, "dilation", 1), spatial), _arg(node, 6, "groups", 1)
        _replace(node, aten.convolution.default,
                 (node.args[0], weight, bias, stride, padding, dilation, transposed, output_padding, groups))
        return True

    return rewrite


def _dropout(graph: Graph, node: Node) -> bool:
    """Dropout outside training is the identity; its decomposition is a clone."""
    if _arg(node, 2, "train", False):
        return False
    _replace(node, aten.clone.default, (node.args[0],))
    return True


def _contiguous(graph: Graph, node: Node) -> bool:
    memory_format = _arg(node, 1, "memory_format", torch.contiguous_format)
    if memory_format != torch.contiguous_format:
        return False
    _replace(node, aten.clone.default, (node.args[0],), {"memory_format": torch.contiguous_format})
    return True


def _to(graph: Graph, node: Node) -> bool:
    """Tensor.to(...): nothing when dtype and device stay (the decomposition returns the input
    itself), else a dtype cast; a copy, a device move or a memory format is left to tracing."""
    source, out = node.args[0].meta.get("val"), node.meta.get("val")
    if not isinstance(source, torch.Tensor) or not isinstance(out, torch.Tensor) or source.device != out.device:
        return False
    if node.kwargs.get("copy") or node.kwargs.get("memory_format") not in (None, torch.preserve_format):
        return False
    if any(isinstance(a, bool) and a for a in node.args[2:]):  # copy=True given positionally
        return False
    if source.dtype == out.dtype:
        return _replace_by_input(node)
    _replace(node, aten._to_copy.default, (node.args[0],), {"dtype": out.dtype})
    return True


def _renamed(target: Any) -> Callable[[Graph, Node], bool]:
    def rewrite(graph: Graph, node: Node) -> bool:
        _replace(node, target, node.args, node.kwargs)
        return True

    return rewrite


def _sizes_of(graph: Graph, node: Node, source: Node, dims: range) -> List[Any]:
    """The sizes of `source`'s `dims`: ints, or sym_size nodes for symbolic ones."""
    val = source.meta["val"]
    sizes = []
    for d in dims:
        size = val.shape[d]
        if isinstance(size, torch.SymInt):
            with graph.inserting_before(node):
                read = graph.call_function(aten.sym_size.int, (source, d))
            read.meta = {**{k: v for k, v in node.meta.items() if k != "val"}, "val": size}
            size = read
        sizes.append(size)
    return sizes


def _unflatten(graph: Graph, node: Node) -> bool:
    """unflatten(x, dim, sizes) -> view(x, x.shape[:dim] + sizes + x.shape[dim + 1:])."""
    source, dim, sizes = node.args[0], node.args[1], node.args[2]
    val = source.meta.get("val")
    if not isinstance(val, torch.Tensor) or not all(isinstance(s, int) for s in sizes):
        return False
    dim = dim % val.dim()
    shape = (_sizes_of(graph, node, source, range(dim)) + list(sizes)
             + _sizes_of(graph, node, source, range(dim + 1, val.dim())))
    _replace(node, aten.view.default, (source, shape))
    return True


def _chunk(graph: Graph, node: Node) -> bool:
    """chunk(x, chunks, dim) -> split(x, ceil(size / chunks), dim) when that size is static."""
    source, chunks, dim = node.args[0], node.args[1], _arg(node, 2, "dim", 0)
    val = source.meta.get("val")
    size = val.shape[dim] if isinstance(val, torch.Tensor) else None
    if not isinstance(size, int) or not isinstance(chunks, int) or size == 0:
        return False
    _replace(node, aten.split.Tensor, (source, (size + chunks - 1) // chunks, dim))
    return True


REWRITES: Dict[Any, Callable[[Graph, Node], bool]] = {
    aten.conv1d.default: _convolution(1, False), aten.conv2d.default: _convolution(2, False),
    aten.conv3d.default: _convolution(3, False), aten.conv_transpose1d.default: _convolution(1, True),
    aten.conv_transpose2d.input: _convolution(2, True), aten.conv_transpose3d.input: _convolution(3, True),
    aten.dropout.default: _dropout, aten.feature_dropout.default: _dropout, aten.alpha_dropout.default: _dropout,
    aten.feature_alpha_dropout.default: _dropout,
    aten.contiguous.default: _contiguous,
    aten.to.dtype: _to, aten.to.dtype_layout: _to, aten.to.device: _to, aten.to.other: _to,
    aten.__and__.Tensor: _renamed(aten.bitwise_and.Tensor), aten.__or__.Tensor: _renamed(aten.bitwise_or.Tensor),
    aten.__xor__.Tensor: _renamed(aten.bitwise_xor.Tensor),
    aten.unflatten.int: _unflatten,
    aten.chunk.default: _chunk,
}


# -- in-place ops ---------------------------------------------------------------------------------

def _aliases_input(target: Any) -> bool:
    """True for an op whose output may share memory with an input (a view, an in-place op)."""
    if target is operator.getitem:
        return False  # picks an element; whether that aliases is up to the op that made the list
    schema = getattr(target, "_schema", None)
    return schema is None or any(r.alias_info is not None for r in schema.returns)


def functional_variant(target: Any) -> Optional[Any]:
    """aten.add_.Tensor -> aten.add.Tensor; None for anything else."""
    if not isinstance(target, torch._ops.OpOverload) or target.namespace != "aten":
        return None
    name = target._schema.name.split("::")[-1]
    if not name.endswith("_") or name.startswith("_"):
        return None
    packet = getattr(aten, name[:-1], None)
    variant = getattr(packet, target._overloadname, None) if packet is not None else None
    if variant is None or variant._schema.is_mutable:
        return None
    return variant


def functionalize_in_place(graph: Graph) -> Optional[Node]:
    """Replace each in-place aten op by its functional variant, with later readers of the
    mutated tensor reading the result. Safe only when nothing else can observe the mutation: the
    mutated tensor is the fresh output of a non-aliasing op (not an input, weight or view) and no
    view of it is taken. Returns None when done, else the first in-place node that does not
    qualify (the graph is left unchanged then)."""
    in_place = [n for n in graph.nodes if n.op == "call_function" and isinstance(n.target, torch._ops.OpOverload)
                and n.target._schema.is_mutable]
    if not in_place:
        return None
    chain = set(in_place)
    for node in in_place:
        if functional_variant(node.target) is None or not isinstance(node.args[0], Node):
            return node
        root = node.args[0]
        while root in chain:
            root = root.args[0]
        if root.op != "call_function" or _aliases_input(root.target):
            return node
        if any(user not in chain and user.op == "call_function" and _aliases_input(user.target)
               for user in list(root.users) + list(node.users)):
            return node
    latest: Dict[Node, Node] = {}  # mutated tensor (or in-place node) -> its current functional value
    for node in list(graph.nodes):
        if latest:
            node.args = torch.fx.node.map_arg(node.args, lambda a: latest.get(a, a))
            node.kwargs = torch.fx.node.map_arg(node.kwargs, lambda a: latest.get(a, a))
        if node in chain:
            mutated = node.args[0]
            new = _replace(node, functional_variant(node.target), node.args, node.kwargs)
            latest[mutated] = latest[node] = new
    return None
