"""Run a built INetworkDefinition layer by layer with torch on the CPU.

    outputs = run_network(network, {"input_0": x})                  # network outputs by name
    outputs, values = run_network(network, feeds, keep_all=True)    # plus every tensor by name

This is the converters' test oracle and the engine of `torch_tensorrt_rtx.verify`. It covers the
layer types and attributes our converters emit, not all of TensorRT: any other layer type, or
an attribute value it does not model, raises `UnsupportedLayerError` naming the layer; a layer
that breaks a documented rule of TensorRT-RTX (a shape or type it would refuse) raises
`InvalidLayerError`. Each layer
type's handler is registered once, in reference_layers.py (arithmetic) or reference_data_layers.py
(data movement and sampling), into the table of _layer_registry.py.

Precision model: each floating-point layer computes in fp32 (integer shape math stays integer) and
rounds its result to the layer's output dtype, which is what TensorRT's strongly typed
kernels do up to accumulation order.
"""
from __future__ import annotations

from typing import Dict, Mapping

import tensorrt_rtx as trt
import torch

from torch_tensorrt_rtx.dynamo.conversion._context import to_torch_dtype
from torch_tensorrt_rtx.dynamo.verification import reference_data_layers, reference_layers  # noqa: F401  (handlers)
from torch_tensorrt_rtx.dynamo.verification._layer_registry import InvalidLayerError, UnsupportedLayerError, handler_for

__all__ = ["InvalidLayerError", "UnsupportedLayerError", "run_network"]
Tensor = torch.Tensor


def _topological_layers(network):
    """Layers in an order where producers come first. Insertion order is not enough: a layer's
    input can be set (set_input) to a tensor whose producer was added later."""
    layers = []
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        layers.append((handler_for(layer), layer))
    available = {network.get_input(i).name for i in range(network.num_inputs)}
    ordered, pending = [], layers
    while pending:
        waiting = []
        for handler, layer in pending:
            needs = [layer.get_input(k).name for k in range(layer.num_inputs) if layer.get_input(k) is not None]
            if all(n in available for n in needs):
                ordered.append((handler, layer))
                available.update(layer.get_output(o).name for o in range(layer.num_outputs))
            else:
                waiting.append((handler, layer))
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
    for handler, layer in _topological_layers(network):
        ins = [values[layer.get_input(k).name] if layer.get_input(k) is not None else None
               for k in range(layer.num_inputs)]
        result = handler(layer, ins)
        results = result if isinstance(result, tuple) else (result,)  # a tuple: one per layer output
        for o, value in enumerate(results):
            out = layer.get_output(o)
            values[out.name] = value.to(to_torch_dtype(out.dtype)).contiguous()
    outputs = {network.get_output(i).name: values[network.get_output(i).name] for i in range(network.num_outputs)}
    return (outputs, values) if keep_all else outputs
