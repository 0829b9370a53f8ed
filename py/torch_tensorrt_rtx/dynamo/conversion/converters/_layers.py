"""Layer helpers shared by the coverage converters (slicing, broadcasting, shape math).

Sizes are "parts": a Python int when the size is known at build time, or a 1-element int64
ITensor (from IShapeLayer/IGatherLayer or shape arithmetic) when it is only known at run time.
Helpers build static layer attributes when every part is an int and shape-tensor inputs
otherwise, so a dynamic dimension is never baked into the engine.
"""
from __future__ import annotations

from typing import List, Sequence, Union

import tensorrt_rtx as trt
import torch

from torch_tensorrt_rtx.dynamo.conversion._context import ConversionContext, to_trt_dtype

Part = Union[int, "trt.ITensor"]


def dims(ctx: ConversionContext, tensor: "trt.ITensor") -> List[Part]:
    """Every dimension of `tensor` as a part (int if static, shape tensor if dynamic)."""
    return [d if d >= 0 else ctx.dim_of(tensor, i) for i, d in enumerate(tensor.shape)]


def is_static(parts: Sequence[Part]) -> bool:
    return all(isinstance(p, int) for p in parts)


def int_tensor(ctx: ConversionContext, values: Sequence[int]) -> "trt.ITensor":
    return ctx.constant(torch.tensor(list(values), dtype=torch.int64))


_HOST_MATH = {
    trt.ElementWiseOperation.SUM: lambda a, b: a + b, trt.ElementWiseOperation.SUB: lambda a, b: a - b,
    trt.ElementWiseOperation.PROD: lambda a, b: a * b, trt.ElementWiseOperation.FLOOR_DIV: lambda a, b: a // b,
    trt.ElementWiseOperation.MAX: max, trt.ElementWiseOperation.MIN: min,
}


def shape_math(ctx: ConversionContext, a: Part, b: Part, op: "trt.ElementWiseOperation") -> Part:
    """a (op) b on sizes: Python arithmetic when both are ints, an int64 shape layer otherwise."""
    if isinstance(a, int) and isinstance(b, int):
        return _HOST_MATH[op](a, b)
    a = a if isinstance(a, trt.ITensor) else int_tensor(ctx, [a])
    b = b if isinstance(b, trt.ITensor) else int_tensor(ctx, [b])
    a, b = ctx.cast(a, torch.int64), ctx.cast(b, torch.int64)
    a, b = ctx.broadcast_ranks(a, b)
    return ctx.name(ctx.network.add_elementwise(a, b, op), "shape_math").get_output(0)


def slice_tensor(ctx: ConversionContext, x: "trt.ITensor", start: Sequence[Part], size: Sequence[Part],
                 stride: Sequence[Part], mode: "trt.SampleMode" = None,
                 fill: "trt.ITensor" = None) -> "trt.ITensor":
    """ISliceLayer with static attributes where possible and shape-tensor inputs otherwise.
    `fill` (a 0-d tensor of x's dtype) is the value read outside x in SampleMode.FILL."""
    static = is_static(start) and is_static(size) and is_static(stride)
    rank = len(x.shape)
    if static:
        layer = ctx.network.add_slice(x, tuple(start), tuple(size), tuple(stride))
    else:
        zeros = (0,) * rank
        layer = ctx.network.add_slice(x, zeros, zeros, (1,) * rank)
        layer.set_input(1, ctx.shape_tensor(start))
        layer.set_input(2, ctx.shape_tensor(size))
        layer.set_input(3, ctx.shape_tensor(stride))
    if mode is not None:
        layer.mode = mode
    if fill is not None:
        layer.set_input(4, fill)
    return ctx.name(layer, "slice").get_output(0)


def narrow(ctx: ConversionContext, x: "trt.ITensor", axis: int, start: Part, length: Part,
           step: int = 1) -> "trt.ITensor":
    """x[..., start : start + length*step : step, ...] along `axis` (start >= 0)."""
    size = dims(ctx, x)
    size[axis] = length
    starts = [0] * len(size)
    starts[axis] = start
    strides = [1] * len(size)
    strides[axis] = step
    return slice_tensor(ctx, x, starts, size, strides)


def broadcast_to(ctx: ConversionContext, x: "trt.ITensor", target: Sequence[Part]) -> "trt.ITensor":
    """Expand size-1 dims of `x` (rank-aligned to len(target)) to `target` with a stride-0 slice."""
    x = ctx.unsqueeze_leading(x, len(target))
    strides = []
    for have, want in zip(x.shape, target):
        if have == 1 and not (isinstance(want, int) and want == 1):
            strides.append(0)
        else:
            strides.append(1)
    if all(s == 1 for s in strides):
        return x
    size = [want if want is not None else have for have, want in zip(x.shape, target)]
    return slice_tensor(ctx, x, [0] * len(size), size, strides)


def ramp(ctx: ConversionContext, length: Part, dtype: torch.dtype = torch.int64, start: Part = 0,
         step: Union[int, float] = 1) -> "trt.ITensor":
    """1-D [start, start+step, ...] of `length` elements: a constant when everything is static,
    an IFillLayer (LINSPACE) with shape-tensor inputs when the length or start is dynamic."""
    if isinstance(length, int) and not isinstance(start, trt.ITensor):
        return ctx.constant(torch.arange(length, dtype=torch.float64).mul(step).add(start).to(dtype))
    layer = ctx.network.add_fill((1,), trt.FillOperation.LINSPACE, to_trt_dtype(dtype))
    layer.set_input(0, ctx.shape_tensor([length]))
    if isinstance(start, trt.ITensor):
        alpha = ctx.reshape(ctx.cast(start, dtype), [])
    else:
        alpha = ctx.constant(torch.tensor(start, dtype=dtype))
    layer.set_input(1, alpha)
    layer.set_input(2, ctx.constant(torch.tensor([step], dtype=dtype)))
    return ctx.name(layer, "ramp").get_output(0)


def fill_like(ctx: ConversionContext, value, dtype: torch.dtype, target: Sequence[Part]) -> "trt.ITensor":
    """A tensor of shape `target` (parts) filled with the Python scalar `value`."""
    scalar = ctx.constant(torch.full((1,) * len(target), value, dtype=dtype)) if target else \
        ctx.constant(torch.tensor(value, dtype=dtype))
    if not target:
        return ctx.name(ctx.network.add_identity(scalar), "fill").get_output(0)
    out = broadcast_to(ctx, scalar, target)
    if out is scalar:  # every target dim is 1
        out = ctx.name(ctx.network.add_identity(scalar), "fill").get_output(0)
    return out
