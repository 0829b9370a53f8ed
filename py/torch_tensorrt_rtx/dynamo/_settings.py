"""Compilation settings shared by torch.compile(backend="tensorrt_rtx") and torch_tensorrt_rtx.compile.

Only compile-time choices live here. Runtime modes (runtime cache path, kernel specialization,
CUDA graphs) are chosen at run time through the runtime package, never stored in an engine.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, FrozenSet, Mapping, Tuple


@dataclasses.dataclass(frozen=True)
class CompilationSettings:
    # Smallest number of compute ops (getitem/sym_size not counted) worth an engine.
    min_block_size: int = 3
    # Op names ("aten.relu.default") to keep in PyTorch even if a converter exists.
    torch_executed_ops: FrozenSet[str] = frozenset()
    # Fail instead of falling back to PyTorch when anything is left unconverted.
    require_full_compilation: bool = False
    # e.g. ("SM86", "SM89"); empty = portable (every compute capability TensorRT-RTX supports).
    compute_capabilities: Tuple[str, ...] = ()
    # Report build progress through TensorRT-RTX's progress monitor.
    progress: bool = True
    # torch.compile only: upper bound of a dim dynamo made dynamic without a finite bound.
    dynamic_max_size: int = 4096
    # Keep each engine's INetworkDefinition in memory so `verify` can run it after compile.
    keep_networks: bool = True

    def __post_init__(self) -> None:
        for name in ("min_block_size", "dynamic_max_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        # One name given as a plain string means that one name, not its characters.
        for name in ("torch_executed_ops", "compute_capabilities"):
            value = getattr(self, name)
            if isinstance(value, str):
                value = (value,)
            value = frozenset(str(v) for v in value) if name == "torch_executed_ops" else tuple(value)
            object.__setattr__(self, name, value)

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | None) -> "CompilationSettings":
        options = dict(options or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(f"unknown torch_tensorrt_rtx option(s) {unknown}; known options: {sorted(known)}")
        if "torch_executed_ops" in options:
            options["torch_executed_ops"] = frozenset(str(o) for o in options["torch_executed_ops"])
        if "compute_capabilities" in options:
            options["compute_capabilities"] = tuple(options["compute_capabilities"])
        return cls(**options)

    def as_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)
