"""Reductions and softmax: mean/sum/amax over dims, full sum/mean/max/min, amin, max/min along a
dim (with indices), argmax/argmin, any/all, cumsum, linalg_vector_norm; softmax.

Indices (argmax, max.dim) are the first position of the extreme value: an index ramp is selected
where `x == extreme` and reduced with MIN. This avoids ITopKLayer's second output and works with
a dynamic reduced dimension (the ramp is an IFillLayer then).
"""
from __future__ import annotations

import operator

import tensorrt_rtx as trt
import torch

from torch_tensorrt_rtx.dynamo.conversion._context import normalize_axis, node_dtype
from torch_tensorrt_rtx.dynamo.conversion._registry import converter
from torch_tensorrt_rtx.dynamo.conversion.converters._layers import dims, fill_like, ramp
from torch_tensorrt_rtx.dynamo.conversion.converters._validators import all_of, float_tensors, numeric_tensors
from torch_tensorrt_rtx.dynamo.conversion.converters.elementwise import elementwise_tensors
from torch_tensorrt_rtx.dynamo.conversion.converters.unary import unary_tensor

aten = torch.ops.aten
R = trt.ReduceOperation
Op = trt.ElementWiseOperation

_REDUCE = {aten.mean.dim: R.AVG, aten.sum.dim_IntList: R.SUM, aten.amax.default: R.MAX}


def _axes_mask(axes, rank):
    axes = [axes] if isinstance(axes, int) else list(axes or range(rank))
    mask = 0
    for d in axes:
        mask |= 1 << normalize_axis(d, rank)
    return mask


def _reduce_ok(node):
    return node.kwargs.get("dtype") is None and (len(node.args) < 4 or node.args[3] is None)


@converter(*_REDUCE, validator=all_of(float_tensors, _reduce_ok))
def reduce(ctx, node, args, kwargs):
    x = args[0]
    rank = len(x.shape)
    if rank == 0:  # a 0-d tensor reduced over its only "dim" is itself
        return identity(ctx, x)
    dims = args[1] if len(args) > 1 else kwargs.get("dim")
    keepdim = bool(args[2] if len(args) > 2 else kwargs.get("keepdim", False))
    layer = ctx.network.add_reduce(x, _REDUCE[node.target], _axes_mask(dims, rank), keepdim)
    return ctx.name(layer, "reduce").get_output(0)


def _softmax_ok(node):
    if node.target == aten._softmax.default:
        return not node.args[2]  # half_to_float
    # softmax(x, dim, dtype=torch.float32) (Bloom, Gemma-2, Funnel): the input is cast to the
    # node's (float) dtype first, which is what torch does.
    return True


@converter(aten._softmax.default, aten.softmax.int, validator=all_of(float_tensors, _softmax_ok))
def softmax(ctx, node, args, kwargs):
    x = ctx.cast(args[0], node_dtype(node))
    rank = len(x.shape)
    if rank < 2:  # ISoftMaxLayer wants rank >= 2: a scalar or vector is one row of a matrix
        row = ctx.reshape(x, [1, -1] if rank == 1 else [1, 1])
        return ctx.reshape(softmax_rows(ctx, row, 1), dims(ctx, x))
    return softmax_rows(ctx, x, normalize_axis(args[1], rank))


def softmax_rows(ctx, x, axis):
    layer = ctx.network.add_softmax(x)
    layer.axes = 1 << axis
    return ctx.name(layer, "softmax").get_output(0)


def identity(ctx, x):
    return ctx.name(ctx.network.add_identity(x), "identity").get_output(0)


def _all_axes(rank):
    return (1 << rank) - 1


def reduce_tensor(ctx, x, op, mask, keepdim):
    layer = ctx.network.add_reduce(x, op, mask, keepdim)
    return ctx.name(layer, op.name.lower()).get_output(0)


_FULL = {aten.sum.default: R.SUM, aten.mean.default: R.AVG, aten.max.default: R.MAX, aten.min.default: R.MIN}


@converter(*_FULL, validator=all_of(float_tensors, lambda n: n.kwargs.get("dtype") is None))
def full_reduce(ctx, node, args, kwargs):
    x = args[0]
    if len(x.shape) == 0:
        return identity(ctx, x)
    return reduce_tensor(ctx, x, _FULL[node.target], _all_axes(len(x.shape)), False)


@converter(aten.amin.default, validator=float_tensors)
def amin(ctx, node, args, kwargs):
    x = args[0]
    if len(x.shape) == 0:
        return identity(ctx, x)
    dims_ = args[1] if len(args) > 1 else kwargs.get("dim", [])
    keepdim = bool(args[2] if len(args) > 2 else kwargs.get("keepdim", False))
    return reduce_tensor(ctx, x, R.MIN, _axes_mask(dims_, len(x.shape)), keepdim)


def _first_index(ctx, x, axis, extreme, keepdim):
    """Index of the first element equal to `extreme` (x reduced over `axis` with keepdim)."""
    rank = len(x.shape)
    size = dims(ctx, x)[axis]
    view = [1] * rank
    view[axis] = size
    index = ctx.reshape(ramp(ctx, size, torch.int32), view)
    hit = ctx.name(ctx.network.add_elementwise(x, extreme, Op.EQUAL), "is_extreme").get_output(0)
    big = ctx.constant(torch.full((1,) * rank, 2 ** 30, dtype=torch.int32))
    hit, index, big = ctx.broadcast_ranks(hit, index, big)
    picked = ctx.name(ctx.network.add_select(hit, index, big), "index_if_extreme").get_output(0)
    first = reduce_tensor(ctx, picked, R.MIN, 1 << axis, keepdim)
    return ctx.cast(first, torch.int64)


def _values_and_indices(ctx, x, axis, op, keepdim, want_indices):
    kept = reduce_tensor(ctx, x, op, 1 << axis, True)
    indices = _first_index(ctx, x, axis, kept, keepdim) if want_indices else None
    values = kept if keepdim else reduce_tensor(ctx, x, op, 1 << axis, False)
    return values, indices


def _indices_used(node):
    return any(u.target is operator.getitem and u.args[1] == 1 for u in node.users)


def _first_float(node):
    val = node.args[0].meta.get("val")
    return isinstance(val, torch.Tensor) and val.dtype in (torch.float32, torch.float16, torch.bfloat16)


@converter(aten.max.dim, aten.min.dim, validator=_first_float)
def max_dim(ctx, node, args, kwargs):
    x = args[0]
    axis = normalize_axis(args[1], max(len(x.shape), 1))
    keepdim = bool(args[2] if len(args) > 2 else kwargs.get("keepdim", False))
    op = R.MAX if node.target == aten.max.dim else R.MIN
    if len(x.shape) == 0:  # the value itself, at index 0
        return identity(ctx, x), fill_like(ctx, 0, torch.int64, [])
    return _values_and_indices(ctx, x, axis, op, keepdim, _indices_used(node))


@converter(aten.argmax.default, aten.argmin.default, validator=_first_float)
def argmax(ctx, node, args, kwargs):
    x = args[0]
    axis = args[1] if len(args) > 1 else kwargs.get("dim")
    keepdim = bool(args[2] if len(args) > 2 else kwargs.get("keepdim", False))
    op = R.MAX if node.target == aten.argmax.default else R.MIN
    if len(x.shape) == 0:
        return fill_like(ctx, 0, torch.int64, [])
    if axis is None:
        x = ctx.reshape(x, [-1])
        axis = 0
        _, indices = _values_and_indices(ctx, x, 0, op, False, True)
        if keepdim:
            indices = ctx.reshape(indices, [1] * node.meta["val"].dim())
        return indices
    _, indices = _values_and_indices(ctx, x, normalize_axis(axis, len(x.shape)), op, keepdim, True)
    return indices


_ANY_ALL = {aten.any.dim: R.MAX, aten.any.dims: R.MAX, aten.any.default: R.MAX,
            aten.all.dim: R.MIN, aten.all.dims: R.MIN, aten.all.default: R.MIN}


@converter(*_ANY_ALL, validator=numeric_tensors)
def any_all(ctx, node, args, kwargs):
    x = args[0]
    rank = len(x.shape)
    if x.dtype == trt.bool:
        x = ctx.cast(x, torch.float32)  # 0/1, exact
    else:  # nonzero test in the input's own dtype
        zero = ctx.constant(torch.zeros((1,) * rank, dtype=torch.float32)) if rank else ctx.constant(0.0)
        x = ctx.cast(x, torch.float32)
        x = ctx.name(ctx.network.add_elementwise(x, zero, Op.EQUAL), "eq0").get_output(0)
        x = ctx.cast(ctx.name(ctx.network.add_unary(x, trt.UnaryOperation.NOT), "nonzero").get_output(0),
                     torch.float32)
    if node.target in (aten.any.default, aten.all.default) or rank == 0:
        mask, keepdim = _all_axes(rank), False
    else:
        mask = _axes_mask(args[1], rank)
        keepdim = bool(args[2] if len(args) > 2 else kwargs.get("keepdim", False))
    out = reduce_tensor(ctx, x, _ANY_ALL[node.target], mask, keepdim) if rank else x
    return ctx.cast(out, torch.bool)


def _cumsum_ok(node):
    # Floats, and integers summed as int32/int64 (position ids from a mask: mask.cumsum(-1));
    # an explicit dtype= is a cast first, and a bool input (timm's Fourier position encoding:
    # (~mask).cumsum(1, dtype=torch.float32)) is cast to the output dtype, 0/1 exactly.
    return numeric_tensors(node) and node_dtype(node) != torch.bool


@converter(aten.cumsum.default, validator=_cumsum_ok)
def cumsum(ctx, node, args, kwargs):
    x = ctx.cast(args[0], node_dtype(node))
    if len(x.shape) == 0:
        return identity(ctx, x)
    axis = ctx.constant(torch.tensor(normalize_axis(args[1], len(x.shape)), dtype=torch.int32))
    layer = ctx.network.add_cumulative(x, axis, trt.CumulativeOperation.SUM, False, False)
    return ctx.name(layer, "cumsum").get_output(0)


def _vector_norm_ok(node):
    order = node.args[1] if len(node.args) > 1 else node.kwargs.get("ord", 2)
    return (node.kwargs.get("dtype") is None and node.args[0].meta["val"].dim() > 0
            and isinstance(order, (int, float)) and order != 0)


@converter(aten.linalg_vector_norm.default, validator=all_of(float_tensors, _vector_norm_ok))
def vector_norm(ctx, node, args, kwargs):
    """||x||_p over `dim` (F.normalize, ConvNeXt-V2's GRN): inf/-inf as amax/amin of |x|, 2 as
    sqrt(sum(x*x)), any other p as sum(|x|^p)^(1/p). Half-precision inputs are summed in fp32
    (as torch accumulates them), so squares of fp16 values above 256 do not overflow."""
    order = float(args[1] if len(args) > 1 else kwargs.get("ord", 2))
    dim = args[2] if len(args) > 2 else kwargs.get("dim")
    keepdim = bool(args[3] if len(args) > 3 else kwargs.get("keepdim", False))
    dtype = node_dtype(node)
    x = ctx.cast(args[0], torch.float32)
    mask = _axes_mask(dim, len(x.shape))
    magnitude = unary_tensor(ctx, x, trt.UnaryOperation.ABS)
    if order in (float("inf"), float("-inf")):
        return ctx.cast(reduce_tensor(ctx, magnitude, R.MAX if order > 0 else R.MIN, mask, keepdim), dtype)
    if order == 2:
        powered = elementwise_tensors(ctx, x, x, Op.PROD, torch.float32)
    elif order == 1:
        powered = magnitude
    else:
        powered = elementwise_tensors(ctx, magnitude, order, Op.POW, torch.float32)
    total = reduce_tensor(ctx, powered, R.SUM, mask, keepdim)
    if order == 2:
        total = unary_tensor(ctx, total, trt.UnaryOperation.SQRT)
    elif order != 1:
        total = elementwise_tensors(ctx, total, 1.0 / order, Op.POW, torch.float32)
    return ctx.cast(total, dtype)
