"""Run a built INetworkDefinition layer by layer with torch on the CPU.

    outputs = run_network(network, {"input_0": x})                  # network outputs by name
    outputs, values = run_network(network, feeds, keep_all=True)    # plus every tensor by name

This is the converters' test oracle and the engine of `torch_tensorrt_rtx.verify`. It covers the
layer types and attributes our converters emit, not all of TensorRT: any other layer type, or
an attribute value it does not model, raises `UnsupportedLayerError` naming the layer.

Precision model: each floating-point layer computes in fp32 (integer shape math stays integer) and
rounds its result to the layer's output dtype, which is what TensorRT's strongly typed
kernels do up to accumulation order.
"""
from __future__ import annotations

from typing import Callable, Dict, Mapping, Tuple

import tensorrt_rtx as trt
import torch
import torch.nn.functional as F

from torch_tensorrt_rtx.dynamo.conversion._context import to_torch_dtype

Tensor = torch.Tensor


class UnsupportedLayerError(NotImplementedError):
    """The reference executor does not model this layer (type or attribute)."""


_CLASSES = {
    trt.LayerType.CONSTANT: trt.IConstantLayer, trt.LayerType.CAST: trt.ICastLayer,
    trt.LayerType.ELEMENTWISE: trt.IElementWiseLayer, trt.LayerType.UNARY: trt.IUnaryLayer,
    trt.LayerType.ACTIVATION: trt.IActivationLayer, trt.LayerType.MATRIX_MULTIPLY: trt.IMatrixMultiplyLayer,
    trt.LayerType.CONVOLUTION: trt.IConvolutionLayer, trt.LayerType.POOLING: trt.IPoolingLayer,
    trt.LayerType.SHUFFLE: trt.IShuffleLayer, trt.LayerType.SHAPE: trt.IShapeLayer,
    trt.LayerType.GATHER: trt.IGatherLayer, trt.LayerType.CONCATENATION: trt.IConcatenationLayer,
    trt.LayerType.SOFTMAX: trt.ISoftMaxLayer, trt.LayerType.REDUCE: trt.IReduceLayer,
    trt.LayerType.UNSQUEEZE: trt.IUnsqueezeLayer, trt.LayerType.SQUEEZE: trt.ISqueezeLayer,
    trt.LayerType.IDENTITY: trt.IIdentityLayer,
}

_HANDLERS: Dict["trt.LayerType", Callable] = {}


def _handles(layer_type):
    def register(fn):
        _HANDLERS[layer_type] = fn
        return fn

    return register


def _unsupported(layer, what):
    raise UnsupportedLayerError(f"reference executor: layer {layer.name!r} ({layer.type.name}) uses {what}, "
                                "which is not modelled")


def _float(x: Tensor) -> Tensor:
    return x.float() if x.is_floating_point() else x


def _axes(mask: int, rank: int):
    return [d for d in range(rank) if mask & (1 << d)]


@_handles(trt.LayerType.CONSTANT)
def _constant(layer, ins):
    weights = torch.from_numpy(layer.weights.copy()) if layer.weights.size else torch.empty(0)
    return weights.reshape(tuple(layer.shape))


@_handles(trt.LayerType.CAST)
def _cast(layer, ins):
    return ins[0].to(to_torch_dtype(layer.to_type))


_ELEMENTWISE = {
    trt.ElementWiseOperation.SUM: torch.add, trt.ElementWiseOperation.SUB: torch.sub,
    trt.ElementWiseOperation.PROD: torch.mul, trt.ElementWiseOperation.MAX: torch.maximum,
    trt.ElementWiseOperation.MIN: torch.minimum, trt.ElementWiseOperation.POW: torch.pow,
    trt.ElementWiseOperation.EQUAL: torch.eq, trt.ElementWiseOperation.GREATER: torch.gt,
    trt.ElementWiseOperation.LESS: torch.lt,
}


@_handles(trt.LayerType.ELEMENTWISE)
def _elementwise(layer, ins):
    a, b = ins
    if layer.op == trt.ElementWiseOperation.DIV:
        if a.is_floating_point():
            return _float(a) / _float(b)
        return torch.div(a, b, rounding_mode="trunc")
    if layer.op == trt.ElementWiseOperation.FLOOR_DIV:
        return torch.div(a, b, rounding_mode="floor")
    if layer.op not in _ELEMENTWISE:
        _unsupported(layer, f"op {layer.op.name}")
    return _ELEMENTWISE[layer.op](_float(a), _float(b))


_UNARY = {
    trt.UnaryOperation.EXP: torch.exp, trt.UnaryOperation.LOG: torch.log, trt.UnaryOperation.SQRT: torch.sqrt,
    trt.UnaryOperation.RECIP: torch.reciprocal, trt.UnaryOperation.ABS: torch.abs, trt.UnaryOperation.NEG: torch.neg,
    trt.UnaryOperation.ERF: torch.erf, trt.UnaryOperation.FLOOR: torch.floor, trt.UnaryOperation.CEIL: torch.ceil,
    trt.UnaryOperation.SIN: torch.sin, trt.UnaryOperation.COS: torch.cos, trt.UnaryOperation.NOT: torch.logical_not,
}


@_handles(trt.LayerType.UNARY)
def _unary(layer, ins):
    if layer.op not in _UNARY:
        _unsupported(layer, f"op {layer.op.name}")
    return _UNARY[layer.op](_float(ins[0]))


@_handles(trt.LayerType.ACTIVATION)
def _activation(layer, ins):
    x = _float(ins[0])
    kind = layer.type  # IActivationLayer.type is the activation kind
    table = {
        trt.ActivationType.RELU: F.relu, trt.ActivationType.SIGMOID: torch.sigmoid, trt.ActivationType.TANH: torch.tanh,
        trt.ActivationType.GELU_ERF: F.gelu, trt.ActivationType.GELU_TANH: lambda t: F.gelu(t, approximate="tanh"),
    }
    if kind not in table:
        _unsupported(layer, f"activation {kind.name}")
    return table[kind](x)


@_handles(trt.LayerType.MATRIX_MULTIPLY)
def _matmul(layer, ins):
    a, b = (_float(t) for t in ins)
    if layer.op0 == trt.MatrixOperation.TRANSPOSE:
        a = a.transpose(-1, -2)
    if layer.op1 == trt.MatrixOperation.TRANSPOSE:
        b = b.transpose(-1, -2)
    return torch.matmul(a, b)


@_handles(trt.LayerType.CONVOLUTION)
def _convolution(layer, ins):
    x = _float(ins[0])
    if len(ins) < 2 or ins[1] is None:
        _unsupported(layer, "kernel weights stored in the layer (expected a kernel input tensor)")
    weight = _float(ins[1])
    bias = _float(ins[2]) if len(ins) > 2 and ins[2] is not None else None
    if tuple(layer.pre_padding) != tuple(layer.post_padding):
        _unsupported(layer, "asymmetric padding")
    conv = F.conv2d if x.dim() == 4 else F.conv3d
    return conv(x, weight, bias, tuple(layer.stride_nd), tuple(layer.padding_nd), tuple(layer.dilation_nd),
                layer.num_groups)


@_handles(trt.LayerType.POOLING)
def _pooling(layer, ins):
    x = _float(ins[0])
    window, stride, padding = tuple(layer.window_size_nd), tuple(layer.stride_nd), tuple(layer.padding_nd)
    if x.dim() != 4:
        _unsupported(layer, f"rank {x.dim()} input")
    if layer.type == trt.PoolingType.MAX:
        return F.max_pool2d(x, window, stride, padding)
    if layer.type == trt.PoolingType.AVERAGE:
        return F.avg_pool2d(x, window, stride, padding, count_include_pad=not layer.average_count_excludes_padding)
    _unsupported(layer, f"pooling {layer.type.name}")


@_handles(trt.LayerType.SHUFFLE)
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


@_handles(trt.LayerType.SHAPE)
def _shape(layer, ins):
    return torch.tensor(list(ins[0].shape), dtype=torch.int64)


@_handles(trt.LayerType.GATHER)
def _gather(layer, ins):
    if layer.mode != trt.GatherMode.DEFAULT or layer.num_elementwise_dims != 0:
        _unsupported(layer, f"gather mode {layer.mode.name}")
    data, index = ins
    return torch.index_select(data, layer.axis, index.reshape(-1).long()).reshape(
        data.shape[:layer.axis] + index.shape + data.shape[layer.axis + 1:])


@_handles(trt.LayerType.CONCATENATION)
def _concat(layer, ins):
    return torch.cat([_float(t) if t.is_floating_point() else t for t in ins], dim=layer.axis)


@_handles(trt.LayerType.SOFTMAX)
def _softmax(layer, ins):
    axes = _axes(layer.axes, ins[0].dim())
    if len(axes) != 1:
        _unsupported(layer, f"softmax over axes {axes}")
    return torch.softmax(_float(ins[0]), dim=axes[0])


@_handles(trt.LayerType.REDUCE)
def _reduce(layer, ins):
    x = _float(ins[0])
    dims = _axes(layer.axes, x.dim())
    if layer.op == trt.ReduceOperation.AVG:
        return x.mean(dim=dims, keepdim=layer.keep_dims)
    if layer.op == trt.ReduceOperation.SUM:
        return x.sum(dim=dims, keepdim=layer.keep_dims)
    if layer.op == trt.ReduceOperation.MAX:
        return x.amax(dim=dims, keepdim=layer.keep_dims)
    _unsupported(layer, f"reduce {layer.op.name}")


@_handles(trt.LayerType.UNSQUEEZE)
def _unsqueeze(layer, ins):
    x, axes = ins[0], sorted(int(a) for a in ins[1].reshape(-1).tolist())
    rank = x.dim() + len(axes)
    for a in sorted(a + rank if a < 0 else a for a in axes):
        x = x.unsqueeze(a)
    return x


@_handles(trt.LayerType.SQUEEZE)
def _squeeze(layer, ins):
    x, axes = ins[0], [int(a) for a in ins[1].reshape(-1).tolist()]
    return x.squeeze(tuple(a + x.dim() if a < 0 else a for a in axes))


@_handles(trt.LayerType.IDENTITY)
def _identity(layer, ins):
    return ins[0]


def _typed(layer) -> "trt.ILayer":
    # The Python bindings return a plain ILayer; re-class it to read type-specific attributes.
    cls = _CLASSES.get(layer.type)
    if cls is None or layer.type not in _HANDLERS:
        raise UnsupportedLayerError(
            f"reference executor: layer {layer.name!r} has type {layer.type.name}, which it does not model; "
            f"modelled types: {sorted(t.name for t in _HANDLERS)}")
    layer.__class__ = cls
    return layer


def _topological_layers(network):
    """Layers in an order where producers come first. Insertion order is not enough: a layer's
    input can be set (set_input) to a tensor whose producer was added later."""
    layers = []
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        layer_type = layer.type
        layers.append((layer_type, _typed(layer)))
    available = {network.get_input(i).name for i in range(network.num_inputs)}
    ordered, pending = [], layers
    while pending:
        waiting = []
        for layer_type, layer in pending:
            needs = [layer.get_input(k).name for k in range(layer.num_inputs) if layer.get_input(k) is not None]
            if all(n in available for n in needs):
                ordered.append((layer_type, layer))
                available.update(layer.get_output(o).name for o in range(layer.num_outputs))
            else:
                waiting.append((layer_type, layer))
        if len(waiting) == len(pending):
            raise UnsupportedLayerError(f"reference executor: layers {[l.name for _, l in waiting]} have inputs "
                                        "no layer produces (a cycle)")
        pending = waiting
    return ordered


def run_network(network: "trt.INetworkDefinition", feeds: Mapping[str, Tensor], keep_all: bool = False):
    """Execute `network` on CPU. `feeds` maps input names to tensors (any device; moved to CPU)."""
    values: Dict[str, Tensor] = {}
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        if tensor.name not in feeds:
            raise KeyError(f"reference executor: no value for network input {tensor.name!r}")
        value = feeds[tensor.name].detach().cpu()
        expected = to_torch_dtype(tensor.dtype)
        if value.dtype != expected:
            raise TypeError(f"reference executor: input {tensor.name!r} is {value.dtype}, network expects {expected}")
        values[tensor.name] = value
    for layer_type, layer in _topological_layers(network):
        ins = [values[layer.get_input(k).name] if layer.get_input(k) is not None else None
               for k in range(layer.num_inputs)]
        result = _HANDLERS[layer_type](layer, ins)
        results = result if isinstance(result, tuple) else (result,)  # a tuple: one per layer output
        for o, value in enumerate(results):
            out = layer.get_output(o)
            values[out.name] = value.to(to_torch_dtype(out.dtype)).contiguous()
    outputs = {network.get_output(i).name: values[network.get_output(i).name] for i in range(network.num_outputs)}
    return (outputs, values) if keep_all else outputs


def supported_layer_types() -> Tuple[str, ...]:
    return tuple(sorted(t.name for t in _HANDLERS))
