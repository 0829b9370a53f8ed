"""Normalization: batch norm in inference mode, layer norm, group norm.

Each is converted both as export leaves it (aten.batch_norm, aten.layer_norm, aten.group_norm)
and as its decomposition (the native_* ops), so the graph need not be decomposed first.

- Batch norm is folded into one scale and one shift per channel; the fold runs in fp32 on the
  host and the resulting constants are cast to the input dtype.
- Layer norm (aten.layer_norm and aten.native_layer_norm's first output) is one
  INormalizationLayer. Scale and bias go in as constants of the input dtype, reshaped to the
  input's rank; a missing weight or bias becomes ones or zeros.
- Group norm is computed in fp32 whatever the input dtype (normalization statistics stay fp32) and
  rounded to the input dtype once. On an [N, C, D1, ...] input it is one INormalizationLayer
  (add_normalization_v2 with num_groups; its rules are written down with the reference executor's
  model, verification/reference_layers.py); on an [N, C] input, where that layer has no dims to
  normalize over, it is built from reductions.

Only the normalized output is produced (not native_*_norm's mean/rstd), so the validators accept
only nodes whose other outputs are unused.
"""
from __future__ import annotations

import operator

import tensorrt_rtx as trt
import torch

from torch_tensorrt_rtx.dynamo.conversion._context import node_dtype
from torch_tensorrt_rtx.dynamo.conversion._registry import Refusal, converter
from torch_tensorrt_rtx.dynamo.conversion.converters._validators import all_of, float_tensors
from torch_tensorrt_rtx.dynamo.conversion.converters.elementwise import elementwise_tensors

aten = torch.ops.aten
F32 = torch.float32


def _is_param(arg):
    """None or a constant of the graph (a weight): the converters read it on the host."""
    return arg is None or (hasattr(arg, "op") and arg.op == "get_attr")


def _bn_ok(node):
    # weight, bias, running_mean, running_var must be constants; only output 0 is produced.
    if not all(_is_param(a) for a in node.args[1:5]):
        return Refusal("weight, bias or running statistics are graph inputs or computed, not constants: this converter "
                       "folds them on the host")
    users_ok = node.target == aten.batch_norm.default or all(
        u.target is operator.getitem and u.args[1] == 0 for u in node.users)
    channels = node.args[0].meta["val"].shape[1]
    return users_ok and isinstance(channels, int)


def _batch_norm_inference_ok(node):
    """aten.batch_norm outside training, as export leaves it (its decomposition is the op above)."""
    if node.args[5] if len(node.args) > 5 else node.kwargs.get("training", False):
        return Refusal("batch norm in training mode: computes batch statistics")
    if node.args[3] is None or node.args[4] is None:
        return Refusal("batch norm without running statistics")
    return _bn_ok(node)


@converter(aten._native_batch_norm_legit_no_training.default, validator=all_of(float_tensors, _bn_ok), host_weights=True)
def batch_norm(ctx, node, args, kwargs):
    x, weight, bias, mean, var, _momentum, eps = args[:7]
    return (_batch_norm_tensor(ctx, node, x, weight, bias, mean, var, eps), None, None)


@converter(aten.batch_norm.default, validator=all_of(float_tensors, _batch_norm_inference_ok), host_weights=True)
def batch_norm_inference(ctx, node, args, kwargs):
    x, weight, bias, mean, var, _training, _momentum, eps = args[:8]
    return _batch_norm_tensor(ctx, node, x, weight, bias, mean, var, eps)


def _batch_norm_tensor(ctx, node, x, weight, bias, mean, var, eps):
    channels = x.shape[1]
    f32 = dict(dtype=torch.float32)
    weight = torch.ones(channels, **f32) if weight is None else weight.float()
    bias = torch.zeros(channels, **f32) if bias is None else bias.float()
    scale = weight / torch.sqrt(var.float() + eps)
    shift = bias - mean.float() * scale
    view = (1, channels) + (1,) * (len(x.shape) - 2)
    dtype = node_dtype(node.args[0])
    out = elementwise_tensors(ctx, x, scale.reshape(view), trt.ElementWiseOperation.PROD, dtype)
    return elementwise_tensors(ctx, out, shift.reshape(view), trt.ElementWiseOperation.SUM, dtype)


# -- layer norm ---------------------------------------------------------------------------------
def _layer_norm_ok(node):
    x = node.args[0].meta["val"]
    normalized = list(node.args[1])
    if not all(isinstance(d, int) for d in x.shape[x.dim() - len(normalized):]):
        return False  # the normalized dims must be static (they size the weights)
    if not all(_is_param(a) for a in node.args[2:4]):
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


# -- group norm ---------------------------------------------------------------------------------
def _group_norm_ok(node):
    x = node.args[0].meta["val"]
    # Channels and group count size the reshapes; only the normalized output may be used.
    if node.target == aten.group_norm.default:
        return isinstance(x.shape[1], int) and x.dim() >= 2 and isinstance(node.args[1], int)
    return (isinstance(x.shape[1], int) and x.dim() >= 2 and isinstance(node.args[6], int)
            and all(u.target is operator.getitem and u.args[1] == 0 for u in node.users))


def _reduce_mean_last(ctx, x):
    layer = ctx.network.add_reduce(x, trt.ReduceOperation.AVG, 1 << (len(x.shape) - 1), True)
    return ctx.name(layer, "group_mean").get_output(0)


@converter(aten.native_group_norm.default, validator=all_of(float_tensors, _group_norm_ok))
def native_group_norm(ctx, node, args, kwargs):
    x, weight, bias, _n, channels, _hw, groups, eps = args[:8]
    return (_group_norm_tensor(ctx, node, x, weight, bias, channels, groups, eps), None, None)


@converter(aten.group_norm.default, validator=all_of(float_tensors, _group_norm_ok))
def group_norm(ctx, node, args, kwargs):
    """aten.group_norm(input, num_groups, weight, bias, eps), as export leaves it."""
    x, groups = args[0], args[1]
    weight = args[2] if len(args) > 2 else kwargs.get("weight")
    bias = args[3] if len(args) > 3 else kwargs.get("bias")
    eps = args[4] if len(args) > 4 else kwargs.get("eps", 1e-5)
    return _group_norm_tensor(ctx, node, x, weight, bias, node.args[0].meta["val"].shape[1], groups, eps)


def _group_norm_tensor(ctx, node, x, weight, bias, channels, groups, eps):
    """(x - mean) / sqrt(var + eps) over each group of C/G channels x spatial dims, then weight and
    bias per channel; computed in fp32 whatever the input dtype and rounded to it once."""
    dtype = node_dtype(node.args[0])
    x32 = ctx.cast(x, F32)
    rank, channels, groups = len(x.shape), int(channels), int(groups)
    if rank < 3:
        out = _group_norm_from_reductions(ctx, x32, channels, groups, eps)
        return ctx.cast(_per_channel_affine(ctx, out, weight, bias, rank), dtype)
    view = [1, channels] + [1] * (rank - 2)
    scale = ctx.reshape(ctx.as_tensor(torch.ones(channels) if weight is None else weight, F32), view)
    shift = ctx.reshape(ctx.as_tensor(torch.zeros(channels) if bias is None else bias, F32), view)
    first = 1 if groups == 1 else 2  # one group: normalize over the channels too, as a layer norm
    layer = ctx.network.add_normalization_v2(x32, scale, shift, sum(1 << d for d in range(first, rank)))
    layer.epsilon = float(eps)
    if groups != 1:
        layer.num_groups = groups
    return ctx.cast(ctx.name(layer, "group_norm").get_output(0), dtype)


def _group_norm_from_reductions(ctx, x32, channels, groups, eps):
    """Group norm of an fp32 [N, C] input without weight and bias: reductions over [N, G, C/G]
    (no -1 in the reshape: it cannot be inferred when N is 0)."""
    batch = x32.shape[0] if x32.shape[0] >= 0 else ctx.dim_of(x32, 0)
    grouped = ctx.reshape(x32, [batch, groups, channels // groups])
    mean = _reduce_mean_last(ctx, grouped)
    centered = elementwise_tensors(ctx, grouped, mean, trt.ElementWiseOperation.SUB, F32)
    var = _reduce_mean_last(ctx, elementwise_tensors(ctx, centered, centered, trt.ElementWiseOperation.PROD, F32))
    std = ctx.name(ctx.network.add_unary(elementwise_tensors(ctx, var, float(eps), trt.ElementWiseOperation.SUM, F32),
                                         trt.UnaryOperation.SQRT), "group_std").get_output(0)
    normalized = elementwise_tensors(ctx, centered, std, trt.ElementWiseOperation.DIV, F32)
    layer = ctx.network.add_shuffle(normalized)
    layer.set_input(1, ctx.shape_of(x32))
    layer.zero_is_placeholder = False
    return ctx.name(layer, "group_unflatten").get_output(0)


def _per_channel_affine(ctx, out, weight, bias, rank):
    view = [1, -1] + [1] * (rank - 2)
    if weight is not None:
        out = elementwise_tensors(ctx, out, ctx.reshape(ctx.as_tensor(weight, F32), view),
                                  trt.ElementWiseOperation.PROD, F32)
    if bias is not None:
        out = elementwise_tensors(ctx, out, ctx.reshape(ctx.as_tensor(bias, F32), view),
                                  trt.ElementWiseOperation.SUM, F32)
    return out
