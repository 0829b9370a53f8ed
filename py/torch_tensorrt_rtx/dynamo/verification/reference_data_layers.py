"""Reference-executor handlers of the layers that move, pick or resample data: SHUFFLE, SHAPE,
GATHER (DEFAULT and ELEMENT modes), CONCATENATION, UNSQUEEZE, SQUEEZE, SLICE (static or
shape-tensor start/size/stride; STRICT_BOUNDS, CLAMP, FILL, WRAP, REFLECT), FILL (LINSPACE),
RESIZE (nearest / linear over the innermost dims) and GRID_SAMPLE (linear / nearest; fill, clamp,
reflect), NON_ZERO (indices as a [rank, n] matrix). Anything not modelled raises UnsupportedLayerError.
"""
from __future__ import annotations

from typing import List, Optional

import tensorrt_rtx as trt
import torch
import torch.nn.functional as F

from torch_tensorrt_rtx.dynamo.conversion._context import to_torch_dtype
from torch_tensorrt_rtx.dynamo.verification._layer_registry import as_float, handles, unsupported

Tensor = torch.Tensor


def _input_or(layer, ins, index: int, attribute: str) -> Optional[List[int]]:
    """A shape-like parameter: the runtime value of input `index` if set, else the layer attribute."""
    if index < len(ins) and ins[index] is not None:
        return [int(v) for v in ins[index].reshape(-1).tolist()]
    value = getattr(layer, attribute)
    return None if value is None else [int(v) for v in value]


@handles(trt.LayerType.SHUFFLE, trt.IShuffleLayer)
def _shuffle(layer, ins):
    x = ins[0]
    rank = x.dim()
    first = tuple(layer.first_transpose)[:rank]
    x = x.permute(*first) if first else x
    if len(ins) > 1 and ins[1] is not None:
        dims = [int(v) for v in ins[1].tolist()]  # dynamic reshape: shape tensor input
    else:
        dims = layer.reshape_dims  # None when the layer only transposes
        dims = None if dims is None else list(dims)
    if dims is not None:
        if layer.zero_is_placeholder:
            dims = [x.shape[i] if d == 0 else d for i, d in enumerate(dims)]
        x = x.reshape(dims)
    second = tuple(layer.second_transpose)[:x.dim()]
    return x.permute(*second) if second else x


@handles(trt.LayerType.SHAPE, trt.IShapeLayer)
def _shape(layer, ins):
    return torch.tensor(list(ins[0].shape), dtype=torch.int64)


@handles(trt.LayerType.NON_ZERO, trt.INonZeroLayer)
def _non_zero(layer, ins):
    # TensorRT's definition: a [rank, n] matrix whose columns are the positions of the non-zero
    # (for bool: true) elements, in lexical order; n is known only after the values are.
    x = ins[0]
    positions = [torch.arange(size, dtype=torch.int64) for size in x.shape]
    grids = torch.meshgrid(*positions, indexing="ij") if positions else []
    chosen = (x != 0).reshape(-1)
    return torch.stack([g.reshape(-1)[chosen] for g in grids]) if grids else torch.zeros(0, 0, dtype=torch.int64)


@handles(trt.LayerType.GATHER, trt.IGatherLayer)
def _gather(layer, ins):
    if layer.mode == trt.GatherMode.ELEMENT:
        return _gather_element(layer, ins)
    if layer.mode != trt.GatherMode.DEFAULT or layer.num_elementwise_dims != 0:
        unsupported(layer, f"gather mode {layer.mode.name}")
    data, index = ins
    return torch.index_select(data, layer.axis, index.reshape(-1).long()).reshape(
        data.shape[:layer.axis] + index.shape + data.shape[layer.axis + 1:])


def _gather_element(layer, ins):
    data, index = ins
    if index.shape != data.shape[:layer.axis] + index.shape[layer.axis:layer.axis + 1] + data.shape[layer.axis + 1:]:
        unsupported(layer, f"ELEMENT gather with index shape {tuple(index.shape)} for data {tuple(data.shape)}")
    return torch.gather(data, layer.axis, index.long())


@handles(trt.LayerType.CONCATENATION, trt.IConcatenationLayer)
def _concat(layer, ins):
    return torch.cat([as_float(t) if t.is_floating_point() else t for t in ins], dim=layer.axis)


@handles(trt.LayerType.UNSQUEEZE, trt.IUnsqueezeLayer)
def _unsqueeze(layer, ins):
    x, axes = ins[0], sorted(int(a) for a in ins[1].reshape(-1).tolist())
    rank = x.dim() + len(axes)
    for a in sorted(a + rank if a < 0 else a for a in axes):
        x = x.unsqueeze(a)
    return x


@handles(trt.LayerType.SQUEEZE, trt.ISqueezeLayer)
def _squeeze(layer, ins):
    x, axes = ins[0], [int(a) for a in ins[1].reshape(-1).tolist()]
    return x.squeeze(tuple(a + x.dim() if a < 0 else a for a in axes))


def _slice_indices(layer, mode, start: int, size: int, stride: int, extent: int):
    index = start + torch.arange(size, dtype=torch.int64) * stride
    valid = None
    if mode == trt.SampleMode.STRICT_BOUNDS:
        if size and (index.min() < 0 or index.max() >= extent):
            raise IndexError(f"reference executor: slice layer {layer.name!r} reads index "
                             f"{index.tolist()} of a dimension of size {extent}")
    elif extent == 0:
        unsupported(layer, f"mode {mode.name} on an empty dimension")
    elif mode == trt.SampleMode.CLAMP:
        index = index.clamp(0, extent - 1)
    elif mode == trt.SampleMode.WRAP:
        index = index.remainder(extent)
    elif mode == trt.SampleMode.REFLECT:
        period = 2 * (extent - 1) if extent > 1 else 1
        index = index.remainder(period)
        index = torch.where(index >= extent, period - index, index)
    elif mode == trt.SampleMode.FILL:
        valid = (index >= 0) & (index < extent)
        index = index.clamp(0, extent - 1)
    else:
        unsupported(layer, f"mode {mode.name}")
    return index, valid


@handles(trt.LayerType.SLICE, trt.ISliceLayer)
def _slice(layer, ins):
    x = ins[0]
    if len(ins) > 5 and ins[5] is not None:
        unsupported(layer, "an axes input")
    start = _input_or(layer, ins, 1, "start")
    size = _input_or(layer, ins, 2, "shape")
    stride = _input_or(layer, ins, 3, "stride")
    mode = layer.mode
    if mode == trt.SampleMode.FILL and x.numel() == 0:  # an empty input: every read is outside it
        fill = ins[4].reshape(()) if len(ins) > 4 and ins[4] is not None else torch.zeros((), dtype=x.dtype)
        return torch.full([int(s) for s in size], fill.item(), dtype=x.dtype)
    out, keep = x, torch.ones((), dtype=torch.bool)
    for d in range(x.dim()):
        index, valid = _slice_indices(layer, mode, start[d], size[d], stride[d], x.shape[d])
        out = out.index_select(d, index)
        if valid is not None:
            keep = keep & valid.reshape([-1 if k == d else 1 for k in range(x.dim())])
    if mode == trt.SampleMode.FILL:
        fill = ins[4].reshape(()) if len(ins) > 4 and ins[4] is not None else torch.zeros((), dtype=x.dtype)
        out = torch.where(keep, out, fill.to(out.dtype))
    return out


@handles(trt.LayerType.FILL, trt.IFillLayer)
def _fill(layer, ins):
    if layer.operation != trt.FillOperation.LINSPACE:
        unsupported(layer, f"fill operation {layer.operation.name}")
    shape = _input_or(layer, ins, 0, "shape")
    dtype = to_torch_dtype(layer.to_type)
    integer = not dtype.is_floating_point and dtype != torch.bool
    work = torch.int64 if integer else torch.float32
    alpha = ins[1].reshape(()).to(work) if len(ins) > 1 and ins[1] is not None else torch.tensor(layer.alpha, dtype=work)
    if len(ins) > 2 and ins[2] is not None:
        beta = ins[2].reshape(-1).to(work)
    else:
        beta = torch.tensor(list(layer.beta), dtype=work)
    out = torch.zeros(shape, dtype=work) + alpha
    for d in range(len(shape)):
        ramp = torch.arange(shape[d], dtype=work).reshape([-1 if k == d else 1 for k in range(len(shape))])
        out = out + ramp * beta[d]
    return out


_RESIZE_MODES = {
    (trt.InterpolationMode.NEAREST, trt.ResizeCoordinateTransformation.ASYMMETRIC): ("nearest", None),
    (trt.InterpolationMode.LINEAR, trt.ResizeCoordinateTransformation.HALF_PIXEL): ("linear", False),
    (trt.InterpolationMode.LINEAR, trt.ResizeCoordinateTransformation.ALIGN_CORNERS): ("linear", True),
}


@handles(trt.LayerType.RESIZE, trt.IResizeLayer)
def _resize(layer, ins):
    x = as_float(ins[0])
    key = (layer.resize_mode, layer.coordinate_transformation)
    if key not in _RESIZE_MODES:
        unsupported(layer, f"resize {key[0].name} with {key[1].name} coordinates")
    if layer.resize_mode == trt.InterpolationMode.NEAREST and layer.nearest_rounding != trt.ResizeRoundMode.FLOOR:
        unsupported(layer, f"nearest rounding {layer.nearest_rounding.name}")
    mode, align = _RESIZE_MODES[key]
    spatial = x.dim() - 2
    if spatial not in (1, 2, 3):
        unsupported(layer, f"rank {x.dim()} input")
    mode = {("linear", 1): "linear", ("linear", 2): "bilinear", ("linear", 3): "trilinear"}.get((mode, spatial), mode)
    shape = _input_or(layer, ins, 1, "shape") if len(ins) > 1 and ins[1] is not None else None
    scales = None if shape is not None else [float(s) for s in layer.scales]
    if scales:
        if any(s != 1.0 for s in scales[:2]):
            unsupported(layer, f"scaling the batch or channel dims ({scales})")
        return F.interpolate(x, scale_factor=scales[2:], mode=mode, align_corners=align)
    shape = shape if shape is not None else [int(s) for s in layer.shape]
    if list(shape[:2]) != list(x.shape[:2]):
        unsupported(layer, f"resizing the batch or channel dims to {shape}")
    return F.interpolate(x, size=shape[2:], mode=mode, align_corners=align)


# -- grid sample: ONNX GridSample semantics (= torch.nn.functional.grid_sample), 4-D only --------
def _reflect(coord: Tensor, twice_low: int, twice_high: int) -> Tensor:
    """Reflect `coord` off the borders low and high (given doubled, so half-pixels are exact)
    until it lies between them."""
    if twice_low == twice_high:
        return torch.zeros_like(coord)
    low, span = twice_low / 2, (twice_high - twice_low) / 2
    distance = (coord - low).abs()
    extra = torch.fmod(distance, span)
    even = torch.floor(distance / span).remainder(2) == 0
    return torch.where(even, extra + low, span - extra + low)


def _source_coordinate(normalized: Tensor, size: int, align_corners: bool, mode) -> Tensor:
    """A grid value in [-1, 1] as a pixel coordinate of a dim of `size`, after the sample mode."""
    if align_corners:
        coord = (normalized + 1) / 2 * (size - 1)
    else:
        coord = ((normalized + 1) * size - 1) / 2
    if mode == trt.SampleMode.REFLECT:
        coord = _reflect(coord, 0, 2 * (size - 1)) if align_corners else _reflect(coord, -1, 2 * size - 1)
    if mode in (trt.SampleMode.CLAMP, trt.SampleMode.REFLECT):
        coord = coord.clamp(0, size - 1)
    return coord


def _taps(x: Tensor, row: Tensor, col: Tensor) -> Tensor:
    """x[n, :, row, col] for integer rows/cols of shape [N, Ho, Wo]; 0 outside the image."""
    batch, channels, height, width = x.shape
    inside = (row >= 0) & (row < height) & (col >= 0) & (col < width)
    flat = (row.clamp(0, height - 1) * width + col.clamp(0, width - 1)).reshape(batch, 1, -1)
    values = x.reshape(batch, channels, height * width).gather(2, flat.expand(batch, channels, -1))
    values = values.reshape(batch, channels, *row.shape[1:])
    return torch.where(inside.unsqueeze(1), values, torch.zeros((), dtype=values.dtype))


@handles(trt.LayerType.GRID_SAMPLE, trt.IGridSampleLayer)
def _grid_sample(layer, ins):
    x, grid = as_float(ins[0]), as_float(ins[1])
    if x.dim() != 4:
        unsupported(layer, f"rank {x.dim()} input")
    if layer.sample_mode not in (trt.SampleMode.FILL, trt.SampleMode.CLAMP, trt.SampleMode.REFLECT):
        unsupported(layer, f"sample mode {layer.sample_mode.name}")
    height, width = x.shape[2:]
    col = _source_coordinate(grid[..., 0], width, layer.align_corners, layer.sample_mode)
    row = _source_coordinate(grid[..., 1], height, layer.align_corners, layer.sample_mode)
    if layer.interpolation_mode == trt.InterpolationMode.NEAREST:
        return _taps(x, torch.round(row).long(), torch.round(col).long())  # ties to even, as torch
    if layer.interpolation_mode != trt.InterpolationMode.LINEAR:
        unsupported(layer, f"interpolation {layer.interpolation_mode.name}")
    top, left = torch.floor(row), torch.floor(col)
    down, right = (row - top).unsqueeze(1), (col - left).unsqueeze(1)
    top, left = top.long(), left.long()
    upper = _taps(x, top, left) * (1 - right) + _taps(x, top, left + 1) * right
    lower = _taps(x, top + 1, left) * (1 - right) + _taps(x, top + 1, left + 1) * right
    return upper * (1 - down) + lower * down
