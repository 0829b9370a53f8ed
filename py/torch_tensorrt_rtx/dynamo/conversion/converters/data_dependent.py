"""Ops whose output size depends on the input's values: aten.nonzero as one INonZeroLayer, and
aten.masked_select as NonZero of the flattened mask + a gather of the flattened input.

TensorRT-RTX's NonZero layer returns the indices as a [rank, n] matrix (n = number of non-zero
elements, known only after the engine ran; columns in row-major order, as torch's rows are); the
converter transposes it to torch's [n, rank] int64 layout. The engine declares that output as
data-dependent (a null dim in its output spec) and the runtime fetches it through an output
allocator. The layer takes float32, float16, int32 and bool inputs; other dtypes and 0-d inputs
stay in PyTorch with the reason. masked_select converts when input and mask have the same shape
(a broadcast mask stays in PyTorch with the reason).

TensorRT-RTX 1.7 defines the layer but has no kernel for it: a build fails with "NonZero has no
runners that implement it" (NVIDIA/TensorRT-RTX issue 32). So the validator asks the installed
TensorRT-RTX once per process, by building a one-layer NonZero network (`nonzero_kernels_available`),
and until it can, nonzero stays in PyTorch with that reason instead of failing an engine build.
"""
from __future__ import annotations

import functools
import logging

import tensorrt_rtx as trt
import torch

from torch_tensorrt_rtx.dynamo.conversion._registry import Precision, Refusal, converter

aten = torch.ops.aten
_NONZERO_INPUTS = (torch.float32, torch.float16, torch.int32, torch.bool)


NO_KERNEL_REASON = ("TensorRT-RTX {version} has no NonZero kernel (its builder reports \"NonZero has no "
                    "runners\", NVIDIA/TensorRT-RTX issue 32)")


@functools.lru_cache(maxsize=None)
def nonzero_kernels_available() -> bool:
    """True if the installed TensorRT-RTX builds an engine holding one NonZero layer (no GPU needed)."""
    from torch_tensorrt_rtx.dynamo.conversion._interpreter import trt_logger

    trt_log = logging.getLogger("torch_tensorrt_rtx.tensorrt")
    level = trt_log.level
    trt_log.setLevel(logging.CRITICAL)  # the expected "no runners" error is the answer, not news
    try:
        builder = trt.Builder(trt_logger())
        network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
        network.mark_output(network.add_non_zero(network.add_input("x", trt.bool, (4,)), trt.int64).get_output(0))
        built = builder.build_serialized_network(network, builder.create_builder_config())
    finally:
        trt_log.setLevel(level)
        trt_logger().errors.clear()
    logging.getLogger(__name__).info("TensorRT-RTX %s NonZero kernels: %s", trt.__version__, built is not None)
    return built is not None


def _nonzero_ok(node):
    x = node.args[0].meta["val"]
    if x.dtype not in _NONZERO_INPUTS:
        return Refusal(f"{x.dtype} input: TensorRT-RTX's NonZero takes "
                       f"{', '.join(str(d) for d in _NONZERO_INPUTS)}")
    if x.dim() == 0:
        return Refusal("0-d input: TensorRT-RTX's NonZero needs a tensor of rank >= 1")
    if not nonzero_kernels_available():
        return Refusal(NO_KERNEL_REASON.format(version=trt.__version__))
    return True


@converter(aten.nonzero.default, validator=_nonzero_ok, supports_dynamic_shapes=True, precision=Precision.FOLLOW)
def nonzero(ctx, node, args, kwargs):
    layer = ctx.name(ctx.network.add_non_zero(args[0], trt.int64), "nonzero")
    transpose = ctx.name(ctx.network.add_shuffle(layer.get_output(0)), "nonzero_rows")
    transpose.first_transpose = (1, 0)
    return transpose.get_output(0)


def _masked_select_ok(node):
    x, mask = (a.meta["val"] for a in node.args[:2])
    if tuple(x.shape) != tuple(mask.shape) or x.dim() == 0:
        return Refusal(f"input shape {tuple(x.shape)} and mask shape {tuple(mask.shape)}: this converter takes "
                       "a mask of the input's shape, rank >= 1 (no broadcasting)")
    if mask.dtype != torch.bool:
        return Refusal(f"{mask.dtype} mask: masked_select takes a bool mask")
    if not nonzero_kernels_available():
        return Refusal(NO_KERNEL_REASON.format(version=trt.__version__))
    return True


@converter(aten.masked_select.default, validator=_masked_select_ok, supports_dynamic_shapes=True,
           precision=Precision.FOLLOW)
def masked_select(ctx, node, args, kwargs):
    flat_x, flat_mask = ctx.reshape(args[0], [-1]), ctx.reshape(args[1], [-1])
    positions = ctx.name(ctx.network.add_non_zero(flat_mask, trt.int64), "nonzero").get_output(0)  # [1, n]
    index = ctx.reshape(positions, [-1])
    return ctx.name(ctx.network.add_gather(flat_x, index, 0), "gather").get_output(0)
