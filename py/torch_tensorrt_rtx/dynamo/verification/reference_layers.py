"""More layer types for the CPU reference executor: the layers the coverage converters emit.

Importing this module registers handlers into `reference_executor`'s handler table:

    SLICE (static or shape-tensor start/size/stride; STRICT_BOUNDS, CLAMP, FILL, WRAP, REFLECT),
    FILL (LINSPACE with a static or dynamic shape), SELECT, NORMALIZATION (layer norm),
    RESIZE (nearest / linear over the two innermost dims), CUMULATIVE (sum), DECONVOLUTION (2-D),
    GATHER in ELEMENT mode (torch.gather), GRID_SAMPLE (linear / nearest; fill, clamp, reflect),
    and extra ops of existing types: ELEMENTWISE AND/OR/XOR, UNARY SIGN/ROUND/ISINF/ISNAN/TAN,
    ACTIVATION LEAKY_RELU/CLIP, REDUCE MIN/PROD.

TOPK (values and indices, both outputs; of equal values the lower index first) is modelled too.

Same precision model as the base executor: floating-point math in fp32, the result is rounded to
the layer's output dtype by `run_network`. Anything not modelled raises UnsupportedLayerError.
"""
from __future__ import annotations

import logging
from typing import List, Optional

import tensorrt_rtx as trt
import torch
import torch.nn.functional as F

from torch_tensorrt_rtx.dynamo.verification import reference_executor as _base
from torch_tensorrt_rtx.dynamo.conversion._context import to_torch_dtype

logger = logging.getLogger(__name__)
Tensor = torch.Tensor
_float = _base._float
_unsupported = _base._unsupported


def _register(layer_type, layer_class):
    """Add (or extend) the handler for `layer_type`. An extending handler receives the previous
    handler as `previous` and delegates to it for everything it does not model itself."""

    def decorate(fn):
        previous = _base._HANDLERS.get(layer_type)
        _base._CLASSES[layer_type] = layer_class

        def handler(layer, ins):
            return fn(layer, ins, previous)

        handler.__name__ = fn.__name__
        _base._HANDLERS[layer_type] = handler
        return fn

    return decorate


def _input_or(layer, ins, index: int, attribute: str) -> Optional[List[int]]:
    """A shape-like parameter: the runtime value of input `index` if set, else the layer attribute."""
    if index < len(ins) and ins[index] is not None:
        return [int(v) for v in ins[index].reshape(-1).tolist()]
    value = getattr(layer, attribute)
    return None if value is None else [int(v) for v in value]


# -- elementwise / unary / activation / reduce additions ----------------------------------------
_LOGICAL = {trt.ElementWiseOperation.AND: torch.logical_and, trt.ElementWiseOperation.OR: torch.logical_or,
            trt.ElementWiseOperation.XOR: torch.logical_xor}


@_register(trt.LayerType.ELEMENTWISE, trt.IElementWiseLayer)
def _elementwise(layer, ins, previous):
    if layer.op in _LOGICAL:
        return _LOGICAL[layer.op](ins[0], ins[1])
    return previous(layer, ins)


_UNARY = {trt.UnaryOperation.SIGN: torch.sign, trt.UnaryOperation.ROUND: torch.round,
          trt.UnaryOperation.ISINF: torch.isinf, trt.UnaryOperation.ISNAN: torch.isnan,
          trt.UnaryOperation.TAN: torch.tan}


@_register(trt.LayerType.UNARY, trt.IUnaryLayer)
def _unary(layer, ins, previous):
    if layer.op in _UNARY:
        return _UNARY[layer.op](_float(ins[0]))
    return previous(layer, ins)


@_register(trt.LayerType.ACTIVATION, trt.IActivationLayer)
def _activation(layer, ins, previous):
    x = _float(ins[0])
    if layer.type == trt.ActivationType.LEAKY_RELU:
        return F.leaky_relu(x, layer.alpha)
    if layer.type == trt.ActivationType.CLIP:
        return x.clamp(layer.alpha, layer.beta)
    return previous(layer, ins)


@_register(trt.LayerType.REDUCE, trt.IReduceLayer)
def _reduce(layer, ins, previous):
    x = _float(ins[0])
    dims = _base._axes(layer.axes, x.dim())
    if layer.op == trt.ReduceOperation.MIN:
        return x.amin(dim=dims, keepdim=layer.keep_dims)
    if layer.op == trt.ReduceOperation.PROD:
        out = x
        for d in sorted(dims, reverse=True):
            out = out.prod(dim=d, keepdim=layer.keep_dims)
        return out
    return previous(layer, ins)


# -- new layer types ----------------------------------------------------------------------------
def _slice_indices(layer, mode, start: int, size: int, stride: int, extent: int):
    index = start + torch.arange(size, dtype=torch.int64) * stride
    valid = None
    if mode == trt.SampleMode.STRICT_BOUNDS:
        if size and (index.min() < 0 or index.max() >= extent):
            raise IndexError(f"reference executor: slice layer {layer.name!r} reads index "
                             f"{index.tolist()} of a dimension of size {extent}")
    elif extent == 0:
        _unsupported(layer, f"mode {mode.name} on an empty dimension")
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
        _unsupported(layer, f"mode {mode.name}")
    return index, valid


@_register(trt.LayerType.SLICE, trt.ISliceLayer)
def _slice(layer, ins, previous):
    x = ins[0]
    if len(ins) > 5 and ins[5] is not None:
        _unsupported(layer, "an axes input")
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


@_register(trt.LayerType.FILL, trt.IFillLayer)
def _fill(layer, ins, previous):
    if layer.operation != trt.FillOperation.LINSPACE:
        _unsupported(layer, f"fill operation {layer.operation.name}")
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


@_register(trt.LayerType.SELECT, trt.ISelectLayer)
def _select(layer, ins, previous):
    condition, then_value, else_value = ins
    return torch.where(condition.bool(), _float(then_value), _float(else_value))


@_register(trt.LayerType.NORMALIZATION, trt.INormalizationLayer)
def _normalization(layer, ins, previous):
    if layer.num_groups != 1:
        _unsupported(layer, f"num_groups={layer.num_groups}")
    x, scale, bias = (_float(t) for t in ins[:3])
    dims = _base._axes(layer.axes, x.dim())
    mean = x.mean(dim=dims, keepdim=True)
    var = (x - mean).square().mean(dim=dims, keepdim=True)
    return (x - mean) * torch.rsqrt(var + layer.epsilon) * scale + bias


@_register(trt.LayerType.GATHER, trt.IGatherLayer)
def _gather_element(layer, ins, previous):
    if layer.mode != trt.GatherMode.ELEMENT:
        return previous(layer, ins)
    data, index = ins
    if index.shape != data.shape[:layer.axis] + index.shape[layer.axis:layer.axis + 1] + data.shape[layer.axis + 1:]:
        _unsupported(layer, f"ELEMENT gather with index shape {tuple(index.shape)} for data {tuple(data.shape)}")
    return torch.gather(data, layer.axis, index.long())


@_register(trt.LayerType.TOPK, trt.ITopKLayer)
def _topk(layer, ins, previous):
    """(values, indices) of the k largest (MAX) or smallest (MIN) along the one reduced axis, sorted.
    TensorRT does not document which of two equal values comes first; this model puts the lower
    index first (a stable sort), so indices of ties are the model's choice, values are exact."""
    x = ins[0]
    axes = _base._axes(layer.axes, x.dim())
    if len(axes) != 1:
        _unsupported(layer, f"top-k over axes {axes}")
    k = int(ins[1].reshape(-1)[0]) if len(ins) > 1 and ins[1] is not None else layer.k
    largest = layer.op == trt.TopKOperation.MAX
    values, indices = torch.sort(_float(x), dim=axes[0], descending=largest, stable=True)
    keep = torch.arange(k)
    return values.index_select(axes[0], keep), indices.index_select(axes[0], keep)


@_register(trt.LayerType.DECONVOLUTION, trt.IDeconvolutionLayer)
def _deconvolution(layer, ins, previous):
    x = _float(ins[0])
    if len(ins) < 2 or ins[1] is None:
        _unsupported(layer, "kernel weights stored in the layer (expected a kernel input tensor)")
    if x.dim() != 4:
        _unsupported(layer, f"rank {x.dim()} input")
    weight = _float(ins[1])
    bias = _float(ins[2]) if len(ins) > 2 and ins[2] is not None else None
    pre, post = tuple(layer.pre_padding), tuple(layer.post_padding)
    if any(b > a for a, b in zip(pre, post)):
        _unsupported(layer, f"post-padding {post} larger than pre-padding {pre}")
    # A smaller post-padding keeps extra rows/cols at the end: torch's output_padding.
    extra = tuple(a - b for a, b in zip(pre, post))
    return F.conv_transpose2d(x, weight, bias, tuple(layer.stride_nd), pre, extra, layer.num_groups,
                              tuple(layer.dilation_nd))


@_register(trt.LayerType.CUMULATIVE, trt.ICumulativeLayer)
def _cumulative(layer, ins, previous):
    if layer.op != trt.CumulativeOperation.SUM:
        _unsupported(layer, f"cumulative op {layer.op.name}")
    x = ins[0] if not ins[0].is_floating_point() else _float(ins[0])  # integer sums stay exact
    axis = int(ins[1].reshape(()).item())
    axis = axis + x.dim() if axis < 0 else axis
    if layer.reverse:
        x = x.flip(axis)
    out = x.cumsum(axis)
    if layer.exclusive:
        out = out - x
    return out.flip(axis) if layer.reverse else out


_RESIZE_MODES = {
    (trt.InterpolationMode.NEAREST, trt.ResizeCoordinateTransformation.ASYMMETRIC): ("nearest", None),
    (trt.InterpolationMode.LINEAR, trt.ResizeCoordinateTransformation.HALF_PIXEL): ("linear", False),
    (trt.InterpolationMode.LINEAR, trt.ResizeCoordinateTransformation.ALIGN_CORNERS): ("linear", True),
}


@_register(trt.LayerType.RESIZE, trt.IResizeLayer)
def _resize(layer, ins, previous):
    x = _float(ins[0])
    key = (layer.resize_mode, layer.coordinate_transformation)
    if key not in _RESIZE_MODES:
        _unsupported(layer, f"resize {key[0].name} with {key[1].name} coordinates")
    if layer.resize_mode == trt.InterpolationMode.NEAREST and layer.nearest_rounding != trt.ResizeRoundMode.FLOOR:
        _unsupported(layer, f"nearest rounding {layer.nearest_rounding.name}")
    mode, align = _RESIZE_MODES[key]
    spatial = x.dim() - 2
    if spatial not in (1, 2, 3):
        _unsupported(layer, f"rank {x.dim()} input")
    mode = {("linear", 1): "linear", ("linear", 2): "bilinear", ("linear", 3): "trilinear"}.get((mode, spatial), mode)
    shape = _input_or(layer, ins, 1, "shape") if len(ins) > 1 and ins[1] is not None else None
    scales = None if shape is not None else [float(s) for s in layer.scales]
    if scales:
        if any(s != 1.0 for s in scales[:2]):
            _unsupported(layer, f"scaling the batch or channel dims ({scales})")
        return F.interpolate(x, scale_factor=scales[2:], mode=mode, align_corners=align)
    shape = shape if shape is not None else [int(s) for s in layer.shape]
    if list(shape[:2]) != list(x.shape[:2]):
        _unsupported(layer, f"resizing the batch or channel dims to {shape}")
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


@_register(trt.LayerType.GRID_SAMPLE, trt.IGridSampleLayer)
def _grid_sample(layer, ins, previous):
    x, grid = _float(ins[0]), _float(ins[1])
    if x.dim() != 4:
        _unsupported(layer, f"rank {x.dim()} input")
    if layer.sample_mode not in (trt.SampleMode.FILL, trt.SampleMode.CLAMP, trt.SampleMode.REFLECT):
        _unsupported(layer, f"sample mode {layer.sample_mode.name}")
    height, width = x.shape[2:]
    col = _source_coordinate(grid[..., 0], width, layer.align_corners, layer.sample_mode)
    row = _source_coordinate(grid[..., 1], height, layer.align_corners, layer.sample_mode)
    if layer.interpolation_mode == trt.InterpolationMode.NEAREST:
        return _taps(x, torch.round(row).long(), torch.round(col).long())  # ties to even, as torch
    if layer.interpolation_mode != trt.InterpolationMode.LINEAR:
        _unsupported(layer, f"interpolation {layer.interpolation_mode.name}")
    top, left = torch.floor(row), torch.floor(col)
    down, right = (row - top).unsqueeze(1), (col - left).unsqueeze(1)
    top, left = top.long(), left.long()
    upper = _taps(x, top, left) * (1 - right) + _taps(x, top, left + 1) * right
    lower = _taps(x, top + 1, left) * (1 - right) + _taps(x, top + 1, left + 1) * right
    return upper * (1 - down) + lower * down
