"""Instance norm, and batch norm over the batch's own statistics.

- `aten.instance_norm` is kept whole (registering it takes it out of the decomposition table),
  so nn.InstanceNorm*d / F.instance_norm becomes one subgraph of reductions instead of torch's
  decomposition: a view to (1, N*C, ...) and weights repeated N times, which under a dynamic
  batch has a symbolic channel count.
- `aten._native_batch_norm_legit.no_stats` (what that decomposition, and F.batch_norm with
  training=True and no running statistics, produce) normalizes over every dim but dim 1.

Everything is computed in fp32 whatever the input dtype (fp16 squares overflow) and rounded to
the input dtype once, after the per-channel weight and bias.
Only the normalized output is produced, so `no_stats` is accepted only when its mean and rstd
outputs are unused.
"""
from __future__ import annotations

import operator

import tensorrt_rtx as trt
import torch

from torch_tensorrt_rtx.dynamo.conversion._context import node_dtype
from torch_tensorrt_rtx.dynamo.conversion._registry import converter
from torch_tensorrt_rtx.dynamo.conversion.converters._validators import float_tensors
from torch_tensorrt_rtx.dynamo.conversion.converters.elementwise import elementwise_tensors
from torch_tensorrt_rtx.dynamo.conversion.converters.unary import unary_tensor

aten = torch.ops.aten
Op = trt.ElementWiseOperation
F32 = torch.float32


def _mean(ctx, x, axes):
    layer = ctx.network.add_reduce(x, trt.ReduceOperation.AVG, axes, True)
    return ctx.name(layer, "norm_mean").get_output(0)


def _per_channel(ctx, value, rank, dtype):
    """A [C] weight/bias/statistic as [1, C, 1, ...] for broadcasting (C may be dynamic)."""
    return ctx.reshape(ctx.as_tensor(value, dtype), [1, -1] + [1] * (rank - 2))


def _standardize(ctx, centered, var, eps, weight, bias, dtype):
    """centered / sqrt(var + eps) * weight + bias, in fp32, rounded once to `dtype`."""
    rank = len(centered.shape)
    std = unary_tensor(ctx, elementwise_tensors(ctx, var, float(eps), Op.SUM, F32), trt.UnaryOperation.SQRT)
    out = elementwise_tensors(ctx, centered, std, Op.DIV, F32)
    if weight is not None:
        out = elementwise_tensors(ctx, out, _per_channel(ctx, weight, rank, F32), Op.PROD, F32)
    if bias is not None:
        out = elementwise_tensors(ctx, out, _per_channel(ctx, bias, rank, F32), Op.SUM, F32)
    return ctx.cast(out, dtype)


def normalize_over(ctx, x, axes, eps, weight, bias, dtype):
    """x standardized by its own mean and (biased) variance over the `axes` bit mask, then the
    per-channel weight and bias."""
    x32 = ctx.cast(x, F32)
    centered = elementwise_tensors(ctx, x32, _mean(ctx, x32, axes), Op.SUB, F32)
    var = _mean(ctx, elementwise_tensors(ctx, centered, centered, Op.PROD, F32), axes)
    return _standardize(ctx, centered, var, eps, weight, bias, dtype)


def _only_output_zero(node):
    return all(u.target is operator.getitem and u.args[1] == 0 for u in node.users)


def _instance_norm_ok(node):
    x = node.args[0].meta["val"]
    use_input_stats = node.args[5]
    running = node.args[3:5]
    if use_input_stats:
        # Input statistics with running buffers given means "update the buffers": not an inference op.
        return float_tensors(node) and x.dim() >= 3 and all(r is None for r in running)
    return float_tensors(node) and x.dim() >= 2 and all(r is not None for r in running)


@converter(aten.instance_norm.default, validator=_instance_norm_ok)
def instance_norm(ctx, node, args, kwargs):
    x, weight, bias, running_mean, running_var, use_input_stats, _momentum, eps = args[:8]
    dtype = node_dtype(node)
    rank = len(x.shape)
    if use_input_stats:
        return normalize_over(ctx, x, sum(1 << d for d in range(2, rank)), eps, weight, bias, dtype)
    centered = elementwise_tensors(ctx, ctx.cast(x, F32), _per_channel(ctx, running_mean, rank, F32), Op.SUB, F32)
    return _standardize(ctx, centered, _per_channel(ctx, running_var, rank, F32), eps, weight, bias, dtype)


def _no_stats_ok(node):
    return float_tensors(node) and node.args[0].meta["val"].dim() >= 2 and _only_output_zero(node)


@converter(aten._native_batch_norm_legit.no_stats, validator=_no_stats_ok)
def batch_norm_batch_statistics(ctx, node, args, kwargs):
    x, weight, bias, _training, _momentum, eps = args[:6]
    dtype = node_dtype(node.args[0])
    rank = len(x.shape)
    out = normalize_over(ctx, x, sum(1 << d for d in range(rank) if d != 1), eps, weight, bias, dtype)
    return (out, None, None)
