"""Layer norm (aten.layer_norm and aten.native_layer_norm's first output) as one INormalizationLayer.

Scale and bias go in as constants of the input dtype, reshaped to the input's rank; a missing
weight or bias becomes ones or zeros. The mean/rstd outputs of native_layer_norm are not produced,
so the validator only accepts nodes whose other outputs are unused.
"""
from __future__ import annotations

import operator

import torch

from torch_tensorrt_rtx.dynamo.conversion._context import node_dtype
from torch_tensorrt_rtx.dynamo.conversion._registry import converter
from torch_tensorrt_rtx.dynamo.conversion.converters import _layers  # noqa: F401 (reference handlers)
from torch_tensorrt_rtx.dynamo.conversion.converters._validators import all_of, float_tensors

aten = torch.ops.aten


def _constant_or_none(arg):
    return arg is None or (hasattr(arg, "op") and arg.op == "get_attr")


def _layer_norm_ok(node):
    x = node.args[0].meta["val"]
    normalized = list(node.args[1])
    if not all(isinstance(d, int) for d in x.shape[x.dim() - len(normalized):]):
        return False  # the normalized dims must be static (they size the weights)
    if not all(_constant_or_none(a) for a in node.args[2:4]):
        return False
    if node.target == aten.native_layer_norm.default:
        return all(u.target is operator.getitem and u.args[1] == 0 for u in node.users)
    return True


def layer_norm_tensor(ctx, x, normalized, weight, bias, eps, dtype):
    rank = len(x.shape)
    normalized = [int(d) for d in normalized]
    view = (1,) * (rank - len(normalized)) + tuple(normalized)
    weight = torch.ones(normalized) if weight is None else weight.detach()
    bias = torch.zeros(normalized) if bias is None else bias.detach()
    scale = ctx.constant(weight.reshape(view), dtype)
    shift = ctx.constant(bias.reshape(view), dtype)
    axes = 0
    for d in range(rank - len(normalized), rank):
        axes |= 1 << d
    layer = ctx.network.add_normalization(ctx.cast(x, dtype), scale, shift, axes)
    layer.epsilon = float(eps)
    return ctx.name(layer, "layer_norm").get_output(0)


@converter(aten.native_layer_norm.default, validator=all_of(float_tensors, _layer_norm_ok), host_weights=True)
def native_layer_norm(ctx, node, args, kwargs):
    x, normalized, weight, bias, eps = args[:5]
    return (layer_norm_tensor(ctx, x, normalized, weight, bias, eps, node_dtype(node.args[0])), None, None)


@converter(aten.layer_norm.default, validator=all_of(float_tensors, _layer_norm_ok), host_weights=True)
def layer_norm(ctx, node, args, kwargs):
    x, normalized = args[0], args[1]
    weight = args[2] if len(args) > 2 else kwargs.get("weight")
    bias = args[3] if len(args) > 3 else kwargs.get("bias")
    eps = args[4] if len(args) > 4 else kwargs.get("eps", 1e-5)
    return layer_norm_tensor(ctx, x, normalized, weight, bias, eps, node_dtype(node))
