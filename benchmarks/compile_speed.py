"""Compile-speed benchmark (not a test): how much torch_tensorrt_rtx adds on top of TensorRT-RTX.

    .venv/bin/python benchmarks/compile_speed.py [--dtype float16] [--models resnet,gpt_block] [--repeat 3]

For each example model family (examples/models.py, dynamic batch/sequence profiles):
  export cold  torch.export.export alone (eager PyTorch tracing, no decompositions), first call in
               a fresh process of its own (pays torch.export's one-time setup)
  export warm  the same, median of --repeat calls after the compiles
  compile cold torch_tensorrt_rtx.compile end to end, first call in a fresh process: nothing ran
               before it, so it pays torch.export's one-time setup too
  compile warm the same compile again in that process, median of --repeat calls
  build        TensorRT-RTX build_serialized_network alone, summed over engines, in the warm run
  ratio        compile / build (our overhead; target <= 1.3x), warm and cold
  floor        (export + decompositions + build) / build: the ratio even if everything of ours
               (lowering, partitioning, conversion, packaging) took no time at all
  peak RSS of that process and total engine bytes.
The compile is end to end, so it contains torch.export and the decompositions: the phase tables
split each compile by CompileReport.phase_seconds (export, decompositions, lowering, partitioning,
conversion, engine build, packaging; "other" = compile wall time minus their sum).
Prints the tables and writes them to benchmarks/results/compile_speed_<dtype>.md (+ .json).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TORCH_TENSORRT_RTX_ENGINE_CACHE", "0")  # time real builds: no engine cache unless asked


logger = logging.getLogger("compile_speed")
HERE = os.path.dirname(os.path.abspath(__file__))


def _zoo():
    """examples/models.py, the repository's example model families (imports torch)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from examples import models

    return models


def _export_dynamic_shapes(specs):
    import torch

    shapes = []
    for k, spec in enumerate(specs):
        dims = {d: torch.export.Dim(f"in{k}_d{d}", min=lo, max=hi) for d, (lo, _o, hi) in spec.dynamic_dims.items()}
        shapes.append(dims or None)
    return tuple(shapes) if any(shapes) else None


def _time_export(name: str, dtype_name: str, repeat: int) -> list:
    import torch

    model, specs = _zoo().build(name, getattr(torch, dtype_name))
    examples = tuple(spec.example() for spec in specs)
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        torch.export.export(model, examples, dynamic_shapes=_export_dynamic_shapes(specs), strict=False)
        seconds.append(time.perf_counter() - start)
    return seconds


def _compile_once(model, specs) -> dict:
    import torch_tensorrt_rtx as trtx

    start = time.perf_counter()
    compiled = trtx.compile(model, specs, min_block_size=1, progress=False)
    seconds = time.perf_counter() - start
    report = compiled.compile_report
    # EngineSummary.build_seconds is measured around builder.build_serialized_network only.
    return {"seconds": seconds, "build_s": sum(e.build_seconds for e in report.engines),
            "engines": len(report.engines), "fallback_ops": sum(report.fallback_ops.values()),
            "engine_bytes": sum(e.engine_bytes for e in report.engines), "phases": dict(report.phase_seconds)}


def measure_one(name: str, dtype_name: str, repeat: int) -> dict:
    import torch

    model, specs = _zoo().build(name, getattr(torch, dtype_name))
    cold = _compile_once(model, specs)  # the first torch.export of this process happens in here
    warm_runs = sorted((_compile_once(model, specs) for _ in range(repeat)), key=lambda r: r["seconds"])
    warm = warm_runs[len(warm_runs) // 2]  # the median run, so its phases add up to its total
    export_warm_s = statistics.median(_time_export(name, dtype_name, repeat))
    phases = warm["phases"]
    floor = phases.get("export", 0.0) + phases.get("decompositions", 0.0) + warm["build_s"]
    return {
        "model": name, "dtype": dtype_name, "engines": warm["engines"], "fallback_ops": warm["fallback_ops"],
        "export_warm_s": export_warm_s, "compile_cold_s": cold["seconds"], "compile_warm_s": warm["seconds"],
        "compile_warm_all_s": [r["seconds"] for r in warm_runs], "build_s": warm["build_s"],
        "build_cold_s": cold["build_s"],
        "ratio_warm": warm["seconds"] / warm["build_s"] if warm["build_s"] else float("inf"),
        "ratio_cold": cold["seconds"] / cold["build_s"] if cold["build_s"] else float("inf"),
        "ratio_floor": floor / warm["build_s"] if warm["build_s"] else float("inf"),
        "phases_warm": phases, "phases_cold": cold["phases"],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "engine_bytes": warm["engine_bytes"],
    }


def _table(rows) -> str:
    head = ("| model | engines | fallback ops | torch.export s (cold) | torch.export s (warm) | compile s (cold) "
            "| compile s (warm) | build_serialized_network s (warm) | ratio warm | ratio cold | floor (export+decomp+build)/build "
            "| peak RSS MB | engine bytes |")
    lines = [head, "|" + "---|" * 13]
    for r in rows:
        lines.append(f"| {r['model']} | {r['engines']} | {r['fallback_ops']} | {r['export_s']:.2f} | {r['export_warm_s']:.2f} | "
                     f"{r['compile_cold_s']:.2f} | {r['compile_warm_s']:.2f} | {r['build_s']:.3f} | "
                     f"{r['ratio_warm']:.1f}x | {r['ratio_cold']:.1f}x | {r['ratio_floor']:.1f}x | {r['peak_rss_mb']:.0f} | "
                     f"{r['engine_bytes']:,} |")
    return "\n".join(lines)


def _phase_table(rows, key: str, total_key: str) -> str:
    from torch_tensorrt_rtx.dynamo._summary import PHASES

    lines = ["| model | " + " | ".join(PHASES) + " | other | compile total | ours (lowering..packaging, no build) |",
             "|" + "---|" * (len(PHASES) + 4)]
    for r in rows:
        phases, total = r[key], r[total_key]
        other = total - sum(phases.values())
        ours = sum(phases.get(p, 0.0) for p in ("lowering", "partitioning", "conversion", "packaging"))
        cells = [f"{phases.get(p, 0.0):.3f} ({100 * phases.get(p, 0.0) / total:.0f}%)" for p in PHASES]
        lines.append(f"| {r['model']} | " + " | ".join(cells) + f" | {other:.3f} | {total:.3f} | "
                     f"{ours:.3f} ({100 * ours / total:.0f}%) |")
    return "\n".join(lines)


def _render(header: str, rows) -> str:
    torch_bound = [r["model"] for r in rows
                   if min(r["phases_warm"].get("export", 0.0), r["phases_warm"].get("decompositions", 0.0)) > r["build_s"]]
    verdict = (f"For {', '.join(torch_bound)}, export alone and decompositions alone each take longer than "
               "the engine build, so the 1.3x target cannot be met whatever our own phases cost (see the floor "
               "column above)." if torch_bound else "")
    return (header + "\n\n" + _table(rows) + "\n\n"
            "Where the warm compile's time goes (CompileReport.phase_seconds, seconds and share of the compile). "
            "export and decompositions are two full traces of the model by torch (torch.export, then "
            f"run_decompositions re-tracing it through the decomposition table). {verdict}\n\n"
            + _phase_table(rows, "phases_warm", "compile_warm_s") + "\n\n"
            "Where the cold compile's time goes (the first torch.export of the process, with torch's one-time "
            "setup, happens inside it; \"other\" is mostly the first import of the compiler, which pulls in "
            "sympy before torch.export would):\n\n"
            + _phase_table(rows, "phases_cold", "compile_cold_s") + "\n")


def _run_self(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, os.path.abspath(__file__), *args], capture_output=True, text=True, check=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    parser.add_argument("--models", default=",".join(_zoo().MODELS))
    parser.add_argument("--repeat", type=int, default=3, help="warm compiles / exports per model (median reported)")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one model, print JSON
    parser.add_argument("--export-cold", help=argparse.SUPPRESS)  # internal: first export of a process
    parser.add_argument("--no-write", action="store_true", help="print only, do not write benchmarks/results")
    args = parser.parse_args()
    if args.one or args.export_cold:
        logging.disable(logging.WARNING)
        if args.one:
            print(json.dumps(measure_one(args.one, args.dtype, args.repeat)))
        else:
            print(json.dumps(_time_export(args.export_cold, args.dtype, 1)[0]))
        return 0
    load_before = os.getloadavg()
    rows = []
    for name in args.models.split(","):
        proc = _run_self("--one", name, "--dtype", args.dtype, "--repeat", str(args.repeat))
        export_proc = _run_self("--export-cold", name, "--dtype", args.dtype)
        failed = next((p for p in (proc, export_proc) if p.returncode != 0), None)
        if failed is not None:
            print(f"{name}: FAILED\n{failed.stderr[-2000:]}", file=sys.stderr)
            continue
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        row["export_s"] = json.loads(export_proc.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(f"measured {name}", file=sys.stderr)
    load_after = os.getloadavg()
    import tensorrt_rtx
    import torch

    header = (f"compile speed, dtype {args.dtype}, dynamic batch 1..4 / sequence 2..16 profiles; "
              f"torch {torch.__version__}, tensorrt_rtx {tensorrt_rtx.__version__}, {platform.machine()}, "
              f"{os.cpu_count()} CPUs, no GPU (CPU-only AOT build). The machine is shared: other jobs may run "
              f"during the benchmark (1-min load average {load_before[0]:.1f} at start, {load_after[0]:.1f} at end), "
              f"so timings are noisy; warm numbers are the median of {args.repeat} runs.")
    text = _render(header, rows)
    print(text)
    if not args.no_write:
        base = os.path.join(HERE, "results", f"compile_speed_{args.dtype}")
        os.makedirs(os.path.dirname(base), exist_ok=True)
        with open(base + ".md", "w") as f:
            f.write(text)
        with open(base + ".json", "w") as f:
            json.dump({"header": header, "rows": rows}, f, indent=1)
        print(f"wrote {base}.md and {base}.json", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
