"""Batch norm in inference mode, folded into one scale and one shift per channel.

The fold runs in fp32 on the host; the resulting constants are cast to the input dtype.
"""
from __future__ import annotations

import operator

import tensorrt_rtx as trt
import torch

from torch_tensorrt_rtx.dynamo.conversion._context import node_dtype
from torch_tensorrt_rtx.dynamo.conversion._registry import converter
from torch_tensorrt_rtx.dynamo.conversion.converters._validators import all_of, float_tensors
from torch_tensorrt_rtx.dynamo.conversion.converters.elementwise import elementwise_tensors

aten = torch.ops.aten


def _is_param(arg):
    return arg is None or (hasattr(arg, "op") and arg.op == "get_attr")


def _bn_ok(node):
    # weight, bias, running_mean, running_var must be constants; only output 0 is produced.
    params_const = all(_is_param(a) for a in node.args[1:5])
    users_ok = all(u.target is operator.getitem and u.args[1] == 0 for u in node.users)
    channels = node.args[0].meta["val"].shape[1]
    return params_const and users_ok and isinstance(channels, int)


@converter(aten._native_batch_norm_legit_no_training.default, validator=all_of(float_tensors, _bn_ok), host_weights=True)
def batch_norm(ctx, node, args, kwargs):
    x, weight, bias, mean, var, _momentum, eps = args[:7]
    channels = x.shape[1]
    f32 = dict(dtype=torch.float32)
    weight = torch.ones(channels, **f32) if weight is None else weight.float()
    bias = torch.zeros(channels, **f32) if bias is None else bias.float()
    scale = weight / torch.sqrt(var.float() + eps)
    shift = bias - mean.float() * scale
    view = (1, channels) + (1,) * (len(x.shape) - 2)
    dtype = node_dtype(node.args[0])
    out = elementwise_tensors(ctx, x, scale.reshape(view), trt.ElementWiseOperation.PROD, dtype)
    out = elementwise_tensors(ctx, out, shift.reshape(view), trt.ElementWiseOperation.SUM, dtype)
    return (out, None, None)
