"""Check run-time input shapes against an engine's optimization profile before executing it.

    check_input_shapes(network_def, [x, mask])    # raises InputOutsideProfileError if out of range

A TensorRT-RTX engine accepts, for every dynamic dimension, sizes in [min, max] of the profile it
was built with, and exactly the built size for a static dimension. The CPU reference executor
would happily run any shape, so `verify` calls this first: a user learns which input, which
dimension and which range, instead of a result the real engine could never produce.
"""
from __future__ import annotations

from typing import Sequence

import torch


class InputOutsideProfileError(ValueError):
    """An input's shape is outside what the engine was built for; the message names the input,
    the dimension, the size given and the allowed range."""


def check_input_shapes(network_def, inputs: Sequence[torch.Tensor], label: str = "engine") -> None:
    network = network_def.network
    if len(inputs) != network.num_inputs:
        raise InputOutsideProfileError(f"{label}: expected {network.num_inputs} input(s), got {len(inputs)}")
    for i, value in enumerate(inputs):
        tensor = network.get_input(i)
        built = tuple(tensor.shape)
        ranges = network_def.input_ranges[i] if i < len(network_def.input_ranges) else {}
        shape = tuple(value.shape)
        if len(shape) != len(built):
            raise InputOutsideProfileError(f"{label}: input {tensor.name!r} has rank {len(shape)} (shape {list(shape)}), "
                                           f"the engine was built for rank {len(built)}")
        for d, (size, fixed) in enumerate(zip(shape, built)):
            if fixed >= 0:
                if size != fixed:
                    raise InputOutsideProfileError(
                        f"{label}: input {tensor.name!r} dimension {d} is {size}, but the engine was built with a "
                        f"static size {fixed} there (compile with a min/opt/max range to make it dynamic)")
                continue
            lo, opt, hi = ranges[d]
            if not lo <= size <= hi:
                raise InputOutsideProfileError(
                    f"{label}: input {tensor.name!r} dimension {d} is {size}, outside the optimization profile "
                    f"range [{lo}, {hi}] (min {lo}, opt {opt}, max {hi}); recompile with a wider range")
