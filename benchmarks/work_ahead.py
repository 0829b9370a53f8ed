"""Benchmark (not a test): the work a compile does ahead on another thread, on and off, side by side.

    .venv/bin/python benchmarks/work_ahead.py [--models bert_base,gpt2] [--rounds 4] [--pause 4]
        [--parts copies,spare]

Per model (onnx_route.py's cases), interleaved rounds of `torch_tensorrt_rtx.compile`, each part on
and off in this process:
  copies  fp16 compile (enabled_precisions={float16}), engine cache off: the weights' fp16 copies
          made while torch.export traces (dynamo/conversion/_weight_casts.py) against none (the folds
          cast them during conversion)
  spare   fp32 compile with the engine cache on, a new empty cache directory per compile: the first
          stored engine written into a spare entry file whose pages were made during the build
          (dynamo/_engine_cache.py, SpareEntryFile) against the plain save into a new file
Each compile waits `--pause` seconds first. Prints medians of total, export, conversion, build,
engine cache store and own (all but export and build) seconds, and on over off. Run it alone on the
machine: work moved to another core only pays where that core is free.
"""
from __future__ import annotations

import argparse
import gc
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent), str(HERE.parent / "py")]

COLUMNS = ("total", "export", "conversion", "engine build", "engine cache store", "own")
_WIDTH = 19


def _compile(case, dtype, cache_dir):
    import torch

    import torch_tensorrt_rtx as trtx

    specs = [trtx.Input(min_shape=lo, opt_shape=opt, max_shape=hi, dtype=dt,
                        dim_names=tuple(dims.get(d) for d in range(len(lo))))
             for (lo, opt, hi), dt, dims in zip(case.ranges, case.dtypes, case.dynamic)]
    options = {"engine_cache_dir": cache_dir} if cache_dir else {}
    precisions = {dtype} if dtype != torch.float32 else set()
    start = time.perf_counter()
    compiled = trtx.compile(case.module, specs, progress=False, enabled_precisions=precisions, **options)
    total = time.perf_counter() - start
    phases = dict(compiled.compile_report.phase_seconds)
    phases["total"] = total
    phases["own"] = total - phases.get("export", 0.0) - phases.get("engine build", 0.0)
    return phases


def _switch(part: str, on: bool) -> None:
    """Turn `part` on or off in this process."""
    import torch_tensorrt_rtx._compile as entry
    import torch_tensorrt_rtx.dynamo._compiler as compiler
    from torch_tensorrt_rtx.dynamo import _engine_cache
    from torch_tensorrt_rtx.dynamo.conversion import _weight_casts

    if part == "copies":
        entry.start_weight_casts = _weight_casts.start_weight_casts if on else (lambda *args: None)
    else:
        compiler.start_spare_entry = _engine_cache.start_spare_entry if on else (lambda *args: None)


def compare(name: str, part: str, rounds: int, pause: float) -> None:
    import torch

    import onnx_route

    case = getattr(onnx_route, name)()
    dtype = torch.float16 if part == "copies" else torch.float32
    os.environ["TORCH_TENSORRT_RTX_ENGINE_CACHE"] = "0" if part == "copies" else "1"
    os.environ["TORCH_TENSORRT_RTX_PROGRAM_CACHE"] = "0"  # a cold compile every time
    _compile(case, dtype, None)  # warm-up: imports, first-trace costs (no cache directory touched)
    seconds = {mode: {c: [] for c in COLUMNS} for mode in ("on", "off")}
    for r in range(rounds):
        for mode in (("on", "off") if r % 2 == 0 else ("off", "on")):
            directory = tempfile.mkdtemp(prefix="trtx-work-ahead-") if part == "spare" else None
            _switch(part, mode == "on")
            try:
                gc.collect()
                time.sleep(pause)
                phases = _compile(case, dtype, directory)
            finally:
                _switch(part, True)
                if directory:
                    shutil.rmtree(directory, ignore_errors=True)
            for column in COLUMNS:
                seconds[mode][column].append(phases.get(column, 0.0))
    print(f"\n{name}, {part} ({'fp16, cache off' if part == 'copies' else 'fp32, cache on'}): medians of "
          f"{rounds} interleaved rounds, seconds (load {os.getloadavg()[0]:.1f})")
    print(f"{'':<5}" + "".join(f"{c:>{_WIDTH}}" for c in COLUMNS))
    medians = {mode: {c: statistics.median(v) for c, v in cols.items()} for mode, cols in seconds.items()}
    for mode in ("on", "off"):
        print(f"{mode:<5}" + "".join(f"{medians[mode][c]:{_WIDTH}.2f}" for c in COLUMNS))
    print(f"{'on/off':<5}" + "".join(f"{medians['on'][c] / medians['off'][c]:{_WIDTH}.2f}" if medians["off"][c] else
                                    f"{'-':>{_WIDTH}}" for c in COLUMNS), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="bert_base,gpt2")
    parser.add_argument("--parts", default="copies,spare")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--pause", type=float, default=4.0, help="seconds before each compile (default 4)")
    args = parser.parse_args()
    print(f"load {os.getloadavg()[0]:.1f} at start")
    for name in args.models.split(","):
        for part in args.parts.split(","):
            compare(name, part, args.rounds, args.pause)


if __name__ == "__main__":
    main()
