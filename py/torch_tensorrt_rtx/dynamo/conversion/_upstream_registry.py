"""Custom converters in upstream Torch-TensorRT's form, registered through our registry.

    @torch_tensorrt_rtx.dynamo.conversion.dynamo_tensorrt_converter(
        torch.ops.aten.gelu.default,
        capability_validator=lambda node, settings: node.kwargs.get("approximate") == "tanh",
        priority=ConverterPriority.HIGH, supports_dynamic_shapes=True)
    def my_gelu(ctx, target, args, kwargs, name):
        x = args[0]                                  # a trt.ITensor
        layer = ctx.net.add_activation(x, trt.ActivationType.TANH)   # ctx.net: the INetworkDefinition
        ...
        return out                                   # an ITensor or a tuple of them

Upstream's calling convention, adapted:
- ``ctx`` has ``net`` (the strongly typed ``tensorrt_rtx.INetworkDefinition``),
  ``compilation_settings`` (this compile's CompilationSettings) and
  ``cpu_weights_reference_holder`` (keep numpy weights given to ``add_constant`` alive there);
  our ConversionContext's helpers (``constant``, ``cast``, ...) are reachable through it too.
- ``args``/``kwargs``: FX nodes replaced by ITensors. Constant tensors (weights) arrive as
  constant ITensors, not torch tensors. ``target`` is the node's target, ``name`` its FX name.
- ``capability_validator(node, settings)`` gets the compile's CompilationSettings.
- ``priority=ConverterPriority.HIGH`` wins over the built-in converters of the target;
  ``STANDARD`` is tried after them. ``supports_dynamic_shapes`` defaults to False, as upstream.
- Layers the converter adds are renamed ``<fx node>/<name it gave>`` so that ``verify``, the
  reference executor and the Debugger map them back to the node.
- ``requires_output_allocator=True`` is accepted and needs nothing more: engine outputs whose
  size depends on data always run through an output allocator, on both runtimes. ``requires_native_multidevice=True`` is
  refused (no multi-GPU collectives on RTX PCs). ``enabled=False`` registers nothing.
"""
from __future__ import annotations

import contextlib
import contextvars
import enum
from typing import Any, Callable, Iterator, Optional

from torch_tensorrt_rtx.dynamo.conversion import _registry

HIGH_PRIORITY = 100  # above every built-in converter's priority


class ConverterPriority(enum.Enum):
    """Upstream's converter priorities."""

    STANDARD = enum.auto()
    HIGH = enum.auto()


_ACTIVE_SETTINGS: contextvars.ContextVar[Any] = contextvars.ContextVar("torch_tensorrt_rtx_converter_settings",
                                                                        default=None)


@contextlib.contextmanager
def converter_settings(settings: Any) -> Iterator[None]:
    """The CompilationSettings upstream-style validators and converters see during one compile."""
    token = _ACTIVE_SETTINGS.set(settings)
    try:
        yield
    finally:
        _ACTIVE_SETTINGS.reset(token)


def active_settings() -> Any:
    """The CompilationSettings of the compile in progress (None outside compile_graph)."""
    return _ACTIVE_SETTINGS.get()


def _settings() -> Any:
    settings = _ACTIVE_SETTINGS.get()
    if settings is None:
        from torch_tensorrt_rtx.dynamo._settings import CompilationSettings

        settings = CompilationSettings()
    return settings


class UpstreamConversionContext:
    """What an upstream-style converter gets as ``ctx``."""

    def __init__(self, ctx: Any) -> None:
        self._ctx = ctx
        self.net = ctx.network
        self.compilation_settings = _settings()
        self.cpu_weights_reference_holder = ctx.__dict__.setdefault("_upstream_weights", [])

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ctx, name)


def _rename_new_layers(ctx: Any, first: int, node_name: str) -> None:
    network = ctx.network
    for i in range(first, network.num_layers):
        layer = network.get_layer(i)
        if not layer.name.startswith(f"{node_name}/"):
            ctx.name(layer, layer.name.replace("/", "_") or layer.type.name.lower())


def _priority(priority: Any) -> int:
    if priority is ConverterPriority.HIGH:
        return HIGH_PRIORITY
    if priority is ConverterPriority.STANDARD:
        return -1
    if isinstance(priority, int) and not isinstance(priority, bool):
        return priority
    raise ValueError(f"dynamo_tensorrt_converter: priority={priority!r}; expected ConverterPriority.HIGH or "
                     "ConverterPriority.STANDARD")


def dynamo_tensorrt_converter(key: Any, *, enabled: bool = True,
                              capability_validator: Optional[Callable[[Any, Any], bool]] = None,
                              priority: Any = ConverterPriority.STANDARD, supports_dynamic_shapes: bool = False,
                              requires_output_allocator: bool = False,
                              requires_native_multidevice: bool = False) -> Callable[[Callable], Callable]:
    """Register an upstream-style converter ``fn(ctx, target, args, kwargs, name)`` for `key`."""
    if requires_native_multidevice:
        raise ValueError("dynamo_tensorrt_converter: requires_native_multidevice=True is not supported: "
                         "TensorRT-RTX engines run on one GPU, without multi-device collectives")
    rank = _priority(priority)

    def register(fn: Callable) -> Callable:
        if not callable(fn):
            raise TypeError(f"dynamo_tensorrt_converter: {fn!r} is not callable")
        if not enabled:
            return fn

        def adapted(ctx: Any, node: Any, args: Any, kwargs: Any) -> Any:
            first = ctx.network.num_layers
            result = fn(UpstreamConversionContext(ctx), node.target, tuple(args), dict(kwargs), node.name)
            _rename_new_layers(ctx, first, node.name)
            return tuple(result) if isinstance(result, list) else result

        adapted.__name__ = getattr(fn, "__name__", "converter")
        adapted.__module__ = getattr(fn, "__module__", __name__)
        adapted.__wrapped__ = fn
        adapted.requires_output_allocator = requires_output_allocator
        validator = None
        if capability_validator is not None:
            def validator(node: Any) -> bool:
                return capability_validator(node, _settings())

        _registry.converter(key, validator=validator, priority=rank,
                            supports_dynamic_shapes=supports_dynamic_shapes)(adapted)
        fn._torch_tensorrt_rtx_adapted = adapted
        return fn

    return register


def remove_converter(key: Any, fn: Callable) -> bool:
    """Unregister a converter registered with dynamo_tensorrt_converter; True if it was there."""
    adapted = getattr(fn, "_torch_tensorrt_rtx_adapted", None)
    entries = _registry._REGISTRY.get(key, [])
    kept = [e for e in entries if e.fn is not adapted]
    _registry._REGISTRY[key] = kept
    return len(kept) != len(entries)
