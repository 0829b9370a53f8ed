"""Compile and verify OpInfo cases; give every case exactly one verdict.

    verdicts = run_cases(cases)     # [Verdict(case label, state, detail, ops)]

States:
- matched: every op of the case that has a converter ran in a TensorRT-RTX engine, and `verify`
  (the CPU reference executor against eager PyTorch, per engine and end to end) passed;
- refused: an op of the case stayed in PyTorch; `detail` is the compile report's one-line reason;
- mismatched: a defect. An engine's check in `verify` failed, the program's outputs differ from
  eager's (`agrees` below), verify or compile raised, or a converter or engine build failed on a
  node (the compile report's "failed node"); `detail` says which;
- not applicable: nothing of the case reached a converter (its graph is empty after lowering), its
  graph draws random numbers (a random op, seeded or not), so no two implementations agree,
  or torch.export itself cannot trace it (checked with torch.export and PyTorch's default
  decompositions alone, without this project: `take` of a 0-d tensor fails there, for example).

A node kept in PyTorch because its input's size depends on data (the pipeline's own refusal:
TensorRT-RTX needs a bounded range) is a refusal, not a failure.

The end-to-end comparison is done here, not by `verify`'s reference_module check, whose fp16
budget does not accept NaN where eager has NaN: same shape and dtype; integers and bools equal;
NaN and +-inf at the same places; finite values within rtol 1e-3 and an absolute floor of 1e-4
(scaled down with the output's magnitude, so outputs of 1e-16 are not passed by it) in float32,
and within 2 % of the output's magnitude (plus 1e-2) in float16, verify's budget for fp16.

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


_DATA_DEPENDENT = "which depends on data"
def _not_comparable(compiled) -> List[str]:
    """Why the compiled program's outputs cannot be compared with eager's: random ops (engines
    included: no second run reproduces them), or writes into its inputs (training-mode batch norm's
    running statistics: not tensor-in/tensor-out, and PyTorch's traced dtype for them differs
    from its CPU kernel's)."""
    from torch_tensorrt_rtx.dynamo.conversion._registry import op_name

    graphs = [compiled.graph] + [s.fx_module.graph for s in getattr(compiled, "_engine_sources", {}).values()]
    found = set()
    for graph in graphs:
        for node in graph.nodes:
            target = node.target
            if node.op == "call_function" and isinstance(target, torch._ops.OpOverload) and (
                    torch.Tag.nondeterministic_seeded in target.tags):
                found.add((_case_of(node), f"random op {op_name(node)}"))
            elif node.op == "call_function" and target is torch.ops.aten.copy_.default \
                    and getattr(node.args[0], "op", None) == "placeholder":
                found.add((_case_of(node), "writes into its input (not tensor-in/tensor-out)"))
    return found


_UNINITIALIZED = {"aten.empty.memory_format", "aten.empty_like.default", "aten.new_empty.default",
                  "aten.empty_strided.default", "aten.empty_permuted.default"}


def _failed_engines(compiled, verification) -> List[str]:
    """Engines whose check in `verify` failed. An engine that computes uninitialized memory (an
    `empty` whose values a later op in PyTorch overwrites) has no values to compare: not counted."""
    failed = []
    sources = getattr(compiled, "_engine_sources", {})
    for check in verification.engines:
        source = sources.get(check.name)
        ops = {_op(n) for n in source.fx_module.graph.nodes if n.op == "call_function"} if source else set()
        if not check.ok and not ops & _UNINITIALIZED:
            failed.append(check.name)
    return failed


def _structural(case: Case, nodes: Dict[str, List], report) -> Verdict:
    """The verdict that compile alone gives (verify passed): failed node, refusal, nothing, match."""
    converted = nodes.get("engine", [])
    in_torch = [n for n in nodes.get("torch", []) if n.name in report.fallback_nodes or n.name in report.failed_nodes]
    ops = sorted(set(converted) | {_op(n) for n in in_torch})
    failed = [n for n in in_torch if n.name in report.failed_nodes and _DATA_DEPENDENT not in report.failed_nodes[n.name]]
    if failed:
        return Verdict(case, MISMATCHED, f"failed node: {report.failed_nodes[failed[0].name]}", ops)
    if in_torch:
        node = in_torch[0]
        reason = report.fallback_nodes.get(node.name) or report.failed_nodes[node.name]
        return Verdict(case, REFUSED, f"{_op(node)}: {reason}", ops)
    if not converted:
        return Verdict(case, NOT_APPLICABLE, "no op left after export and lowering", ops)
    return Verdict(case, MATCHED, "", ops)


def _export_fails(case: Case) -> Optional[str]:
    """Why torch.export, or PyTorch's own default decompositions after it, cannot trace the case."""
    try:
        torch.export.export(Batch([case]), tuple(batch_inputs([case])), strict=False).run_decompositions()
    except Exception as exc:  # noqa: BLE001 - torch.export's own limits are not ours
        return _one_line(f"{type(exc).__name__}: {exc}")
    return None


class _Capture:
    """The compiled module, keeping what its last call returned (verify runs it once)."""

    def __init__(self, compiled) -> None:
        self.compiled, self.outputs = compiled, None

    def __call__(self, *args):
        self.outputs = self.compiled(*args)
        return self.outputs

    def __getattr__(self, name):
        return getattr(self.compiled, name)


def agrees(actual: torch.Tensor, expected: torch.Tensor) -> Optional[str]:
    """None when `actual` matches eager's `expected` (module docstring), else why not."""
    if actual.shape != expected.shape or actual.dtype != expected.dtype:
        return f"got {actual.dtype} {tuple(actual.shape)}, eager {expected.dtype} {tuple(expected.shape)}"
    if not expected.is_floating_point():
        return None if torch.equal(actual, expected) else "integer/bool values differ"
    a, e = actual.double(), expected.double()
    if not torch.equal(a.isnan(), e.isnan()) or not torch.equal(a.isinf() & (a > 0), e.isinf() & (e > 0)) \
            or not torch.equal(a.isinf() & (a < 0), e.isinf() & (e < 0)):
        return f"NaN/inf at other places: {int(a.isnan().sum())} NaN vs eager {int(e.isnan().sum())}"
    finite = e.isfinite()
    if not finite.any():
        return None
    error = (a - e).abs()[finite]
    scale = float(e[finite].abs().max())
    if expected.dtype == torch.float32:
        allowed = 1e-4 * min(1.0, scale) + 1e-3 * e[finite].abs()
    else:
        allowed = torch.full_like(error, 2e-2 * (scale + 1.0))
    worst = float((error - allowed).max())
    return None if worst <= 0 else f"max abs error {float(error.max()):.3g} (output magnitude {scale:.3g})"


def _compile(cases: Sequence[Case]):
    """(compiled, verify report, per case: None or why its outputs differ from eager's); the last
    two are None when the outputs cannot be compared (`_not_comparable`)."""
    module = Batch(cases)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # Never from a cache: a hit converts nothing, so the ops a verdict names would be missing.
        compiled = trtx.compile(module, batch_inputs(cases), min_block_size=1, progress=False,
                                cache_built_engines=False, reuse_cached_engines=False)
        if _not_comparable(compiled):
            return compiled, None, None
        capture = _Capture(compiled)
        verification = trtx.verify(capture, *batch_inputs(cases))
    with torch.no_grad():
        expected = module(*batch_inputs(cases))
    differences, start = [], 0
    for case in cases:
        actual = [a.cpu() for a in capture.outputs[start:start + case.outputs]]
        why = next((why for why in (agrees(a, e) for a, e in zip(actual, expected[start:start + case.outputs])) if why),
                   None)
        if why is not None and _closer_to_float32(case, actual):
            why = None
        differences.append(why)
        start += case.outputs
    return compiled, verification, differences


def _closer_to_float32(case: Case, actual: List[torch.Tensor]) -> bool:
    """A float16 case whose engine output matches the same sample computed in float32 (rounded to
    float16): eager float16 kernels that overflow or round where the engine does not (an exp in
    float16 inside eager's soft_margin_loss, say) are eager's imprecision, not the engine's."""
    if case.dtype != torch.float16:
        return False
    try:
        with torch.no_grad():
            wide = case.module(*[t.float() if t.dtype == torch.float16 else t.clone() for t in case.inputs])
    except Exception:  # noqa: BLE001 - an op that insists on its dtype: no float32 reference
        return False
    wide = [wide] if isinstance(wide, torch.Tensor) else list(wide)
    return len(wide) == len(actual) and all(
        agrees(a, w.to(a.dtype) if w.is_floating_point() else w) is None for a, w in zip(actual, wide))


def _run_alone(case: Case) -> Verdict:
    try:
        compiled, verification, differences = _compile([case])
    except Exception as exc:  # noqa: BLE001 - a crash is a verdict, not the end of the run
        why = _export_fails(case)
        if why is not None:
            return Verdict(case, NOT_APPLICABLE, f"torch.export or its default decompositions cannot trace it: {why}")
        return Verdict(case, MISMATCHED, _one_line(f"compile/verify raised {type(exc).__name__}: {exc}"))
    unrepeatable = sorted(why for _, why in _not_comparable(compiled))
    if verification is None:
        return Verdict(case, NOT_APPLICABLE, "; ".join(unrepeatable))
    verdict = _structural(case, _nodes_by_case(compiled).get(0, {}), compiled.compile_report)
    if verdict.state == MISMATCHED:
        return verdict
    if _failed_engines(compiled, verification):
        lines = [line.strip() for line in str(verification).splitlines() if "MISMATCH" in line or "diverges" in line]
        return Verdict(case, MISMATCHED, "verify: " + " | ".join(lines)[:300], verdict.ops)
    if differences[0] is not None:
        return Verdict(case, MISMATCHED, f"end to end against eager: {differences[0]}", verdict.ops)
    return verdict


def run_cases(cases: Sequence[Case]) -> List[Verdict]:
    """One verdict per case, in order."""
    if len(cases) == 1:
        return [_run_alone(cases[0])]
    try:
        compiled, verification, differences = _compile(cases)
    except Exception:  # noqa: BLE001 - find the case(s) responsible on their own
        return [_run_alone(c) for c in cases]
    if verification is None or _failed_engines(compiled, verification) or any(differences):
        return [_run_alone(c) for c in cases]
    nodes = _nodes_by_case(compiled)
    return [_structural(case, nodes.get(k, {}), compiled.compile_report) for k, case in enumerate(cases)]
