"""Compile-speed benchmark (not a test): how much torch_tensorrt_rtx adds on top of TensorRT-RTX.

    .venv/bin/python benchmarks/compile_speed.py [--dtype float16] [--models resnet,gpt_block]

For each example model (torch_tensorrt_rtx.examples_models, dynamic batch/sequence profiles), in a
fresh subprocess so peak RSS belongs to that model alone:
  export_s   torch.export.export alone (eager PyTorch tracing, no decompositions): first call in the
             process (cold, before any compile) and again after the compiles (warm)
  compile_s  torch_tensorrt_rtx.compile end to end, first call in the process (cold)
  warm_s     the same compile again in the same process (caches warm)
  build_s    TensorRT-RTX build_serialized_network alone for the same network(s), summed over engines
  ratio      warm_s / build_s (our overhead; target <= 1.3x) and cold ratio
  peak RSS and total engine bytes.
Prints a table and writes it to benchmarks/results/compile_speed_<dtype>.md (+ .json).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import subprocess
import sys
import time

logger = logging.getLogger("compile_speed")
HERE = os.path.dirname(os.path.abspath(__file__))


def _export_dynamic_shapes(specs):
    import torch

    shapes = []
    for k, spec in enumerate(specs):
        dims = {d: torch.export.Dim(f"in{k}_d{d}", min=lo, max=hi) for d, (lo, _o, hi) in spec.dynamic_dims.items()}
        shapes.append(dims or None)
    return tuple(shapes) if any(shapes) else None


def measure_one(name: str, dtype_name: str) -> dict:
    import torch

    import torch_tensorrt_rtx as trtx
    from torch_tensorrt_rtx import examples_models as zoo

    dtype = getattr(torch, dtype_name)
    model, specs = zoo.build(name, dtype)
    examples = tuple(spec.example() for spec in specs)
    start = time.perf_counter()
    torch.export.export(model, examples, dynamic_shapes=_export_dynamic_shapes(specs), strict=False)
    export_s = time.perf_counter() - start

    start = time.perf_counter()
    compiled = trtx.compile(model, specs, min_block_size=1, progress=False)
    cold_s = time.perf_counter() - start
    start = time.perf_counter()
    compiled = trtx.compile(model, specs, min_block_size=1, progress=False)
    warm_s = time.perf_counter() - start
    start = time.perf_counter()
    torch.export.export(model, examples, dynamic_shapes=_export_dynamic_shapes(specs), strict=False)
    export_warm_s = time.perf_counter() - start
    report = compiled.compile_report
    # EngineSummary.build_seconds is measured around builder.build_serialized_network only.
    build_s = sum(e.build_seconds for e in report.engines)
    engine_bytes = sum(e.engine_bytes for e in report.engines)
    return {
        "model": name, "dtype": dtype_name, "engines": len(report.engines),
        "fallback_ops": sum(report.fallback_ops.values()),
        "export_s": export_s, "export_warm_s": export_warm_s, "compile_cold_s": cold_s, "compile_warm_s": warm_s, "build_s": build_s,
        "ratio_warm": warm_s / build_s if build_s else float("inf"),
        "ratio_cold": cold_s / build_s if build_s else float("inf"),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "engine_bytes": engine_bytes,
    }


def _table(rows) -> str:
    head = ("| model | engines | fallback ops | torch.export s (cold) | torch.export s (warm) | compile s (cold) | compile s (warm) "
            "| build_serialized_network s | ratio warm | ratio cold | peak RSS MB | engine bytes |")
    lines = [head, "|" + "---|" * 12]
    for r in rows:
        lines.append(f"| {r['model']} | {r['engines']} | {r['fallback_ops']} | {r['export_s']:.2f} | {r['export_warm_s']:.2f} | "
                     f"{r['compile_cold_s']:.2f} | {r['compile_warm_s']:.2f} | {r['build_s']:.3f} | "
                     f"{r['ratio_warm']:.1f}x | {r['ratio_cold']:.1f}x | {r['peak_rss_mb']:.0f} | "
                     f"{r['engine_bytes']:,} |")
    return "\n".join(lines)


def main() -> int:
    from torch_tensorrt_rtx import examples_models as zoo

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    parser.add_argument("--models", default=",".join(zoo.MODELS))
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one model, print JSON
    parser.add_argument("--no-write", action="store_true", help="print only, do not write benchmarks/results")
    args = parser.parse_args()
    if args.one:
        logging.disable(logging.WARNING)
        print(json.dumps(measure_one(args.one, args.dtype)))
        return 0
    rows = []
    for name in args.models.split(","):
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--one", name, "--dtype", args.dtype],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            print(f"{name}: FAILED\n{proc.stderr[-2000:]}", file=sys.stderr)
            continue
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(f"measured {name}", file=sys.stderr)
    import tensorrt_rtx
    import torch

    header = (f"compile speed, dtype {args.dtype}, dynamic batch 1..4 / sequence 2..16 profiles; "
              f"torch {torch.__version__}, tensorrt_rtx {tensorrt_rtx.__version__}, {platform.machine()}, "
              f"{os.cpu_count()} CPUs, no GPU (CPU-only AOT build)")
    text = header + "\n\n" + _table(rows) + "\n"
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
