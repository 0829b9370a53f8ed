"""Compilation settings shared by torch.compile(backend="tensorrt_rtx") and torch_tensorrt_rtx.compile.

Only compile-time choices live here. Runtime modes (runtime cache path, kernel specialization,
CUDA graphs) are chosen at run time through the runtime package, never stored in an engine.
"""
from __future__ import annotations

import dataclasses
import functools
import re
from typing import Any, Dict, FrozenSet, Iterable, Mapping, Optional, Tuple, Union

import torch

from torch_tensorrt_rtx.dynamo._upstream_options import precision, translate

TILING_LEVELS = ("none", "fast", "moderate", "full")

_OPS_EXAMPLE = ('e.g. torch.ops.aten.mul.Tensor, torch.ops.aten.mul, "aten.mul.Tensor", "torch.ops.aten.mul.Tensor", '
                '"aten::mul" or "mul"')


def _overload_names(packet: "torch._ops.OpOverloadPacket") -> FrozenSet[str]:
    return frozenset(str(getattr(packet, o)) for o in packet.overloads())


def _resolve_string(text: str) -> FrozenSet[str]:
    name = text.strip()
    if name.startswith("torch.ops."):
        name = name[len("torch.ops."):]
    name = name.replace("::", ".")
    parts = name.split(".")
    if len(parts) == 1:
        parts = ["aten", parts[0]]  # a bare packet name means the ATen op
    if len(parts) not in (2, 3) or not all(parts):
        raise ValueError(f"torch_executed_ops: {text!r} is not an op name; expected {_OPS_EXAMPLE}")
    namespace, op = parts[0], parts[1]
    try:
        packet = getattr(getattr(torch.ops, namespace), op)
    except (AttributeError, RuntimeError):
        raise ValueError(f"torch_executed_ops: {text!r} names no op: torch.ops.{namespace} has no {op!r} "
                         f"({_OPS_EXAMPLE})") from None
    if len(parts) == 2:
        return _overload_names(packet)
    if parts[2] not in packet.overloads():
        raise ValueError(f"torch_executed_ops: {text!r} names no op: {namespace}.{op} has no overload {parts[2]!r}; "
                         f"its overloads are {sorted(packet.overloads())}")
    return frozenset({str(getattr(packet, parts[2]))})


def resolve_ops(ops: Union[str, Any, Iterable[Any]]) -> FrozenSet[str]:
    """Every spelling of an op users write, as the overload names partitioning compares
    ("aten.mul.Tensor"). A packet (torch.ops.aten.mul, "aten::mul", "mul") means all its
    overloads. A string that names no op is a ValueError, never silently ignored."""
    if isinstance(ops, (str, torch._ops.OpOverload, torch._ops.OpOverloadPacket)):
        ops = (ops,)
    names = set()
    for op in ops:
        if isinstance(op, torch._ops.OpOverload):
            names.add(str(op))
        elif isinstance(op, torch._ops.OpOverloadPacket):
            names |= _overload_names(op)
        elif isinstance(op, str):
            names |= _resolve_string(op)
        else:
            raise TypeError(f"torch_executed_ops: {op!r} ({type(op).__name__}) is not an op; expected {_OPS_EXAMPLE}")
    return frozenset(names)


@dataclasses.dataclass(frozen=True)
class CompilationSettings:
    # Smallest number of compute ops (getitem/sym_size not counted) worth an engine.
    min_block_size: int = 3
    # Ops to keep in PyTorch even if a converter exists. Any spelling: torch.ops.aten.relu.default,
    # torch.ops.aten.relu (every overload), "aten.relu.default", "torch.ops.aten.relu.default",
    # "aten::relu", "relu". Stored as overload names ("aten.relu.default"); see resolve_ops.
    torch_executed_ops: FrozenSet[str] = frozenset()
    # Fail instead of falling back to PyTorch when anything is left unconverted.
    require_full_compilation: bool = False
    # e.g. ("SM86", "SM89"); empty = portable (every compute capability TensorRT-RTX supports).
    compute_capabilities: Tuple[str, ...] = ()
    # Report build progress through TensorRT-RTX's progress monitor.
    progress: bool = True
    # IBuilderConfig knobs under upstream's names (see _upstream_options.FIELDS_HONOURED; applied
    # by conversion/_engine_builder.apply_builder_options). Defaults leave TensorRT-RTX's own.
    workspace_size: int = 0
    optimization_level: Optional[int] = None
    max_aux_streams: Optional[int] = None
    tiling_optimization_level: str = "none"
    l2_limit_for_tiling: int = -1
    disable_tf32: bool = False
    sparse_weights: bool = False
    enable_weight_streaming: bool = False
    # Weightless engines (upstream's names): strip_engine_weights=True builds with STRIP_PLAN + REFIT
    # and the program keeps each weight once, refitting the engine before its first run;
    # immutable_weights=False builds refittable engines (REFIT) that still carry their weights.
    strip_engine_weights: bool = False
    immutable_weights: bool = True
    refit_identical_engine_weights: bool = False
    # Upstream's dryrun: True (or a file path the report is also written to) partitions without
    # converting or building; the module returned runs in PyTorch and its report lists the planned engines.
    dryrun: Union[bool, str] = False
    # Upstream's use_fp32_acc: with enabled_precisions={fp16/bf16}, matmuls (not convolutions) take
    # their inputs cast up to float32 and cast the result back down (lowering/_precision.py).
    use_fp32_acc: bool = False
    # Upstream's assume_dynamic_shape_support: offer dynamic-shape nodes to converters registered with
    # supports_dynamic_shapes=False too (every built-in converter supports dynamic shapes).
    assume_dynamic_shape_support: bool = False
    # Upstream's autocast exclusions, with a reduced precision: ops (any spelling torch_executed_ops
    # takes) and FX node names (regular expressions, searched) that compute in float32 whatever the
    # precision policy says.
    autocast_excluded_ops: FrozenSet[str] = frozenset()
    autocast_excluded_nodes: FrozenSet[str] = frozenset()
    # Upstream's deprecated debug=True: the compile logs at DEBUG (as `torch_tensorrt_rtx.logging.debug()`).
    debug: bool = False
    # torch.compile only: upper bound of a dim dynamo made dynamic without a finite bound.
    dynamic_max_size: int = 4096
    # Keep each engine's INetworkDefinition in memory so `verify` can run it after compile.
    keep_networks: bool = True
    # {torch.float16} or {torch.bfloat16} (fp32 may be listed too): compute matmuls, convolutions
    # and the ops between them in that dtype, numerically sensitive ops in fp32 (see
    # lowering/_precision.py). Empty or {torch.float32}: every op in the dtype the model traced in.
    enabled_precisions: FrozenSet[torch.dtype] = frozenset()
    # Raise instead of falling back to PyTorch when a stage fails (upstream's name; for
    # debugging). False: under torch.compile a failure anywhere in the backend leaves that graph
    # to PyTorch with a FallbackWarning naming the stage; a converter or engine build failure
    # keeps its node(s) in PyTorch. True: the error propagates (torch.compile raises it as
    # BackendCompilerFailed).
    pass_through_build_failures: bool = False
    # TensorRT-RTX has no float64: compute float64 ops in float32 (upstream's name; one
    # Float64Warning gives the count). False: keep every op that touches float64 in PyTorch.
    truncate_double: bool = True
    # -- the engine cache (dynamo/_engine_cache.py; upstream's names). An engine is reused when
    # its subgraph, weights, input ranges, engine-changing settings and versions are the same,
    # from this process or any other. $TORCH_TENSORRT_RTX_ENGINE_CACHE=0 switches both off.
    # Store each engine built in the cache (default on: never build the same engine twice).
    cache_built_engines: bool = True
    # Take an engine from the cache instead of building it when its key is there.
    reuse_cached_engines: bool = True
    # The cache directory; None: "engines" beside the runtime cache's default file
    # (~/.cache/torch_tensorrt_rtx/engines, %LOCALAPPDATA%\torch_tensorrt_rtx\engines).
    engine_cache_dir: Optional[str] = None
    # Size cap of the cache directory in bytes; least recently used engines go first.
    engine_cache_size: int = 5 << 30
    # Upstream's custom_engine_cache: a BaseEngineCache (save/load by key) used instead of the
    # directory; it gets this package's key and blob format (dynamo/_custom_engine_cache.py).
    custom_engine_cache: Optional[Any] = dataclasses.field(default=None, compare=False)

    def __post_init__(self) -> None:
        for name in ("min_block_size", "dynamic_max_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        # One name given as a plain string means that one name, not its characters.
        value = self.compute_capabilities
        object.__setattr__(self, "compute_capabilities", (value,) if isinstance(value, str) else tuple(value))
        object.__setattr__(self, "torch_executed_ops", resolve_ops(self.torch_executed_ops))
        precisions = self.enabled_precisions
        single = isinstance(precisions, (torch.dtype, str)) or not hasattr(precisions, "__iter__")
        precisions = frozenset(precision(p) for p in ((precisions,) if single else precisions))
        allowed = (torch.float32, torch.float16, torch.bfloat16)
        bad = [p for p in precisions if p not in allowed]
        if bad:
            raise ValueError(f"enabled_precisions: {bad} not supported; expected a set of {list(allowed)}, "
                             "e.g. {torch.float16}")
        if torch.float16 in precisions and torch.bfloat16 in precisions:
            raise ValueError("enabled_precisions: choose one reduced precision, {torch.float16} or {torch.bfloat16}, "
                             f"not both (got {sorted(map(str, precisions))})")
        object.__setattr__(self, "enabled_precisions", precisions)
        self._check_builder_options()
        self._check_autocast_exclusions()
        from torch_tensorrt_rtx.dynamo._engine_cache import check_cache_settings

        object.__setattr__(self, "engine_cache_dir", check_cache_settings(self))

    @property
    def reduced_precision(self) -> "torch.dtype | None":
        """float16 or bfloat16 when enabled_precisions asks for one, else None."""
        return next((p for p in (torch.float16, torch.bfloat16) if p in self.enabled_precisions), None)

    def _check_builder_options(self) -> None:
        for name in ("workspace_size", "l2_limit_for_tiling", "optimization_level", "max_aux_streams"):
            value = getattr(self, name)
            lowest = -1 if name == "l2_limit_for_tiling" else 0
            if (value is not None or name in ("workspace_size", "l2_limit_for_tiling")) and (
                    isinstance(value, bool) or not isinstance(value, int) or value < lowest):
                raise ValueError(f"{name} must be an integer >= {lowest}, got {value!r}")
        if not isinstance(self.dryrun, (bool, str)) or self.dryrun == "":
            raise ValueError(f"dryrun must be True, False or a file path for the report, got {self.dryrun!r}")
        if self.tiling_optimization_level not in TILING_LEVELS:
            raise ValueError(f"tiling_optimization_level must be one of {TILING_LEVELS}, "
                             f"got {self.tiling_optimization_level!r}")

    def _check_autocast_exclusions(self) -> None:
        object.__setattr__(self, "autocast_excluded_ops", resolve_ops(self.autocast_excluded_ops))
        patterns = self.autocast_excluded_nodes
        patterns = frozenset((patterns,) if isinstance(patterns, str) else patterns)
        for pattern in patterns:
            try:
                re.compile(pattern)
            except (re.error, TypeError) as exc:
                raise ValueError(f"autocast_excluded_nodes: {pattern!r} is not a regular expression: {exc}") from None
        object.__setattr__(self, "autocast_excluded_nodes", patterns)
        if (self.autocast_excluded_ops or patterns) and self.reduced_precision is None:
            raise ValueError("autocast_excluded_ops/autocast_excluded_nodes keep ops in float32 under a reduced "
                             "precision; give enabled_precisions={torch.float16} (or bfloat16) too")

    @classmethod
    def field_names(cls) -> FrozenSet[str]:
        return frozenset(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | None) -> "CompilationSettings":
        """Settings from option names: ours, and upstream Torch-TensorRT's (translated, or refused
        with the reason; see _upstream_options)."""
        options = translate(options or {})
        unknown = _unknown_option_message(options)
        if unknown:
            raise ValueError(unknown)
        return cls(**options)

    def as_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


def _unknown_option_message(options: Mapping[str, Any]) -> Optional[str]:
    known = CompilationSettings.field_names()
    unknown = sorted(set(options) - known)
    return f"unknown torch_tensorrt_rtx option(s) {unknown}; known options: {sorted(known)}" if unknown else None


_dataclass_init = CompilationSettings.__init__


@functools.wraps(_dataclass_init)
def _init_with_upstream_names(self: CompilationSettings, *args: Any, **options: Any) -> None:
    """CompilationSettings(...) built directly takes upstream's option names too, translated or
    refused with the reason exactly as compile's keywords are (_upstream_options.translate)."""
    options = translate(options)
    unknown = _unknown_option_message(options)
    if unknown:
        raise TypeError(f"CompilationSettings: {unknown}")
    _dataclass_init(self, *args, **options)


CompilationSettings.__init__ = _init_with_upstream_names
