"""Activations: relu, sigmoid, tanh, gelu (erf and tanh), silu."""
from __future__ import annotations

import tensorrt_rtx as trt
import torch

from torch_tensorrt_rtx.dynamo.conversion._registry import Precision, converter, declare_precision
from torch_tensorrt_rtx.dynamo.conversion.converters._validators import float_tensors

aten = torch.ops.aten

# Decomposed before conversion (into clamps and arithmetic); in a graph that still
# holds them whole they follow their input's precision like the other activations.
declare_precision(Precision.FOLLOW, aten.hardswish.default, aten.hardsigmoid.default)

_SIMPLE = {
    aten.relu.default: trt.ActivationType.RELU,
    aten.sigmoid.default: trt.ActivationType.SIGMOID,
    aten.tanh.default: trt.ActivationType.TANH,
}


def _activation(ctx, x, kind):
    return ctx.name(ctx.network.add_activation(x, kind), kind.name.lower()).get_output(0)


@converter(*_SIMPLE, validator=float_tensors, precision=Precision.FOLLOW)
def simple_activation(ctx, node, args, kwargs):
    return _activation(ctx, args[0], _SIMPLE[node.target])


def _gelu_ok(node):
    return float_tensors(node) and node.kwargs.get("approximate", "none") in ("none", "tanh")


@converter(aten.gelu.default, validator=_gelu_ok, precision=Precision.FOLLOW)
def gelu(ctx, node, args, kwargs):
    approximate = kwargs.get("approximate", "none")
    kind = trt.ActivationType.GELU_TANH if approximate == "tanh" else trt.ActivationType.GELU_ERF
    return _activation(ctx, args[0], kind)


@converter(aten.silu.default, validator=float_tensors, precision=Precision.FOLLOW)
def silu(ctx, node, args, kwargs):
    x = args[0]
    sig = _activation(ctx, x, trt.ActivationType.SIGMOID)
    layer = ctx.network.add_elementwise(x, sig, trt.ElementWiseOperation.PROD)
    return ctx.name(layer, "silu").get_output(0)
