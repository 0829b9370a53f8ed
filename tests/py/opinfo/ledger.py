"""The OpInfo conformance ledger: every converter held to PyTorch's own sample inputs.

    .venv/bin/python -m tests.py.opinfo.ledger                      # every mapped OpInfo, prints the ledger
    .venv/bin/python -m tests.py.opinfo.ledger --write              # ... and rewrites tests/py/opinfo/LEDGER.md
    .venv/bin/python -m tests.py.opinfo.ledger --ops relu,add,aten.cat   # OpInfo names or ATen op names

Which OpInfos run: those whose lowered graph (tests/py/opinfo/opinfo_ops.json, written by
`discover`) contains an op with a registered converter. Each of their samples on CPU, in float32
and float16 where the OpInfo supports the dtype, goes through `torch_tensorrt_rtx.compile`
(min_block_size=1) and `torch_tensorrt_rtx.verify`, and ends matched, refused or mismatched
(`conformance` defines them); samples that are not tensor-in/tensor-out, that eager PyTorch
rejects or that torch.export (with its default decompositions) cannot trace are not applicable.
"""
from __future__ import annotations

import argparse
import collections
import datetime
import json
import pathlib
import sys
import time
import warnings
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import torch

from tests.py.opinfo.conformance import MATCHED, MISMATCHED, NOT_APPLICABLE, REFUSED, Verdict, run_cases
from tests.py.opinfo.discover import OPS_FILE
from tests.py.opinfo.samples import dtypes_to_run, op_db, sample_cases

LEDGER_FILE = pathlib.Path(__file__).with_name("LEDGER.md")
CHUNK = 12  # cases per compiled module
# Ops every graph has: an OpInfo whose lowered graph has nothing else exercises no converter.
_BOOKKEEPING = {"getitem", "aten.sym_size.int"}


def converter_ops() -> set:
    from torch_tensorrt_rtx.dynamo.conversion._registry import registered_targets

    names = set()
    for target in registered_targets():
        names.add(str(target) if isinstance(target, torch._ops.OpOverload) else getattr(target, "__name__", str(target)))
    return names - _BOOKKEEPING


def mapped_opinfos(filters: Optional[Sequence[str]] = None) -> Dict[str, List[str]]:
    """OpInfo name -> the converter ops its lowered graph contains, for OpInfos with at least one;
    narrowed to `filters` (OpInfo names, their last component, or ATen op names/packets)."""
    discovered = json.loads(OPS_FILE.read_text())
    registered = converter_ops()
    mapped = {}
    for name, found in discovered.items():
        ops = sorted(set(found.get("ops", [])) & registered)
        if ops and name in op_db():
            mapped[name] = ops
    if not filters:
        return mapped

    def wanted(name: str, ops: List[str]) -> bool:
        for f in filters:
            if f in (name, name.split(".")[-1], name.rsplit(".", 1)[0]) or name.startswith(f + "."):
                return True
            if any(f == op or op.startswith(f + ".") for op in ops):
                return True
        return False

    return {name: ops for name, ops in mapped.items() if wanted(name, ops)}


def ci_subset() -> List[str]:
    """Few OpInfos that together reach every converter any OpInfo reaches (a greedy cover of
    opinfo_ops.json, preferring OpInfos whose whole graph converts, then the smallest graphs)."""
    discovered = json.loads(OPS_FILE.read_text())
    registered = converter_ops()
    reach = {name: set(found.get("ops", [])) & registered for name, found in discovered.items()}
    reach = {name: ops for name, ops in reach.items() if ops}
    extra = {name: len(set(discovered[name]["ops"]) - registered - _BOOKKEEPING) for name in reach}
    uncovered = set().union(*reach.values()) if reach else set()
    picked = []
    while uncovered:
        useful = sorted(n for n in reach if reach[n] & uncovered)
        best = min(useful, key=lambda n: (extra[n] > 0, -len(reach[n] & uncovered), len(discovered[n]["ops"])))
        picked.append(best)
        uncovered -= reach[best]
    return sorted(picked)


def run_opinfo(name: str, limit: int = 0) -> Tuple[List[Verdict], Dict[str, int]]:
    """Verdicts for the OpInfo's samples in each dtype it supports, and the not-applicable counts."""
    op = op_db()[name]
    verdicts: List[Verdict] = []
    skipped: Dict[str, int] = collections.Counter()
    for dtype in dtypes_to_run(op):
        cases, not_applicable = sample_cases(op, dtype, limit)
        skipped.update(not_applicable)
        for start in range(0, len(cases), CHUNK):
            for verdict in run_cases(cases[start:start + CHUNK]):
                if verdict.state == NOT_APPLICABLE:
                    skipped[verdict.detail.split(":")[0]] += 1
                else:
                    verdicts.append(verdict)
    return verdicts, dict(skipped)


class Ledger:
    """Verdicts of a run, by OpInfo."""

    def __init__(self) -> None:
        self.verdicts: Dict[str, List[Verdict]] = {}
        self.skipped: Dict[str, Dict[str, int]] = {}
        self.converters: Dict[str, List[str]] = {}
        self.seconds = 0.0

    def add(self, name: str, converters: List[str], verdicts: List[Verdict], skipped: Dict[str, int]) -> None:
        self.verdicts[name], self.skipped[name], self.converters[name] = verdicts, skipped, converters

    def counts(self, name: Optional[str] = None) -> Dict[str, int]:
        names = [name] if name else list(self.verdicts)
        counter = collections.Counter(v.state for n in names for v in self.verdicts[n])
        counter[NOT_APPLICABLE] = sum(sum(self.skipped[n].values()) for n in names)
        return {state: counter[state] for state in (MATCHED, REFUSED, MISMATCHED, NOT_APPLICABLE)}

    def mismatches(self) -> List[Verdict]:
        return [v for vs in self.verdicts.values() for v in vs if v.state == MISMATCHED]

    def totals_line(self) -> str:
        c = self.counts()
        samples = c[MATCHED] + c[REFUSED] + c[MISMATCHED]
        return (f"{len(self.verdicts)} OpInfos, {samples} samples: {c[MATCHED]} matched, {c[REFUSED]} refused, "
                f"{c[MISMATCHED]} mismatched ({c[NOT_APPLICABLE]} not applicable)")

    def format(self) -> str:
        lines = ["| OpInfo | converters its graph uses | samples | matched | refused | mismatched | n/a |",
                 "|---|---|---:|---:|---:|---:|---:|"]
        for name in sorted(self.verdicts):
            c = self.counts(name)
            samples = c[MATCHED] + c[REFUSED] + c[MISMATCHED]
            ops = ", ".join(op.replace("aten.", "") for op in self.converters[name])
            lines.append(f"| {name} | {ops} | {samples} | {c[MATCHED]} | {c[REFUSED]} | {c[MISMATCHED]} | "
                         f"{c[NOT_APPLICABLE]} |")
        lines += ["", f"**Total: {self.totals_line()}**", ""]
        lines += ["## Mismatched samples", ""]
        lines += [f"- `{v.case.label}`: {v.detail}" for v in self.mismatches()] or ["None."]
        lines += ["", "## Refusal reasons (samples per OpInfo and reason)", ""]
        reasons = collections.Counter((n, v.detail) for n, vs in self.verdicts.items() for v in vs
                                      if v.state == REFUSED)
        lines += [f"- {n}: {count} x {why}" for (n, why), count in sorted(reasons.items())] or ["None."]
        lines += ["", "## Not applicable (samples by reason)", ""]
        skipped = collections.Counter()
        for s in self.skipped.values():
            skipped.update(s)
        lines += [f"- {count} x {why}" for why, count in skipped.most_common()] or ["None."]
        lines += ["", "## Converters by OpInfo samples that reach them", ""]
        reach = collections.defaultdict(collections.Counter)
        for vs in self.verdicts.values():
            for v in vs:
                for op in v.ops:
                    reach[op][v.state] += 1
        for op in sorted(converter_ops()):
            c = reach.get(op)
            lines.append(f"- {op}: " + (f"{sum(c.values())} samples ({c[MATCHED]} matched, {c[REFUSED]} refused, "
                                         f"{c[MISMATCHED]} mismatched)" if c else "no OpInfo sample reaches it"))
        return "\n".join(lines)


def run(names: Iterable[str], mapped: Dict[str, List[str]], limit: int = 0, progress: bool = True,
        after_each=None) -> Ledger:
    """Run the OpInfos `names`; `after_each(ledger, done, total)` is called after each one."""
    ledger = Ledger()
    start = time.perf_counter()
    names = list(names)
    for k, name in enumerate(names):
        verdicts, skipped = run_opinfo(name, limit)
        ledger.add(name, mapped[name], verdicts, skipped)
        if progress:
            c = ledger.counts(name)
            print(f"[{k + 1}/{len(names)} {time.perf_counter() - start:.0f} s] {name}: {c}", file=sys.stderr, flush=True)
        ledger.seconds = time.perf_counter() - start
        if after_each is not None:
            after_each(ledger, k + 1, len(names))
    return ledger


def write_ledger(ledger: Ledger, command: str, done: int, total: int) -> None:
    partial = "" if done == total else f" **Partial: {done} of {total} OpInfos so far.**"
    header = [
        "# OpInfo conformance ledger", "",
        f"Written by `{command}` on {datetime.date.today()} (torch {torch.__version__}), in "
        f"{ledger.seconds / 60:.0f} min on the shared 2-core build machine.{partial} Each sample of PyTorch's OpInfo "
        "database whose lowered graph uses a converter of torch_tensorrt_rtx, in float32 and float16, compiled "
        "with `min_block_size=1` and checked by `verify` (CPU reference executor against eager). States: see "
        "`tests/py/opinfo/conformance.py`.", ""]
    LEDGER_FILE.write_text("\n".join(header) + ledger.format() + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", default="", help="comma-separated OpInfo or ATen op names (default: all mapped)")
    parser.add_argument("--limit", type=int, default=0, help="at most this many samples per OpInfo and dtype")
    parser.add_argument("--write", action="store_true", help=f"rewrite {LEDGER_FILE.name}")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    filters = [f.strip() for f in args.ops.split(",") if f.strip()]
    mapped = mapped_opinfos(filters)
    if not mapped:
        parser.error(f"no mapped OpInfo matches {filters}")
    command = "python -m tests.py.opinfo.ledger --write" + (f" --ops {args.ops}" if filters else "") + (
        f" --limit {args.limit}" if args.limit else "")
    writer = (lambda ledger, done, total: write_ledger(ledger, command, done, total)) if args.write else None
    ledger = run(sorted(mapped), mapped, args.limit, after_each=writer)
    print(ledger.format())
    print(f"\n{ledger.totals_line()} in {ledger.seconds:.0f} s")
    return 1 if ledger.mismatches() else 0


if __name__ == "__main__":
    sys.exit(main())
