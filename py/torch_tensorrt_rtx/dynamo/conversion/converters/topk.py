"""aten.topk as one ITopKLayer: values and int64 indices along one dim (RT-DETR's query selection).

TensorRT-RTX's top-k takes k as a build-time constant of at most 3840, reduces one of the input's
last four dims, and always returns its k elements sorted (largest first for MAX, smallest first for
MIN). Calls outside that stay in PyTorch with the reason: a symbolic k, k above the limit, k = 0,
an earlier dim of a rank > 4 input, and `sorted=False`, whose element order PyTorch leaves to the
kernel (its CPU kernel returns them unsorted), so an engine's sorted answer would not match eager.
Which of two equal values comes first is not documented by TensorRT; indices of ties may differ.
"""
from __future__ import annotations

import tensorrt_rtx as trt
import torch

from torch_tensorrt_rtx.dynamo.conversion._context import normalize_axis
from torch_tensorrt_rtx.dynamo.conversion._registry import Refusal, converter
from torch_tensorrt_rtx.dynamo.conversion.converters._validators import dtypes_in

aten = torch.ops.aten
MAX_K = 3840  # ITopKLayer's documented limit ("Currently only values of K up to 3840 are supported")
_TOPK_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.int32, torch.int64)


def _topk_args(args, kwargs):
    """(k, dim, largest, sorted) of a topk call, defaults filled in."""
    names = ("k", "dim", "largest", "sorted")
    defaults = (None, -1, True, True)
    return tuple(args[1 + i] if len(args) > 1 + i else kwargs.get(name, default)
                 for i, (name, default) in enumerate(zip(names, defaults)))


def _topk_ok(node):
    k, dim, _, is_sorted = _topk_args(node.args, node.kwargs)
    rank = node.args[0].meta["val"].dim()
    if not dtypes_in(node, _TOPK_DTYPES):
        return dtypes_in(node, _TOPK_DTYPES)
    if not isinstance(k, int):
        return Refusal(f"k={k} is a symbolic size: TensorRT-RTX's top-k takes k as a build-time constant")
    if not 1 <= k <= MAX_K:
        return Refusal(f"k={k}: TensorRT-RTX's top-k supports 1 <= k <= {MAX_K}")
    if rank == 0:
        return Refusal("0-d input: TensorRT-RTX's top-k reduces a dim of a tensor of rank >= 1")
    if normalize_axis(dim, rank) < rank - 4:
        return Refusal(f"dim={dim} of a rank-{rank} input: TensorRT-RTX's top-k reduces one of the last four dims")
    if not is_sorted:
        return Refusal("sorted=False: TensorRT-RTX's top-k always sorts, PyTorch's unsorted order is the kernel's own")
    return True


@converter(aten.topk.default, validator=_topk_ok)
def topk(ctx, node, args, kwargs):
    x = args[0]
    k, dim, largest, _ = _topk_args(args, kwargs)
    op = trt.TopKOperation.MAX if largest else trt.TopKOperation.MIN
    layer = ctx.network.add_topk(x, op, k, 1 << normalize_axis(dim, len(x.shape)), trt.int64)
    ctx.name(layer, "topk")
    return layer.get_output(0), layer.get_output(1)
