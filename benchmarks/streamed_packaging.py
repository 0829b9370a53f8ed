"""Benchmark (not a test): what each part of the streamed-engine path buys, on big-engine models.

    .venv/bin/python benchmarks/streamed_packaging.py [--models bert_base,gpt2] [--rounds 4] [--pause 4]

First, this machine's cost of writing into memory it freed a while ago: a 448 MB file written right
after another 448 MB file was deleted, and again `--pause` seconds after (a kernel with free page
reporting hands memory freed for a few seconds back to the host, so the second write faults it in
again). Then, per model (onnx_route.py's cases, fp32, engine cache off), interleaved rounds of
`torch_tensorrt_rtx.compile` with all of `dynamo/conversion/_engine_builder.py`'s streamed path, and
with one part turned off in this process:
  no prefault      no zeros written ahead over the engine's part of its file during the build
  no trailing hash each chunk hashed beside its write while TensorRT-RTX waits (the non-POSIX path)
  no mapping       the engine read back into an anonymous record instead of the file becoming it
Each compile waits `--pause` seconds first (as in onnx_route.py, where the other route runs
between). Prints medians of total, build and packaging seconds side by side, and each variant's
total over the full path's.
"""
from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ["TORCH_TENSORRT_RTX_ENGINE_CACHE"] = "0"  # time real builds
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent), str(HERE.parent / "py")]


def _write_file(chunk: bytes, count: int) -> float:
    with tempfile.TemporaryFile(buffering=0) as f:
        start = time.perf_counter()
        for _ in range(count):
            f.write(chunk)
        return time.perf_counter() - start


def memory_reuse(pause: float, rounds: int = 3) -> None:
    chunk = os.urandom(64 << 20)
    right_after, later = [], []
    for _ in range(rounds):
        _write_file(chunk, 7)
        right_after.append(_write_file(chunk, 7))  # into the pages the previous file just freed
        time.sleep(pause)
        later.append(_write_file(chunk, 7))
    print(f"448 MB written into a new file, {rounds} rounds: right after another file was freed "
          f"{min(right_after):.2f}-{max(right_after):.2f} s, {pause:.0f} s later {min(later):.2f}-{max(later):.2f} s")


def _variants():
    from torch_tensorrt_rtx.dynamo.conversion import _engine_builder as builder

    real = {"prefault": builder._Prefault.run, "trailing": builder.TrailingFileHash,
            "mapping": builder.SerializedEngine.map_record}

    def restore():
        builder._Prefault.run, builder.TrailingFileHash = real["prefault"], real["trailing"]
        builder.SerializedEngine.map_record = real["mapping"]

    def no_prefault():
        builder._Prefault.run = lambda self: None

    def no_trailing():
        builder.TrailingFileHash = lambda *args: None

    def no_mapping():
        builder.SerializedEngine.map_record = lambda self, before, after: None

    return restore, {"full path": lambda: None, "no prefault": no_prefault, "no trailing hash": no_trailing,
                     "no mapping": no_mapping}


def compare(name: str, rounds: int, pause: float) -> None:
    import torch

    import onnx_route

    case = getattr(onnx_route, name)()
    onnx_route.run_ours(case, torch.float32)  # warm-up: imports, first-trace costs
    restore, variants = _variants()
    seconds = {v: {"total": [], "build": [], "packaging": []} for v in variants}
    for r in range(rounds):
        order = list(variants) if r % 2 == 0 else list(reversed(variants))
        for variant in order:
            variants[variant]()
            try:
                gc.collect()
                time.sleep(pause)
                result = onnx_route.run_ours(case, torch.float32)
            finally:
                restore()
            seconds[variant]["total"].append(result["seconds"])
            seconds[variant]["build"].append(result["phases"].get("engine build", 0.0))
            seconds[variant]["packaging"].append(result["phases"].get("packaging", 0.0))
    full = statistics.median(seconds["full path"]["total"])
    print(f"\n{name}: medians of {rounds} interleaved rounds, seconds (load {os.getloadavg()[0]:.1f})")
    print(f"{'variant':<18} {'total':>6} {'build':>6} {'packaging':>9} {'total / full':>12}")
    for variant, parts in seconds.items():
        total = statistics.median(parts["total"])
        print(f"{variant:<18} {total:6.2f} {statistics.median(parts['build']):6.2f} "
              f"{statistics.median(parts['packaging']):9.2f} {total / full:12.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="bert_base,gpt2")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--pause", type=float, default=4.0, help="seconds before each compile (default 4)")
    args = parser.parse_args()
    print(f"load {os.getloadavg()[0]:.1f} at start")
    memory_reuse(max(args.pause, 6.0))
    for name in args.models.split(","):
        compare(name, args.rounds, args.pause)


if __name__ == "__main__":
    main()
