"""avg_pool2d (floor mode, no divisor override) as an IPoolingLayer of type AVERAGE."""
from __future__ import annotations

import tensorrt_rtx as trt
import torch

from torch_tensorrt_rtx.dynamo.conversion._registry import converter
from torch_tensorrt_rtx.dynamo.conversion.converters import _layers  # noqa: F401 (reference handlers)
from torch_tensorrt_rtx.dynamo.conversion.converters._validators import all_of, float_tensors

aten = torch.ops.aten


def _pair(value):
    value = list(value) if isinstance(value, (list, tuple)) else [value]
    return tuple(int(v) for v in (value * 2 if len(value) == 1 else value))


def _args(args, kwargs):
    args = list(args) + [None] * (7 - len(args))
    kernel = _pair(args[1])
    stride = _pair(args[2]) if args[2] else kernel
    padding = _pair(args[3]) if args[3] is not None else (0, 0)
    ceil_mode = bool(args[4] if args[4] is not None else kwargs.get("ceil_mode", False))
    include_pad = args[5] if args[5] is not None else kwargs.get("count_include_pad", True)
    divisor = args[6] if args[6] is not None else kwargs.get("divisor_override")
    return kernel, stride, padding, ceil_mode, bool(include_pad), divisor


def _avg_pool_ok(node):
    _, _, _, ceil_mode, _, divisor = _args(node.args, node.kwargs)
    return node.args[0].meta["val"].dim() == 4 and not ceil_mode and divisor is None


@converter(aten.avg_pool2d.default, validator=all_of(float_tensors, _avg_pool_ok))
def avg_pool2d(ctx, node, args, kwargs):
    kernel, stride, padding, _, include_pad, _ = _args(args, kwargs)
    layer = ctx.network.add_pooling_nd(args[0], trt.PoolingType.AVERAGE, kernel)
    layer.stride_nd = stride
    layer.padding_nd = padding
    layer.average_count_excludes_padding = not include_pad
    return ctx.name(layer, "avg_pool").get_output(0)
