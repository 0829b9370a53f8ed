"""Reference-executor handlers of the arithmetic layers: constants and casts, elementwise (with
AND/OR/XOR), unary (with SIGN/ROUND/TAN/ISINF/ISNAN), activations (with LEAKY_RELU and CLIP),
SELECT, matrix multiply, convolution and 2-D deconvolution, pooling, softmax, reduce (AVG, SUM,
MAX, MIN, PROD), NORMALIZATION (layer and group norm), CUMULATIVE sum, TOPK and IDENTITY.

Precision model: floating-point math in fp32; `run_network` rounds each result to the layer's
output dtype. Anything not modelled raises UnsupportedLayerError.
"""
from __future__ import annotations

import tensorrt_rtx as trt
import torch
import torch.nn.functional as F

from torch_tensorrt_rtx.dynamo.conversion._context import to_torch_dtype
from torch_tensorrt_rtx.dynamo.verification._layer_registry import as_float, handles, invalid, mask_axes, unsupported


@handles(trt.LayerType.CONSTANT, trt.IConstantLayer)
def _constant(layer, ins):
    weights = torch.from_numpy(layer.weights.copy()) if layer.weights.size else torch.empty(0)
    return weights.reshape(tuple(layer.shape))


@handles(trt.LayerType.CAST, trt.ICastLayer)
def _cast(layer, ins):
    return ins[0].to(to_torch_dtype(layer.to_type))


_ELEMENTWISE = {
    trt.ElementWiseOperation.SUM: torch.add, trt.ElementWiseOperation.SUB: torch.sub,
    trt.ElementWiseOperation.PROD: torch.mul, trt.ElementWiseOperation.MAX: torch.maximum,
    trt.ElementWiseOperation.MIN: torch.minimum, trt.ElementWiseOperation.POW: torch.pow,
    trt.ElementWiseOperation.EQUAL: torch.eq, trt.ElementWiseOperation.GREATER: torch.gt,
    trt.ElementWiseOperation.LESS: torch.lt,
}


_LOGICAL = {trt.ElementWiseOperation.AND: torch.logical_and, trt.ElementWiseOperation.OR: torch.logical_or,
            trt.ElementWiseOperation.XOR: torch.logical_xor}


@handles(trt.LayerType.ELEMENTWISE, trt.IElementWiseLayer)
def _elementwise(layer, ins):
    a, b = ins
    if layer.op in _LOGICAL:
        return _LOGICAL[layer.op](a, b)
    if layer.op == trt.ElementWiseOperation.DIV:
        if a.is_floating_point():
            return as_float(a) / as_float(b)
        return torch.div(a, b, rounding_mode="trunc")
    if layer.op == trt.ElementWiseOperation.FLOOR_DIV:
        return torch.div(a, b, rounding_mode="floor")
    if layer.op not in _ELEMENTWISE:
        unsupported(layer, f"op {layer.op.name}")
    return _ELEMENTWISE[layer.op](as_float(a), as_float(b))


_UNARY = {
    trt.UnaryOperation.EXP: torch.exp, trt.UnaryOperation.LOG: torch.log, trt.UnaryOperation.SQRT: torch.sqrt,
    trt.UnaryOperation.RECIP: torch.reciprocal, trt.UnaryOperation.ABS: torch.abs, trt.UnaryOperation.NEG: torch.neg,
    trt.UnaryOperation.ERF: torch.erf, trt.UnaryOperation.FLOOR: torch.floor, trt.UnaryOperation.CEIL: torch.ceil,
    trt.UnaryOperation.SIN: torch.sin, trt.UnaryOperation.COS: torch.cos, trt.UnaryOperation.NOT: torch.logical_not,
    trt.UnaryOperation.SIGN: torch.sign, trt.UnaryOperation.ROUND: torch.round, trt.UnaryOperation.TAN: torch.tan,
    trt.UnaryOperation.ISINF: torch.isinf, trt.UnaryOperation.ISNAN: torch.isnan,
}


@handles(trt.LayerType.UNARY, trt.IUnaryLayer)
def _unary(layer, ins):
    if layer.op not in _UNARY:
        unsupported(layer, f"op {layer.op.name}")
    return _UNARY[layer.op](as_float(ins[0]))


@handles(trt.LayerType.ACTIVATION, trt.IActivationLayer)
def _activation(layer, ins):
    x = as_float(ins[0])
    kind = layer.type  # IActivationLayer.type is the activation kind
    table = {
        trt.ActivationType.RELU: F.relu, trt.ActivationType.SIGMOID: torch.sigmoid, trt.ActivationType.TANH: torch.tanh,
        trt.ActivationType.GELU_ERF: F.gelu, trt.ActivationType.GELU_TANH: lambda t: F.gelu(t, approximate="tanh"),
        trt.ActivationType.LEAKY_RELU: lambda t: F.leaky_relu(t, layer.alpha),
        trt.ActivationType.CLIP: lambda t: t.clamp(layer.alpha, layer.beta),
    }
    if kind not in table:
        unsupported(layer, f"activation {kind.name}")
    return table[kind](x)


@handles(trt.LayerType.SELECT, trt.ISelectLayer)
def _select(layer, ins):
    condition, then_value, else_value = ins
    return torch.where(condition.bool(), as_float(then_value), as_float(else_value))


@handles(trt.LayerType.MATRIX_MULTIPLY, trt.IMatrixMultiplyLayer)
def _matmul(layer, ins):
    a, b = (as_float(t) for t in ins)
    if layer.op0 == trt.MatrixOperation.TRANSPOSE:
        a = a.transpose(-1, -2)
    if layer.op1 == trt.MatrixOperation.TRANSPOSE:
        b = b.transpose(-1, -2)
    return torch.matmul(a, b)


@handles(trt.LayerType.CONVOLUTION, trt.IConvolutionLayer)
def _convolution(layer, ins):
    x = as_float(ins[0])
    if len(ins) < 2 or ins[1] is None:
        unsupported(layer, "kernel weights stored in the layer (expected a kernel input tensor)")
    weight = as_float(ins[1])
    bias = as_float(ins[2]) if len(ins) > 2 and ins[2] is not None else None
    if tuple(layer.pre_padding) != tuple(layer.post_padding):
        unsupported(layer, "asymmetric padding")
    conv = F.conv2d if x.dim() == 4 else F.conv3d
    return conv(x, weight, bias, tuple(layer.stride_nd), tuple(layer.padding_nd), tuple(layer.dilation_nd),
                layer.num_groups)


@handles(trt.LayerType.DECONVOLUTION, trt.IDeconvolutionLayer)
def _deconvolution(layer, ins):
    x = as_float(ins[0])
    if len(ins) < 2 or ins[1] is None:
        unsupported(layer, "kernel weights stored in the layer (expected a kernel input tensor)")
    if x.dim() != 4:
        unsupported(layer, f"rank {x.dim()} input")
    weight = as_float(ins[1])
    bias = as_float(ins[2]) if len(ins) > 2 and ins[2] is not None else None
    pre, post = tuple(layer.pre_padding), tuple(layer.post_padding)
    if any(b > a for a, b in zip(pre, post)):
        unsupported(layer, f"post-padding {post} larger than pre-padding {pre}")
    # A smaller post-padding keeps extra rows/cols at the end: torch's output_padding.
    extra = tuple(a - b for a, b in zip(pre, post))
    return F.conv_transpose2d(x, weight, bias, tuple(layer.stride_nd), pre, extra, layer.num_groups,
                              tuple(layer.dilation_nd))


@handles(trt.LayerType.POOLING, trt.IPoolingLayer)
def _pooling(layer, ins):
    x = as_float(ins[0])
    window, stride, padding = tuple(layer.window_size_nd), tuple(layer.stride_nd), tuple(layer.padding_nd)
    if x.dim() != 4:
        unsupported(layer, f"rank {x.dim()} input")
    if layer.type == trt.PoolingType.MAX:
        return F.max_pool2d(x, window, stride, padding)
    if layer.type == trt.PoolingType.AVERAGE:
        return F.avg_pool2d(x, window, stride, padding, count_include_pad=not layer.average_count_excludes_padding)
    unsupported(layer, f"pooling {layer.type.name}")


@handles(trt.LayerType.SOFTMAX, trt.ISoftMaxLayer)
def _softmax(layer, ins):
    axes = mask_axes(layer.axes, ins[0].dim())
    if len(axes) != 1:
        unsupported(layer, f"softmax over axes {axes}")
    return torch.softmax(as_float(ins[0]), dim=axes[0])


@handles(trt.LayerType.REDUCE, trt.IReduceLayer)
def _reduce(layer, ins):
    x = as_float(ins[0])
    dims = mask_axes(layer.axes, x.dim())
    if layer.op == trt.ReduceOperation.AVG:
        return x.mean(dim=dims, keepdim=layer.keep_dims)
    if layer.op == trt.ReduceOperation.SUM:
        return x.sum(dim=dims, keepdim=layer.keep_dims)
    if layer.op == trt.ReduceOperation.MAX:
        return x.amax(dim=dims, keepdim=layer.keep_dims)
    if layer.op == trt.ReduceOperation.MIN:
        return x.amin(dim=dims, keepdim=layer.keep_dims)
    if layer.op == trt.ReduceOperation.PROD:
        out = x
        for d in sorted(dims, reverse=True):
            out = out.prod(dim=d, keepdim=layer.keep_dims)
        return out
    unsupported(layer, f"reduce {layer.op.name}")


# INormalizationLayer, as TensorRT-RTX documents it:
# - Operator page "Normalization"
#   (https://docs.nvidia.com/deeplearning/tensorrt-rtx/latest/_static/operators/Normalization.html):
#   Y = (X - Mean(X, axes)) / sqrt(Var(X, axes) + epsilon) * S + B, Var the biased variance (the mean
#   of squared deviations); input, scale, bias and output are one type T1 in {float32, float16,
#   bfloat16}; epsilon defaults to 1e-5. Scale and bias have the input's rank and broadcast to it.
# - num_groups (INormalizationLayer::setNbGroups, NvInfer.h; default 1): the channels are dim 1 of an
#   [N, C, D1, ...] input; num_groups must divide C; when it is not 1 the axes mask has exactly the
#   bits of the dims after the channel dim set. Each group of C / num_groups consecutive channels is
#   normalized over its channels and those dims, per batch row.
# - Scale and bias with num_groups != 1 (docstrings of add_normalization / add_normalization_v2 in the
#   tensorrt_rtx 1.7 Python bindings; the operator page shows the first rule): [1, G, 1, ...], one
#   value per group, for a layer made by add_normalization (is_v2 False, deprecated since TensorRT
#   10.15); [1, C, 1, ...], one value per channel, for add_normalization_v2 (is_v2 True).
# - compute_precision: the tensorrt_rtx 1.7 bindings do not expose it (networks are strongly typed).
#   This model computes in fp32 and run_network rounds the result to T1: exact for an fp32 layer; an
#   fp16 or bf16 layer may accumulate differently on the GPU.
_NORMALIZATION_TYPES = (torch.float32, torch.float16, torch.bfloat16)


def _standardized(x, dims, eps):
    mean = x.mean(dim=dims, keepdim=True)
    centered = x - mean
    return centered * torch.rsqrt(centered.square().mean(dim=dims, keepdim=True) + eps)


def _check_normalization_operands(layer, x, scale, bias):
    if not (x.dtype == scale.dtype == bias.dtype) or x.dtype not in _NORMALIZATION_TYPES:
        invalid(layer, f"input, scale and bias of types {x.dtype}, {scale.dtype}, {bias.dtype}",
                "one type among float32, float16 and bfloat16")
    if scale.shape != bias.shape or scale.dim() != x.dim():
        invalid(layer, f"scale {tuple(scale.shape)} and bias {tuple(bias.shape)} for an input {tuple(x.shape)}",
                "scale and bias of one shape, with the input's rank")


def _group_normalization(layer, x, scale, bias):
    groups, rank = layer.num_groups, x.dim()
    if rank < 3:
        invalid(layer, f"num_groups={groups} on a rank-{rank} input", "an [N, C, D1, ...] input")
    channels, after_channels = x.shape[1], sum(1 << d for d in range(2, rank))
    if layer.axes != after_channels:
        invalid(layer, f"axes mask {layer.axes:#x} with num_groups={groups}",
                f"the mask of the dims after the channel dim, {after_channels:#x}")
    if groups < 1 or channels % groups:
        invalid(layer, f"num_groups={groups} for {channels} channels", "a group count that divides the channels")
    per = channels if layer.is_v2 else groups
    expected = (1, per) + (1,) * (rank - 2)
    if tuple(scale.shape) != expected:
        made_by = "add_normalization_v2 (one per channel)" if layer.is_v2 else "add_normalization (one per group)"
        invalid(layer, f"scale and bias of shape {tuple(scale.shape)}", f"{expected} from {made_by}")
    x, scale, bias = as_float(x), as_float(scale), as_float(bias)
    grouped = _standardized(x.reshape(x.shape[0], groups, -1), [2], layer.epsilon)
    if layer.is_v2:
        return grouped.reshape(x.shape) * scale + bias
    return (grouped * scale.reshape(1, groups, 1) + bias.reshape(1, groups, 1)).reshape(x.shape)


@handles(trt.LayerType.NORMALIZATION, trt.INormalizationLayer)
def _normalization(layer, ins):
    x, scale, bias = ins[:3]
    _check_normalization_operands(layer, x, scale, bias)
    if layer.num_groups != 1:
        return _group_normalization(layer, x, scale, bias)
    dims = mask_axes(layer.axes, x.dim())
    return _standardized(as_float(x), dims, layer.epsilon) * as_float(scale) + as_float(bias)


@handles(trt.LayerType.CUMULATIVE, trt.ICumulativeLayer)
def _cumulative(layer, ins):
    if layer.op != trt.CumulativeOperation.SUM:
        unsupported(layer, f"cumulative op {layer.op.name}")
    x = ins[0] if not ins[0].is_floating_point() else as_float(ins[0])  # integer sums stay exact
    axis = int(ins[1].reshape(()).item())
    axis = axis + x.dim() if axis < 0 else axis
    if layer.reverse:
        x = x.flip(axis)
    out = x.cumsum(axis)
    if layer.exclusive:
        out = out - x
    return out.flip(axis) if layer.reverse else out


@handles(trt.LayerType.TOPK, trt.ITopKLayer)
def _topk(layer, ins):
    """(values, indices) of the k largest (MAX) or smallest (MIN) along the one reduced axis, sorted.
    TensorRT does not document which of two equal values comes first; this model puts the lower
    index first (a stable sort), so indices of ties are the model's choice, values are exact."""
    x = ins[0]
    axes = mask_axes(layer.axes, x.dim())
    if len(axes) != 1:
        unsupported(layer, f"top-k over axes {axes}")
    k = int(ins[1].reshape(-1)[0]) if len(ins) > 1 and ins[1] is not None else layer.k
    largest = layer.op == trt.TopKOperation.MAX
    values, indices = torch.sort(as_float(x), dim=axes[0], descending=largest, stable=True)
    keep = torch.arange(k)
    return values.index_select(axes[0], keep), indices.index_select(axes[0], keep)


@handles(trt.LayerType.IDENTITY, trt.IIdentityLayer)
def _identity(layer, ins):
    return ins[0]
