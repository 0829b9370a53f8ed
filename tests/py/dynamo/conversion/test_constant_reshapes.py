"""Reshapes and rank-aligning unsqueezes of a network constant are done on the host: the network
gets a constant of the new shape instead of a shuffle or unsqueeze layer (which TensorRT-RTX would
fold at build time, at a cost of build time per layer). Weightless/refittable builds keep the
layers: there every constant carries its model weight's name. Numerics of whole models (linear
biases, group-norm weights) are checked by the converter tests through the reference executor."""
from __future__ import annotations

import numpy as np
import tensorrt_rtx as trt
import torch
import torch.nn as nn

from torch_tensorrt_rtx.dynamo.conversion._context import ConversionContext
from torch_tensorrt_rtx.dynamo.conversion._interpreter import trt_logger

from tests.py.dynamo.conversion.harness import compile_and_verify


def _context(name_weights: bool = False) -> ConversionContext:
    builder = trt.Builder(trt_logger())
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    ctx = ConversionContext(network, name_weights)
    ctx._builder = builder  # the network must not outlive its builder
    return ctx


def _layer_types(ctx: ConversionContext) -> list:
    return [ctx.network.get_layer(i).type for i in range(ctx.network.num_layers)]


def _producer(ctx: ConversionContext, tensor: "trt.ITensor") -> "trt.ILayer":
    for i in range(ctx.network.num_layers):
        layer = ctx.network.get_layer(i)
        if any(layer.get_output(k).name == tensor.name for k in range(layer.num_outputs)):
            return layer
    raise AssertionError(f"no layer produces {tensor.name}")


def _values(ctx: ConversionContext, tensor: "trt.ITensor") -> np.ndarray:
    layer = _producer(ctx, tensor)
    assert layer.type == trt.LayerType.CONSTANT, layer.type
    layer.__class__ = trt.IConstantLayer
    return np.array(layer.weights).reshape(tuple(layer.shape))


def test_unsqueeze_of_a_constant_is_a_constant_of_the_new_rank():
    ctx = _context()
    bias = torch.arange(4, dtype=torch.float32)
    aligned = ctx.unsqueeze_leading(ctx.constant(bias), 3)
    assert tuple(aligned.shape) == (1, 1, 4)
    assert trt.LayerType.UNSQUEEZE not in _layer_types(ctx) and trt.LayerType.SHUFFLE not in _layer_types(ctx)
    np.testing.assert_array_equal(_values(ctx, aligned), bias.reshape(1, 1, 4).numpy())
    # A second user of the same weight at the same rank gets the same constant, not a copy.
    assert ctx.unsqueeze_leading(ctx.constant(bias), 3) is aligned


def test_reshape_of_a_constant_is_folded_and_of_an_input_is_not():
    ctx = _context()
    weight = torch.arange(6, dtype=torch.float32)
    grouped = ctx.reshape(ctx.constant(weight), [1, 3, -1])
    assert tuple(grouped.shape) == (1, 3, 2)
    np.testing.assert_array_equal(_values(ctx, grouped), weight.reshape(1, 3, 2).numpy())
    x = ctx.network.add_input("x", trt.float32, (6,))
    assert tuple(ctx.reshape(x, [2, 3]).shape) == (2, 3)
    assert _layer_types(ctx).count(trt.LayerType.SHUFFLE) == 1  # the input's reshape only


def test_a_computed_tensor_is_not_folded():
    ctx = _context()
    doubled = ctx.network.add_elementwise(ctx.constant(torch.ones(4)), ctx.constant(torch.ones(4) * 2),
                                          trt.ElementWiseOperation.SUM).get_output(0)
    ctx.unsqueeze_leading(doubled, 2)
    assert trt.LayerType.UNSQUEEZE in _layer_types(ctx)


def test_weightless_builds_keep_the_layers():
    ctx = _context(name_weights=True)
    ctx.unsqueeze_leading(ctx.constant(torch.arange(4, dtype=torch.float32)), 3)
    ctx.reshape(ctx.constant(torch.arange(6, dtype=torch.float32)), [3, 2])
    types = _layer_types(ctx)
    assert trt.LayerType.UNSQUEEZE in types and trt.LayerType.SHUFFLE in types


class LinearGroupNorm(nn.Module):
    """Linear layers with biases (rank-aligned weights and biases) and a group norm (reshaped
    weight and bias)."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(8, 8)
        self.norm = nn.GroupNorm(2, 4)

    def forward(self, x):
        y = self.linear(x)  # [B, 4, 8]
        return self.norm(y.reshape(y.shape[0], 4, 2, 4))


def test_model_with_folded_constants_matches_pytorch():
    module = LinearGroupNorm().eval()
    _, report, _ = compile_and_verify(module, [torch.randn(2, 4, 8)])
    assert not report.fallback_ops and len(report.engines) == 1, report.format()
