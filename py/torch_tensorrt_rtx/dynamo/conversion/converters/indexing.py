"""Indexing and assembling: slice, select, split/split_with_sizes (chunk lowers to split), unbind,
slice_scatter/select_scatter and copy (functionalized in-place assignment: `mask[a:b] = v`),
stack, expand, embedding, index_select, gather, and advanced indexing (index.Tensor) with integer
index tensors on adjacent dims (x[idx], x[:, i, j], table[rows, cols]).

Slices along a dynamic dimension compute their start and length with shape layers (the clamping
rules of Python slicing included), so the engine stays correct for every size in the profile.
"""
from __future__ import annotations

import operator

import tensorrt_rtx as trt
import torch

from torch_tensorrt_rtx.dynamo.conversion._context import normalize_axis, node_dtype
from torch_tensorrt_rtx.dynamo.conversion._registry import Precision, converter, declare_precision
from torch_tensorrt_rtx.dynamo.conversion.converters._layers import (
    broadcast_to,
    dims,
    narrow,
    shape_math,
    slice_tensor,
)
from torch_tensorrt_rtx.dynamo.conversion.converters._validators import numeric_tensors
from torch_tensorrt_rtx.dynamo.conversion.converters.elementwise import elementwise_tensors
from torch_tensorrt_rtx.dynamo.conversion.converters.symbolic import is_sym_int

aten = torch.ops.aten
Op = trt.ElementWiseOperation
_HUGE = 1 << 62  # "to the end" in slice(start, sys.maxsize)

# No converter: chunk lowers to split, and the interpreter itself unpacks the outputs of split,
# unbind or max_pool2d_with_indices with getitem. Both follow their input's precision.
declare_precision(Precision.FOLLOW, aten.chunk.default, operator.getitem)


def _bound(ctx, value, size, default):
    """Python slicing's clamp of a start/end `value` into [0, size]."""
    if value is None:
        return default
    if isinstance(value, int):
        if isinstance(size, int):
            value = value + size if value < 0 else value
            return min(max(value, 0), size)
        if value >= _HUGE:
            return size
        if value >= 0:
            return value if value == 0 else shape_math(ctx, value, size, Op.MIN)
        return shape_math(ctx, shape_math(ctx, size, value, Op.SUM), 0, Op.MAX)
    return shape_math(ctx, shape_math(ctx, value, size, Op.MIN), 0, Op.MAX)


def _slice_ok(node):
    args = list(node.args) + [None] * (5 - len(node.args))
    step = args[4] if args[4] is not None else 1
    bounds_ok = all(a is None or isinstance(a, int) or is_sym_int(a) for a in args[2:4])
    return numeric_tensors(node) and isinstance(step, int) and step > 0 and bounds_ok


@converter(aten.slice.Tensor, validator=_slice_ok, precision=Precision.FOLLOW)
def slice_(ctx, node, args, kwargs):
    args = list(args) + [None] * (5 - len(args))
    x = args[0]
    axis = normalize_axis(args[1] if args[1] is not None else 0, len(x.shape))
    step = args[4] if args[4] is not None else 1
    size = dims(ctx, x)[axis]
    start = _bound(ctx, args[2], size, 0)
    end = _bound(ctx, args[3], size, size)
    if isinstance(start, int) and isinstance(end, int):
        length = max((end - start + step - 1) // step, 0)
    else:
        span = shape_math(ctx, shape_math(ctx, end, start, Op.SUB), step - 1, Op.SUM)
        length = shape_math(ctx, shape_math(ctx, span, step, Op.FLOOR_DIV), 0, Op.MAX)
    return narrow(ctx, x, axis, start, length, step)


def _gather(ctx, x, index, axis):
    return ctx.name(ctx.network.add_gather(x, index, axis), "gather").get_output(0)


def _select(ctx, x, axis, index):
    if index < 0:
        size = dims(ctx, x)[axis]
        index = size + index if isinstance(size, int) else ctx.reshape(shape_math(ctx, size, index, Op.SUM), [])
    if isinstance(index, int):
        index = ctx.constant(torch.tensor(index, dtype=torch.int64))
    return _gather(ctx, x, index, axis)


@converter(aten.select.int, validator=lambda n: numeric_tensors(n) and isinstance(n.args[2], int),
           precision=Precision.FOLLOW)
def select(ctx, node, args, kwargs):
    x = args[0]
    return _select(ctx, x, normalize_axis(args[1], len(x.shape)), int(args[2]))


def _split_sizes(node):
    values = node.meta.get("val")
    axis = node.args[2] if len(node.args) > 2 else node.kwargs.get("dim", 0)
    axis = normalize_axis(axis, node.args[0].meta["val"].dim())
    return axis, [v.shape[axis] for v in values]


def _split_ok(node):
    if not numeric_tensors(node) or not isinstance(node.meta.get("val"), (list, tuple)):
        return False
    _, sizes = _split_sizes(node)
    return all(isinstance(s, int) for s in sizes)


@converter(aten.split.Tensor, aten.split_with_sizes.default, validator=_split_ok, precision=Precision.FOLLOW)
def split(ctx, node, args, kwargs):
    axis, sizes = _split_sizes(node)
    pieces, offset = [], 0
    for size in sizes:
        pieces.append(narrow(ctx, args[0], axis, offset, int(size)))
        offset += int(size)
    return tuple(pieces)


def _unbind_ok(node):
    x = node.args[0].meta["val"]
    axis = node.args[1] if len(node.args) > 1 else 0
    return numeric_tensors(node) and isinstance(x.shape[axis], int)


@converter(aten.unbind.int, validator=_unbind_ok, precision=Precision.FOLLOW)
def unbind(ctx, node, args, kwargs):
    x = args[0]
    axis = normalize_axis(args[1] if len(args) > 1 else 0, len(x.shape))
    return tuple(_select(ctx, x, axis, i) for i in range(x.shape[axis]))


@converter(aten.stack.default, validator=numeric_tensors, precision=Precision.FOLLOW)
def stack(ctx, node, args, kwargs):
    dtype = node_dtype(node)
    rank = node.meta["val"].dim()
    axis = normalize_axis(args[1] if len(args) > 1 else kwargs.get("dim", 0), rank)
    axes = ctx.constant(torch.tensor([axis], dtype=torch.int64))
    pieces = [ctx.name(ctx.network.add_unsqueeze(ctx.as_tensor(t, dtype), axes), "unsqueeze").get_output(0)
              for t in args[0]]
    if len(pieces) == 1:
        return pieces[0]
    layer = ctx.network.add_concatenation(pieces)
    layer.axis = axis
    return ctx.name(layer, "stack").get_output(0)


def _expand_ok(node):
    return numeric_tensors(node) and all(isinstance(s, int) or is_sym_int(s) for s in node.args[1])


@converter(aten.expand.default, validator=_expand_ok, precision=Precision.FOLLOW)
def expand(ctx, node, args, kwargs):
    x, sizes = args[0], list(args[1])
    x = ctx.unsqueeze_leading(x, len(sizes))
    have = dims(ctx, x)
    target = [have[i] if isinstance(s, int) and s == -1 else s for i, s in enumerate(sizes)]
    out = broadcast_to(ctx, x, target)
    if out is args[0]:
        out = ctx.name(ctx.network.add_identity(out), "expand").get_output(0)
    return out


def _embedding_ok(node):
    weight = node.args[0].meta.get("val")
    indices = node.args[1].meta.get("val")
    return (isinstance(weight, torch.Tensor) and isinstance(indices, torch.Tensor)
            and indices.dtype in (torch.int32, torch.int64) and numeric_tensors(node))


@converter(aten.embedding.default, validator=_embedding_ok)
def embedding(ctx, node, args, kwargs):
    weight = ctx.as_tensor(args[0], node_dtype(node))
    return _gather(ctx, weight, args[1], 0)


@converter(aten.index_select.default, validator=numeric_tensors)
def index_select(ctx, node, args, kwargs):
    x, axis, index = args[0], args[1], args[2]
    x = ctx.as_tensor(x, node_dtype(node))
    if len(x.shape) == 0:  # a 0-d tensor is read as a 1-element vector; the result is 0-d again
        picked = _gather(ctx, ctx.reshape(x, [1]), index, 0)
        return ctx.reshape(picked, [int(d) for d in node.meta["val"].shape])
    return _gather(ctx, x, index, normalize_axis(axis, len(x.shape)))


def _repeat_ok(node):
    repeats = node.args[1]
    return numeric_tensors(node) and all(isinstance(r, int) and 1 <= r <= 64 for r in repeats)


@converter(aten.repeat.default, validator=_repeat_ok, precision=Precision.FOLLOW)
def repeat(ctx, node, args, kwargs):
    """x.repeat(r0, r1, ...): r copies concatenated along each axis (works for dynamic dims)."""
    repeats = [int(r) for r in args[1]]
    out = ctx.unsqueeze_leading(args[0], len(repeats))
    for axis, times in enumerate(repeats):
        if times > 1:
            layer = ctx.network.add_concatenation([out] * times)
            layer.axis = axis
            out = ctx.name(layer, "repeat").get_output(0)
    if out is args[0]:
        out = ctx.name(ctx.network.add_identity(out), "repeat").get_output(0)
    return out


def _int_index(value) -> bool:
    val = value.meta.get("val") if hasattr(value, "meta") else None
    return isinstance(val, torch.Tensor) and val.dtype in (torch.int32, torch.int64)


def _gather_ok(node):
    x, index = node.args[0].meta["val"], node.args[2].meta["val"]
    axis = normalize_axis(node.args[1], x.dim())
    if not (numeric_tensors(node) and _int_index(node.args[2]) and x.dim() == index.dim()):
        return False
    # TensorRT's ELEMENT gather wants the index's shape on every other dim: equal, or static to slice to.
    return all(a == b or (isinstance(a, int) and isinstance(b, int) and b <= a)
               for d, (a, b) in enumerate(zip(x.shape, index.shape)) if d != axis)


@converter(aten.gather.default, validator=_gather_ok)
def gather(ctx, node, args, kwargs):
    x, axis, index = args[0], normalize_axis(args[1], len(args[0].shape)), args[2]
    if any(b >= 0 and a != b for d, (a, b) in enumerate(zip(x.shape, index.shape)) if d != axis):
        size = [b if d != axis else part for d, (b, part) in enumerate(zip(index.shape, dims(ctx, x)))]
        x = slice_tensor(ctx, x, [0] * len(size), size, [1] * len(size))
    layer = ctx.network.add_gather(x, index, axis)
    layer.mode = trt.GatherMode.ELEMENT
    return ctx.name(layer, "gather_element").get_output(0)


def _index_positions(indices):
    return [d for d, i in enumerate(indices) if i is not None]


def _index_ok(node):
    indices = list(node.args[1])
    positions = _index_positions(indices)
    if not positions or not numeric_tensors(node):
        return False
    if positions != list(range(positions[0], positions[-1] + 1)):
        return False  # separated index tensors move the result dims to the front: not modelled
    return all(_int_index(indices[d]) for d in positions)


def _wrap_negative(ctx, index, size):
    """index + size where index < 0 (Python indexing), in int64."""
    index = ctx.cast(index, torch.int64)
    negative = ctx.cast(elementwise_tensors(ctx, index, 0, Op.LESS, torch.int64), torch.int64)
    shift = elementwise_tensors(ctx, negative, size, Op.PROD, torch.int64)
    return elementwise_tensors(ctx, index, shift, Op.SUM, torch.int64)


@converter(aten.index.Tensor, validator=_index_ok)
def index(ctx, node, args, kwargs):
    """x[..., i0, i1, ...] on adjacent dims: the indexed dims are flattened into one and the
    index tensors combined row-major (broadcast together as torch does), then one gather."""
    x, indices = args[0], list(args[1])
    positions = _index_positions(indices)
    first, count = positions[0], len(positions)
    parts = dims(ctx, x)
    sizes = parts[first:first + count]
    linear = None
    for k, d in enumerate(positions):
        term = _wrap_negative(ctx, indices[d], sizes[k])
        stride = 1
        for later in sizes[k + 1:]:
            stride = shape_math(ctx, stride, later, Op.PROD)
        if not (isinstance(stride, int) and stride == 1):
            term = elementwise_tensors(ctx, term, stride, Op.PROD, torch.int64)
        linear = term if linear is None else elementwise_tensors(ctx, linear, term, Op.SUM, torch.int64)
    if count > 1:
        merged = sizes[0]
        for size in sizes[1:]:
            merged = shape_math(ctx, merged, size, Op.PROD)
        x = ctx.reshape(x, parts[:first] + [merged] + parts[first + count:])
    return _gather(ctx, x, linear, first)


def _part(ctx, x, axis, start, length):
    """x narrowed along `axis`, or None when the length is statically zero."""
    if isinstance(length, int) and length == 0:
        return None
    return narrow(ctx, x, axis, start, length)


def _concat(ctx, pieces, axis):
    layer = ctx.network.add_concatenation(pieces)
    layer.axis = axis
    return ctx.name(layer, "concat").get_output(0)


def _slice_scatter_ok(node):
    args = list(node.args) + [None] * (6 - len(node.args))
    step = args[5] if args[5] is not None else node.kwargs.get("step", 1)
    bounds = [node.kwargs.get(k, a) for k, a in (("start", args[3]), ("end", args[4]))]
    # A strided scatter interleaves src with the input: not expressible as one concatenation.
    return numeric_tensors(node) and step == 1 and all(b is None or isinstance(b, int) or is_sym_int(b)
                                                       for b in bounds)


@converter(aten.slice_scatter.default, validator=_slice_scatter_ok)
def slice_scatter(ctx, node, args, kwargs):
    """input with input[start:end] along `dim` replaced by src (functionalized `x[a:b] = y`):
    the concatenation of input[:start], src and input[end:]."""
    args = list(args) + [None] * (6 - len(args))
    dtype = node_dtype(node)
    x = ctx.as_tensor(args[0], dtype)
    src = ctx.as_tensor(args[1], dtype)
    axis = normalize_axis(kwargs.get("dim", args[2] if args[2] is not None else 0), len(x.shape))
    size = dims(ctx, x)[axis]
    start = _bound(ctx, kwargs.get("start", args[3]), size, 0)
    end = _bound(ctx, kwargs.get("end", args[4]), size, size)
    end = shape_math(ctx, end, start, Op.MAX)  # an empty slice (end < start) inserts at start
    pieces = [_part(ctx, x, axis, 0, start), src, _part(ctx, x, axis, end, shape_math(ctx, size, end, Op.SUB))]
    pieces = [p for p in pieces if p is not None]
    if len(pieces) == 1:
        return ctx.name(ctx.network.add_identity(src), "slice_scatter").get_output(0)
    return _concat(ctx, pieces, axis)


def _select_scatter_ok(node):
    return numeric_tensors(node) and isinstance(node.args[3], int)


@converter(aten.select_scatter.default, validator=_select_scatter_ok)
def select_scatter(ctx, node, args, kwargs):
    """input with input.select(dim, index) replaced by src (functionalized `x[:, i] = y`)."""
    dtype = node_dtype(node)
    x = ctx.as_tensor(args[0], dtype)
    axis = normalize_axis(args[2], len(x.shape))
    src = ctx.as_tensor(args[1], dtype)
    src = ctx.name(ctx.network.add_unsqueeze(src, ctx.constant(torch.tensor([axis], dtype=torch.int64))),
                   "unsqueeze").get_output(0)
    size = dims(ctx, x)[axis]
    index = args[3]
    if index < 0:
        index = size + index if isinstance(size, int) else shape_math(ctx, size, index, Op.SUM)
    after = shape_math(ctx, index, 1, Op.SUM)
    pieces = [_part(ctx, x, axis, 0, index), src, _part(ctx, x, axis, after, shape_math(ctx, size, after, Op.SUB))]
    return _concat(ctx, [p for p in pieces if p is not None], axis)


@converter(aten.copy.default, validator=numeric_tensors)
def copy(ctx, node, args, kwargs):
    """copy(dst, src) (functionalized `dst.copy_(src)`): src cast to dst's dtype and broadcast to
    dst's shape; dst's values are not read."""
    dst, src = args[0], args[1]
    dtype = node_dtype(node)
    target = dims(ctx, dst) if isinstance(dst, trt.ITensor) else list(dst.shape)
    src = ctx.as_tensor(src, dtype, len(target))
    out = broadcast_to(ctx, src, target)
    if out is src or out is args[1]:
        out = ctx.name(ctx.network.add_identity(out), "copy").get_output(0)
    return out
