"""flip, and repeat whose counts are symbolic sizes (instance norm's `weight.repeat(batch)` under a
dynamic batch) or too many for concatenation.

- flip is one ISliceLayer with stride -1 on each flipped dim, starting at its last element (a
  shape tensor when the dim is dynamic). Bidirectional RNNs flip the sequence this way.
- repeat interleaves a size-1 dim before every dim ([1, d0, 1, d1, ...]), broadcasts those to the
  counts with a stride-0 slice and merges each (count, size) pair: any count, static or computed
  at run time, in three layers.
"""
from __future__ import annotations

import tensorrt_rtx as trt
import torch

from torch_tensorrt_rtx.dynamo.conversion._context import normalize_axis
from torch_tensorrt_rtx.dynamo.conversion._registry import Precision, converter
from torch_tensorrt_rtx.dynamo.conversion.converters._layers import broadcast_to, dims, shape_math, slice_tensor
from torch_tensorrt_rtx.dynamo.conversion.converters._validators import numeric_tensors
from torch_tensorrt_rtx.dynamo.conversion.converters.symbolic import is_sym_int

aten = torch.ops.aten
Op = trt.ElementWiseOperation


def _identity(ctx, x, suffix):
    return ctx.name(ctx.network.add_identity(x), suffix).get_output(0)


@converter(aten.flip.default, validator=numeric_tensors, precision=Precision.FOLLOW)
def flip(ctx, node, args, kwargs):
    x = args[0]
    rank = len(x.shape)
    flipped = {normalize_axis(int(d), rank) for d in args[1]}
    size = dims(ctx, x)
    # A statically empty dim has nothing to reverse (and no last element to start from).
    flipped = {d for d in flipped if not (isinstance(size[d], int) and size[d] == 0)}
    if not flipped:
        return _identity(ctx, x, "flip")
    start = [shape_math(ctx, size[d], 1, Op.SUB) if d in flipped else 0 for d in range(rank)]
    stride = [-1 if d in flipped else 1 for d in range(rank)]
    return slice_tensor(ctx, x, start, size, stride)


def _count_ok(count) -> bool:
    return (isinstance(count, int) and count >= 0) or is_sym_int(count)


def _repeat_ok(node):
    return numeric_tensors(node) and all(_count_ok(r) for r in node.args[1])


# Below the concatenating converter (priority 0), which takes small static counts.
@converter(aten.repeat.default, validator=_repeat_ok, priority=-1)
def repeat_any_count(ctx, node, args, kwargs):
    counts = list(args[1])
    x = ctx.unsqueeze_leading(args[0], len(counts))
    rank = len(counts)
    if rank == 0:
        return _identity(ctx, x, "repeat")
    size = dims(ctx, x)
    axes = ctx.constant(torch.arange(0, 2 * rank, 2, dtype=torch.int64))
    spread = ctx.name(ctx.network.add_unsqueeze(x, axes), "repeat_spread").get_output(0)
    target = [part for count, dim in zip(counts, size) for part in (count, dim)]
    tiled = broadcast_to(ctx, spread, target)
    merged = [shape_math(ctx, count, dim, Op.PROD) for count, dim in zip(counts, size)]
    return ctx.reshape(tiled, merged)
