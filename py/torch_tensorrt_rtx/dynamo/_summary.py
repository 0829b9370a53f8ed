"""The compile summary that goes to `logging` and is attached to compiled modules.

`CompileReport.phase_seconds` says where a compile's wall time went, phase by phase (see
PHASES); `PhaseClock` is how the pipeline fills it:

    clock = PhaseClock()
    with clock.phase("lowering"):
        gm = lower(gm)
    clock.add("engine build", seconds)    # a duration measured elsewhere

An exception that leaves a phase (or a `stage`) carries the name of the stage it failed in
(`failed_stage(exc)`), so the torch.compile backend can say where a graph failed.
"""
from __future__ import annotations

import collections
import contextlib
import dataclasses
import time
from typing import Any, Dict, Iterator, List, Mapping, Optional

# Compile phases in pipeline order. "engine build" is TensorRT-RTX's build_serialized_network
# alone; "conversion" is FX -> INetworkDefinition plus the builder config; "packaging" is engine
# records, graph surgery and the final recompile. With the caches on, a compile also reports
# "engine cache store" (writing built engines into the engine cache) and the program cache's
# "program cache key" and "program cache store".
PHASES = ("export", "decompositions", "lowering", "partitioning", "conversion", "engine build", "packaging")
# GraphModule.meta key under which export_aten hands its phase times to compile_graph (which
# removes it), so both entry points (compile and the torch.compile backend) report them.
PHASE_SECONDS_META = "torch_tensorrt_rtx_phase_seconds"
_STAGE_ATTR = "torch_tensorrt_rtx_stage"


def failed_stage(exc: BaseException, default: str) -> str:
    """The compile stage `exc` was raised in (the innermost one that labelled it), else `default`."""
    return getattr(exc, _STAGE_ATTR, None) or default


@contextlib.contextmanager
def stage(name: str) -> Iterator[None]:
    """Label an exception raised inside with the stage `name` (unless an inner stage did)."""
    try:
        yield
    except Exception as exc:
        if getattr(exc, _STAGE_ATTR, None) is None:
            try:
                setattr(exc, _STAGE_ATTR, name)
            except AttributeError:  # an exception type with __slots__: its stage stays unknown
                pass
        raise


class PhaseClock:
    """Accumulates wall seconds per phase name; a phase may be entered many times (once per engine)."""

    def __init__(self, initial: Optional[Mapping[str, float]] = None) -> None:
        self.seconds: Dict[str, float] = dict(initial or {})

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            with stage(name):
                yield
        finally:  # a phase that raises (a partition kept in PyTorch) still spent the time
            self.add(name, time.perf_counter() - start)


class FallbackWarning(UserWarning):
    """Part of a compiled program stays in PyTorch (shown once per distinct summary by default)."""


class Float64Warning(UserWarning):
    """float64 ops were computed in float32 (truncate_double=True): TensorRT-RTX has no float64."""


@dataclasses.dataclass
class EngineSummary:
    name: str
    converted_ops: List[str]
    build_seconds: float
    engine_bytes: int
    input_ranges: List[str]
    sha256: str = ""  # of the serialized engine
    engine_cache_key: Optional[str] = None  # its entry in the engine cache (None: not cacheable or cache off)


@dataclasses.dataclass
class CompileReport:
    engines: List[EngineSummary] = dataclasses.field(default_factory=list)
    fallback_ops: Dict[str, int] = dataclasses.field(default_factory=dict)
    fallback_reasons: Dict[str, str] = dataclasses.field(default_factory=dict)
    # FX node name -> "<op>: <one-line reason>" for nodes whose conversion or engine build failed
    failed_nodes: Dict[str, str] = dataclasses.field(default_factory=dict)
    # FX node name -> one-line reason, for every ATen/custom op node left in PyTorch
    fallback_nodes: Dict[str, str] = dataclasses.field(default_factory=dict)
    precision: str = "as traced"  # what lowering/_precision.describe says about enabled_precisions
    reduced_precision: Optional[Any] = None  # torch.float16 / torch.bfloat16 when enabled_precisions asked for it
    truncated_double_ops: int = 0  # float64 ops computed in float32 (truncate_double=True)
    total_seconds: float = 0.0
    phase_seconds: Dict[str, float] = dataclasses.field(default_factory=dict)  # see PHASES
    # torch.compile backend only: dynamo's id of the compile ("frame/compile", e.g. "0/2") and which
    # build of that frame's graph this is (1 the first; each recompile, for a size or value the
    # earlier builds' guards refused, adds one)
    graph_id: Optional[str] = None
    build_of_graph: int = 0
    dryrun: bool = False  # upstream's dryrun: partitioned only; `engines` are the planned ones, none built
    # engines taken from the engine cache instead of being built (dynamo/_engine_cache.py)
    engine_cache_hits: int = 0
    # the whole compiled program was loaded from the program cache (_program_cache.py):
    # no export, no build; `engines` and the fallback fields are those of the compile that stored it
    program_cache_hit: bool = False

    @property
    def converted_op_counts(self) -> Dict[str, int]:
        return dict(collections.Counter(op for e in self.engines for op in e.converted_ops))

    def __str__(self) -> str:
        return self.format()

    def fallback_summary(self, limit: int = 5) -> str:
        """One paragraph for a warning: how many ops stay in PyTorch, which, and why (short)."""
        count = sum(self.fallback_ops.values())
        ops = sorted(self.fallback_ops.items(), key=lambda kv: (-kv[1], kv[0]))
        parts = [f"{k} x{v} ({self.fallback_reasons.get(k, '?')})" for k, v in ops[:limit]]
        more = f", and {len(ops) - limit} more op kind(s)" if len(ops) > limit else ""
        return (f"torch_tensorrt_rtx: {count} op(s) stay in PyTorch, {len(self.engines)} TensorRT-RTX engine(s): "
                + "; ".join(parts) + more + ". See compiled.compile_report for details.")

    def format(self) -> str:
        converted = self.converted_op_counts
        lines = [f"torch_tensorrt_rtx{' DRY RUN (partitioned only, no engine built)' if self.dryrun else ''}: "
                 f"{len(self.engines)} TensorRT-RTX subgraph(s), "
                 f"{sum(converted.values())} op(s) converted, {sum(self.fallback_ops.values())} op(s) in PyTorch, "
                 f"compiled in {self.total_seconds:.2f} s, precision {self.precision}"]
        if self.program_cache_hit:
            lines.append("  loaded from the program cache (the compile that stored it converted and built the engines)")
        if self.truncated_double_ops:
            lines.append(f"  {self.truncated_double_ops} float64 op(s) computed in float32 (truncate_double=True)")
        if self.graph_id is not None:
            lines.append(f"  torch.compile graph {self.graph_id}: build {self.build_of_graph} of this graph"
                         + (" (dynamo recompiled it for a size or value the earlier builds' guards refused)"
                            if self.build_of_graph > 1 else ""))
        if self.phase_seconds:
            # total_seconds starts after export: say so, or "compiled in 0.5 s, export 2.4 s" reads wrong.
            lines.append("  time by phase (export and decompositions come before the time above): "
                         + ", ".join(f"{k} {v:.2f} s" for k, v in self.phase_seconds.items()))
        for e in self.engines:
            if self.dryrun:
                lines.append(f"  planned engine {e.name}: {len(e.converted_ops)} ops")
                continue
            lines.append(f"  engine {e.name}: {len(e.converted_ops)} ops, built in {e.build_seconds:.2f} s, "
                         f"{e.engine_bytes:,} bytes" + (f", dynamic dims {e.input_ranges}" if any(
                             r != "{}" for r in e.input_ranges) else ""))
        if converted:
            lines.append("  converted: " + ", ".join(f"{k} x{v}" for k, v in sorted(converted.items())))
        if self.fallback_ops:
            lines.append("  PyTorch fallback: " + ", ".join(
                f"{k} x{v} ({self.fallback_reasons.get(k, '?')})" for k, v in sorted(self.fallback_ops.items())))
        for node, reason in sorted(self.failed_nodes.items()):
            lines.append(f"  failed node {node}: {reason}")
        return "\n".join(lines)


def warn_about(report: CompileReport, stacklevel: int) -> None:
    """The compile's user-visible notices (float64 computed in float32, ops left in PyTorch);
    `stacklevel` as for warnings.warn, counted from the caller."""
    import warnings

    if report.truncated_double_ops:
        warnings.warn(f"torch_tensorrt_rtx: {report.truncated_double_ops} float64 op(s) computed in float32 "
                      "(TensorRT-RTX has no float64; truncate_double=False keeps them in PyTorch instead)",
                      Float64Warning, stacklevel=stacklevel + 1)
    if report.fallback_ops:
        warnings.warn(report.fallback_summary(), FallbackWarning, stacklevel=stacklevel + 1)
