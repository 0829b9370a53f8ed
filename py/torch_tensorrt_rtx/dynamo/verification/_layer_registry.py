"""The reference executor's one table: TensorRT-RTX layer type -> the function that runs it.

    @handles(trt.LayerType.SOFTMAX, trt.ISoftMaxLayer)
    def _softmax(layer, ins):          # ins: the layer's input tensors (None where unset)
        return torch.softmax(...)       # one tensor, or a tuple with one per layer output

Each layer type has exactly one handler, registered with `handles` in the modules that
`reference_executor` imports; a second registration for a type raises. A handler that meets an
attribute value it does not model calls `unsupported`; one that breaks a documented rule of the
layer (a shape or type TensorRT-RTX would refuse) calls `invalid`.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Tuple

import tensorrt_rtx as trt
import torch

Handler = Callable[..., object]


class UnsupportedLayerError(NotImplementedError):
    """The reference executor does not model this layer (type or attribute)."""


_HANDLERS: Dict["trt.LayerType", Tuple[type, Handler]] = {}  # type -> (binding class, handler)


def handles(layer_type: "trt.LayerType", layer_class: type) -> Callable[[Handler], Handler]:
    """Register the decorated function as the handler of `layer_type` (whose layers the bindings
    return as plain ILayer and are re-classed to `layer_class` to read their attributes)."""

    def register(fn: Handler) -> Handler:
        if layer_type in _HANDLERS:
            earlier = _HANDLERS[layer_type][1]
            raise ValueError(f"reference executor: {fn.__module__}.{fn.__name__} registers layer type "
                             f"{layer_type.name}, already handled by {earlier.__module__}.{earlier.__name__}")
        _HANDLERS[layer_type] = (layer_class, fn)
        return fn

    return register


def handler_for(layer: "trt.ILayer") -> Handler:
    """The handler of `layer`'s type; re-classes `layer` so its type-specific attributes read."""
    registered = _HANDLERS.get(layer.type)
    if registered is None:
        raise UnsupportedLayerError(
            f"reference executor: layer {layer.name!r} has type {layer.type.name}, which it does not model; "
            f"modelled types: {sorted(t.name for t in _HANDLERS)}")
    layer.__class__ = registered[0]
    return registered[1]


class InvalidLayerError(ValueError):
    """A layer breaks a rule of TensorRT-RTX's documented API (its build would fail, or its result
    is undefined): a converter defect, reported instead of computing something plausible."""


def invalid(layer, what: str, expected: str):
    raise InvalidLayerError(f"reference executor: layer {layer.name!r} ({layer.type.name}) has {what}; "
                            f"TensorRT-RTX expects {expected}")


def unsupported(layer, what: str):
    raise UnsupportedLayerError(f"reference executor: layer {layer.name!r} ({layer.type.name}) uses {what}, "
                                "which is not modelled")


def as_float(x: torch.Tensor) -> torch.Tensor:
    """Floating-point math runs in fp32 (the result is rounded to the layer's dtype afterwards)."""
    return x.float() if x.is_floating_point() else x


def mask_axes(mask: int, rank: int) -> List[int]:
    """The dims set in a TensorRT axes bit mask."""
    return [d for d in range(rank) if mask & (1 << d)]
