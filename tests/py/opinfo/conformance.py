"""Compile and verify OpInfo cases; give every case exactly one verdict.

    verdicts = run_cases(cases)     # [Verdict(case label, state, detail, ops)]

States:
- matched: every op of the case that has a converter ran in a TensorRT-RTX engine, and `verify`
  (the CPU reference executor against eager PyTorch, per engine and end to end) passed;
- refused: an op of the case stayed in PyTorch; `detail` is the compile report's one-line reason;
- mismatched: a defect. Verify failed, verify or compile raised, or a converter or engine build
  failed on a node (the compile report's "failed node"); `detail` says which;
- not applicable: nothing of the case reached a converter (its graph is empty after lowering), or
  torch.export itself cannot trace it (checked with torch.export alone, without this project).

Cases are compiled together (one `Batch` module per call, min_block_size=1), which makes a build
cost a fraction of a second per case instead of per sample. The graph's nodes name their case
(`nn_module_stack` "samples.<i>"), so fallback reasons and failed nodes stay per case. When the
batch's verification fails, or compile or verify raises, every case of the batch is compiled and
verified again on its own, so one case's defect never changes another case's verdict.
"""
from __future__ import annotations

import dataclasses
import re
import warnings
from typing import Dict, List, Optional, Sequence

import torch

import torch_tensorrt_rtx as trtx
from tests.py.opinfo.samples import Batch, Case, batch_inputs

MATCHED, REFUSED, MISMATCHED, NOT_APPLICABLE = "matched", "refused", "mismatched", "not applicable"
STATES = (MATCHED, REFUSED, MISMATCHED)
_ENGINE_OP = "tensorrt_rtx.execute_engine.default"
_CASE = re.compile(r"^samples\.(\d+)$")


@dataclasses.dataclass
class Verdict:
    case: Case
    state: str
    detail: str = ""
    ops: List[str] = dataclasses.field(default_factory=list)  # ATen ops of the case's lowered graph


def _one_line(text: object, limit: int = 240) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    first = lines[0] if lines else type(text).__name__
    return first if len(first) <= limit else first[:limit - 3] + "..."


def _case_of(node) -> Optional[int]:
    for path, _ in (node.meta.get("nn_module_stack") or {}).values():
        match = _CASE.match(path)
        if match:
            return int(match.group(1))
    return None


def _op(node) -> str:
    from torch_tensorrt_rtx.dynamo.conversion._registry import op_name

    return op_name(node)


def _nodes_by_case(compiled) -> Dict[int, Dict[str, List]]:
    """case index -> {"engine": [op names converted], "torch": [FX nodes left in PyTorch]}."""
    found: Dict[int, Dict[str, List]] = {}
    for source in getattr(compiled, "_engine_sources", {}).values():
        for node in source.fx_module.graph.nodes:
            index = _case_of(node) if node.op == "call_function" else None
            if index is not None:
                found.setdefault(index, {"engine": [], "torch": []})["engine"].append(_op(node))
    for node in compiled.graph.nodes:
        if node.op == "call_function" and _op(node) != _ENGINE_OP:
            index = _case_of(node)
            if index is not None:
                found.setdefault(index, {"engine": [], "torch": []})["torch"].append(node)
    return found


def _structural(case: Case, nodes: Dict[str, List], report) -> Verdict:
    """The verdict that compile alone gives (verify passed): failed node, refusal, nothing, match."""
    converted = nodes.get("engine", [])
    in_torch = [n for n in nodes.get("torch", []) if n.name in report.fallback_nodes or n.name in report.failed_nodes]
    ops = sorted(set(converted) | {_op(n) for n in in_torch})
    failed = [n for n in in_torch if n.name in report.failed_nodes]
    if failed:
        return Verdict(case, MISMATCHED, f"failed node: {report.failed_nodes[failed[0].name]}", ops)
    if in_torch:
        node = in_torch[0]
        return Verdict(case, REFUSED, f"{_op(node)}: {report.fallback_nodes[node.name]}", ops)
    if not converted:
        return Verdict(case, NOT_APPLICABLE, "no op left after export and lowering", ops)
    return Verdict(case, MATCHED, "", ops)


def _export_fails(case: Case) -> Optional[str]:
    try:
        torch.export.export(Batch([case]), tuple(batch_inputs([case])), strict=False)
    except Exception as exc:  # noqa: BLE001 - torch.export's own limits are not ours
        return _one_line(f"{type(exc).__name__}: {exc}")
    return None


def _compile(cases: Sequence[Case]):
    module = Batch(cases)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compiled = trtx.compile(module, batch_inputs(cases), min_block_size=1, progress=False)
        verification = trtx.verify(compiled, *batch_inputs(cases), reference_module=module)
    return compiled, verification


def _run_alone(case: Case) -> Verdict:
    try:
        compiled, verification = _compile([case])
    except Exception as exc:  # noqa: BLE001 - a crash is a verdict, not the end of the run
        why = _export_fails(case)
        if why is not None:
            return Verdict(case, NOT_APPLICABLE, f"torch.export cannot trace it: {why}")
        return Verdict(case, MISMATCHED, _one_line(f"compile/verify raised {type(exc).__name__}: {exc}"))
    verdict = _structural(case, _nodes_by_case(compiled).get(0, {}), compiled.compile_report)
    if verdict.state != MISMATCHED and verification.engines and not verification.ok:
        lines = [line.strip() for line in str(verification).splitlines() if "MISMATCH" in line or "diverges" in line]
        return Verdict(case, MISMATCHED, "verify: " + " | ".join(lines)[:300], verdict.ops)
    return verdict


def run_cases(cases: Sequence[Case]) -> List[Verdict]:
    """One verdict per case, in order."""
    if len(cases) == 1:
        return [_run_alone(cases[0])]
    try:
        compiled, verification = _compile(cases)
    except Exception:  # noqa: BLE001 - find the case(s) responsible on their own
        return [_run_alone(c) for c in cases]
    if verification.engines and not verification.ok:
        return [_run_alone(c) for c in cases]
    nodes = _nodes_by_case(compiled)
    return [_structural(case, nodes.get(k, {}), compiled.compile_report) for k, case in enumerate(cases)]
