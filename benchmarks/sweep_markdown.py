"""Markdown tables for benchmarks/model_sweep.py: one row per model with a cell per entry point and
precision, the fallback ops ranked by models hit, then every error and backend note in full."""
from __future__ import annotations

import datetime
from pathlib import Path
from typing import Dict, List, Sequence, Tuple


def _cell(row: dict) -> str:
    text = f"**{row['status']}** eng {row['engines']} (dyn {row['dynamic_engines']}), fb {row['fallback']}, " \
           f"{row['seconds']} s"
    if row["entry"] == "torch.compile":
        text += f", builds {row['builds']}/{row.get('graphs', 0)}"
    return text


def write_markdown(rows: List[dict], fallbacks: Sequence[Tuple[str, List[str], str]], path: Path,
                   command: str) -> None:
    columns = sorted({(r["entry"], r["precision"]) for r in rows}, key=lambda c: (c[0] != "aot", c[1] != "fp32"))
    by_model: Dict[str, Dict[Tuple[str, str], dict]] = {}
    for r in rows:
        by_model.setdefault(r["model"], {})[r["entry"], r["precision"]] = r
    lines = [f"# model_sweep results ({datetime.date.today().isoformat()})", "",
             f"Command: `benchmarks/model_sweep.py {command}`", "",
             "Cells: status (full = all in engines and verified; partial = some ops in PyTorch, or modules dynamo did "
             "not trace, verified; "
             "MISMATCH = verify failed; none = no engine; crash = an exception reached the caller; timeout = over "
             "the per-cell limit), engines (of "
             "them dynamic), ops left in PyTorch, compile seconds (torch.compile: the first call, tracing "
             "included), and for torch.compile builds after two batch sizes / graphs of the first call.", "",
             "| model | " + " | ".join(f"{e} {p}" for e, p in columns) + " |",
             "|---|" + "---|" * len(columns)]
    for model, cells in by_model.items():
        lines.append(f"| {model} | " + " | ".join(_cell(cells[c]) if c in cells else "-" for c in columns) + " |")
    statuses = ("full", "partial", "MISMATCH", "none", "crash", "timeout")
    counts = {s: sum(r["status"] == s for r in rows) for s in statuses}
    lines += ["", "Cells by status: " + ", ".join(f"{k} {v}" for k, v in counts.items()), "",
              "## Ops left in PyTorch, by models hit", "", "| models | op | reason | which |", "|---|---|---|---|"]
    for op, models, reason in fallbacks:
        lines.append(f"| {len(models)} | `{op}` | {reason.replace('|', '/')} | {', '.join(models)} |")
    lines += ["", "## Errors, mismatches and backend notes per cell", ""]
    for r in rows:
        details = ([f"error: {r['error']}"] if r["error"] else []) + \
                  ([f"untraced: {r['untraced']}"] if r.get("untraced") else []) + \
                  [f"failed node {k}: {v}" for k, v in sorted(r["failed_nodes"].items())][:5] + \
                  [f"note: {n}" for n in r["notes"][:5]] + [f"warning: {w}" for w in r["warnings"][:3]]
        if details:
            lines.append(f"- {r['model']} {r['entry']} {r['precision']}:")
            lines += [f"  - {d.replace('|', '/')}" for d in details]
    path.write_text("\n".join(lines) + "\n")
