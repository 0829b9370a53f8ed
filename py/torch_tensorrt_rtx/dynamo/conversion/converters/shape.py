"""Shape ops: view/reshape/flatten, permute/t, unsqueeze/squeeze, cat, clone, sym_size.

Dynamic dimensions are never baked in: sizes the program reads at run time (`sym_size`) become
IShapeLayer + IGatherLayer outputs, and reshapes with such sizes feed a shape tensor to the
shuffle layer.
"""
from __future__ import annotations

import tensorrt_rtx as trt
import torch
from torch.fx import Node

from torch_tensorrt_rtx.dynamo.conversion._context import normalize_axis, node_dtype
from torch_tensorrt_rtx.dynamo.conversion._registry import Precision, Refusal, converter, declare_precision
from torch_tensorrt_rtx.dynamo.conversion.converters._validators import numeric_tensors

aten = torch.ops.aten
_RESHAPES = (aten.view.default, aten._unsafe_view.default, aten.reshape.default)

# Decomposed before conversion into the reshapes and permute here; whole, it moves data too.
declare_precision(Precision.FOLLOW, aten.pixel_shuffle.default)


def _size_args_ok(node):
    # Every size is an int or a sym_size node (converted below); other symbolic arithmetic
    # would reach the engine as a non-tensor input, so such views stay in PyTorch.
    return all(isinstance(s, int) or (isinstance(s, Node) and s.target == aten.sym_size.int)
               for s in node.args[1])


def _reshape_ok(node):
    return numeric_tensors(node) and _size_args_ok(node)


@converter(*_RESHAPES, validator=_reshape_ok, precision=Precision.FOLLOW)
def reshape(ctx, node, args, kwargs):
    return ctx.reshape(args[0], [p if isinstance(p, trt.ITensor) else int(p) for p in args[1]])


@converter(aten.sym_size.int, validator=lambda n: all(u.target in _RESHAPES for u in n.users))
def sym_size(ctx, node, args, kwargs):
    x, axis = args
    return ctx.dim_of(x, normalize_axis(axis, len(x.shape)))


@converter(aten.flatten.using_ints, validator=numeric_tensors, precision=Precision.FOLLOW)
def flatten(ctx, node, args, kwargs):
    x = args[0]
    rank = len(x.shape)
    start = normalize_axis(args[1] if len(args) > 1 else 0, rank)
    end = normalize_axis(args[2] if len(args) > 2 else -1, rank)
    parts = [ctx.dim_of(x, i) if x.shape[i] < 0 else x.shape[i] for i in range(start)]
    parts.append(-1)
    parts += [ctx.dim_of(x, i) if x.shape[i] < 0 else x.shape[i] for i in range(end + 1, rank)]
    return ctx.reshape(x, parts)


def _permute(ctx, x, order):
    layer = ctx.network.add_shuffle(x)
    layer.first_transpose = tuple(order)
    return ctx.name(layer, "permute").get_output(0)


@converter(aten.permute.default, validator=numeric_tensors, precision=Precision.FOLLOW)
def permute(ctx, node, args, kwargs):
    rank = len(args[0].shape)
    return _permute(ctx, args[0], [normalize_axis(a, rank) for a in args[1]])


@converter(aten.t.default, validator=numeric_tensors, precision=Precision.FOLLOW)
def transpose_2d(ctx, node, args, kwargs):
    return args[0] if len(args[0].shape) < 2 else _permute(ctx, args[0], [1, 0])


@converter(aten.transpose.int, validator=numeric_tensors, precision=Precision.FOLLOW)
def transpose(ctx, node, args, kwargs):
    rank = len(args[0].shape)
    order = list(range(rank))
    a, b = normalize_axis(args[1], rank), normalize_axis(args[2], rank)
    order[a], order[b] = order[b], order[a]
    return _permute(ctx, args[0], order)


@converter(aten.unsqueeze.default, validator=numeric_tensors, precision=Precision.FOLLOW)
def unsqueeze(ctx, node, args, kwargs):
    axis = normalize_axis(args[1], len(args[0].shape) + 1)
    axes = ctx.constant(torch.tensor([axis], dtype=torch.int64))
    return ctx.name(ctx.network.add_unsqueeze(args[0], axes), "unsqueeze").get_output(0)


def _squeeze_dims(node):
    """The dims named, except on a 0-d input (where squeeze(x, 0) is a no-op)."""
    dims = node.args[1] if len(node.args) > 1 else []
    return [] if node.args[0].meta["val"].dim() == 0 else [dims] if isinstance(dims, int) else list(dims)


def _squeeze_ok(node):
    """Static dims only: PyTorch drops a dim of size 1 and leaves any other size alone (PixArt). A
    symbolic dim is dropped at the run times it is 1, which no fixed-rank engine can follow, and
    export's metadata assumes it is not 1 even when the user's range starts at 1."""
    x = node.args[0].meta["val"]
    symbolic = [d for d in _squeeze_dims(node) if not isinstance(x.shape[d], int)]
    if symbolic:
        return Refusal(f"squeeze of dim {symbolic[0]} of symbolic size {x.shape[symbolic[0]]}: PyTorch removes it "
                       "only when it is 1 at run time, an engine's output rank is fixed")
    return numeric_tensors(node)


@converter(aten.squeeze.dim, aten.squeeze.dims, validator=_squeeze_ok, precision=Precision.FOLLOW)
def squeeze(ctx, node, args, kwargs):
    rank = len(args[0].shape)
    dims = [normalize_axis(d, rank) for d in _squeeze_dims(node) if node.args[0].meta["val"].shape[d] == 1]
    if not dims:  # every dim named has a size other than 1: a no-op in PyTorch
        return ctx.name(ctx.network.add_identity(args[0]), "identity").get_output(0)
    axes = ctx.constant(torch.tensor(dims, dtype=torch.int64))
    return ctx.name(ctx.network.add_squeeze(args[0], axes), "squeeze").get_output(0)


@converter(aten.cat.default, validator=numeric_tensors, precision=Precision.FOLLOW)
def cat(ctx, node, args, kwargs):
    dtype = node_dtype(node)
    rank = len(node.meta["val"].shape)
    tensors = [ctx.as_tensor(t, dtype) for t in args[0] if not (hasattr(t, "shape") and tuple(t.shape) == (0,))]
    axis = normalize_axis(args[1] if len(args) > 1 else kwargs.get("dim", 0), rank)
    if len(tensors) == 1:
        return ctx.name(ctx.network.add_identity(tensors[0]), "cat").get_output(0)
    layer = ctx.network.add_concatenation(tensors)
    layer.axis = axis
    return ctx.name(layer, "cat").get_output(0)


def _clone_ok(node):
    # A memory format is a layout, not values: engine outputs come back contiguous whatever it is
    # (Swin2SR's clone(memory_format=torch.channels_last) around pixel_shuffle).
    return numeric_tensors(node) and node.kwargs.get("memory_format") in (
        None, torch.preserve_format, torch.contiguous_format, torch.channels_last, torch.channels_last_3d)


@converter(aten.clone.default, aten.alias.default, validator=_clone_ok, precision=Precision.FOLLOW)
def clone(ctx, node, args, kwargs):
    return ctx.name(ctx.network.add_identity(args[0]), "identity").get_output(0)
