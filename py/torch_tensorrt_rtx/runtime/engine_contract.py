"""The engine-run contract: the checks both runtimes make before and while running an engine,
and their messages. The C++ runtime makes the same checks with the same words
(core/runtime/engine_contract.h); tests/py/cross_runtime/test_engine_contract.py holds the two
to each other, case by case.

Every function returns "" when the check passes, else the whole message, opened by ``what``
(who is running, e.g. "TRTModule 'blk0'" or "engine 'blk0'").

    why = profile_violation("engine 'blk0'", "x", (9, 4), (1, 4), (8, 4))
    # "engine 'blk0': input 'x' dimension 0 is 9, allowed range is [1, 8] (optimization
    #  profile 0, shape (9, 4))"
"""
from __future__ import annotations

from typing import Sequence

from torch_tensorrt_rtx.runtime.definitions import LAYOUT


def profile_violation(what: str, name: str, shape: Sequence[int], lo: Sequence[int], hi: Sequence[int]) -> str:
    """An input shape against its optimization-profile range [lo, hi] (profile 0)."""
    shape = tuple(int(d) for d in shape)
    if len(shape) != len(lo):
        return f"{what}: input '{name}' has rank {len(shape)} (shape {shape}), expected rank {len(lo)}"
    for dim, (v, a, b) in enumerate(zip(shape, lo, hi)):
        if not a <= v <= b:
            return (f"{what}: input '{name}' dimension {dim} is {v}, allowed range is [{a}, {b}] "
                    f"(optimization profile 0, shape {shape})")
    return ""


def incompatible_strategies(what: str, settings, has_dynamic_inputs: bool) -> str:
    """Whole-graph CUDA-graph capture cannot capture lazily specialized kernels of dynamic shapes."""
    if not (settings.cuda_graph_strategy == "whole_graph_capture" and settings.kernel_strategy == "lazy"
            and has_dynamic_inputs):
        return ""
    return (f"{what}: cuda_graph_strategy='whole_graph_capture' with kernel_strategy='lazy' and dynamic "
            f"input shapes: lazily specialized kernels cannot be captured in a whole-graph CUDA graph; "
            f"use kernel_strategy='eager' or 'none'")


def malformed_engine(what: str, size: int) -> str:
    """TensorRT-RTX reports that the engine bytes are not an engine (MALFORMED_ENGINE)."""
    return (f"{what}: engine bytes are not a serialized TensorRT-RTX engine ({size} bytes); expected "
            f"the output of IBuilder.build_serialized_network")


def unsupported_gpu(what: str, compute_capabilities: str) -> str:
    """TensorRT-RTX reports that this GPU is not one the engine was built for (UNSUPPORTED_CC);
    ``compute_capabilities`` is the record's COMPUTE_CAPABILITIES field."""
    targets = ("every GPU this TensorRT-RTX supports (a portable build)" if compute_capabilities == LAYOUT.portable
               else ", ".join(compute_capabilities.split(LAYOUT.separator)))
    return (f"{what}: TensorRT-RTX reports that this GPU's compute capability is not one the engine was "
            f"built for (UNSUPPORTED_CC); it was built for {targets}. Rebuild it with compute_capabilities "
            f"naming this GPU, or run it on one of those")
