"""The compile summary that goes to `logging` and is attached to compiled modules."""
from __future__ import annotations

import collections
import dataclasses
from typing import Dict, List


@dataclasses.dataclass
class EngineSummary:
    name: str
    converted_ops: List[str]
    build_seconds: float
    engine_bytes: int
    input_ranges: List[str]


@dataclasses.dataclass
class CompileReport:
    engines: List[EngineSummary] = dataclasses.field(default_factory=list)
    fallback_ops: Dict[str, int] = dataclasses.field(default_factory=dict)
    fallback_reasons: Dict[str, str] = dataclasses.field(default_factory=dict)
    total_seconds: float = 0.0

    @property
    def converted_op_counts(self) -> Dict[str, int]:
        return dict(collections.Counter(op for e in self.engines for op in e.converted_ops))

    def format(self) -> str:
        converted = self.converted_op_counts
        lines = [f"torch_tensorrt_rtx: {len(self.engines)} TensorRT-RTX subgraph(s), "
                 f"{sum(converted.values())} op(s) converted, {sum(self.fallback_ops.values())} op(s) in PyTorch, "
                 f"compiled in {self.total_seconds:.2f} s"]
        for e in self.engines:
            lines.append(f"  engine {e.name}: {len(e.converted_ops)} ops, built in {e.build_seconds:.2f} s, "
                         f"{e.engine_bytes:,} bytes" + (f", dynamic dims {e.input_ranges}" if any(
                             r != "{}" for r in e.input_ranges) else ""))
        if converted:
            lines.append("  converted: " + ", ".join(f"{k} x{v}" for k, v in sorted(converted.items())))
        if self.fallback_ops:
            lines.append("  PyTorch fallback: " + ", ".join(
                f"{k} x{v} ({self.fallback_reasons.get(k, '?')})" for k, v in sorted(self.fallback_ops.items())))
        return "\n".join(lines)
