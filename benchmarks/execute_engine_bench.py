"""Benchmark (not a test): what the C++ runtime adds around TensorRT.

1. Per-call dispatch overhead of ``torch.ops.tensorrt.execute_engine`` with the scripted
   test backend (no TensorRT: the "engine" doubles a tiny CPU tensor) vs a no-op custom
   op ``torch.ops.ttrx_test.noop`` from the same library, in the same run.
   (Runtime cache file costs, both runtimes: benchmarks/runtime_cache_bench.py.)

Needs: bazel build //tests/core/runtime:libscripted_runtime_ops.so && scripts/build_native.sh
Run:   .venv/bin/python benchmarks/execute_engine_bench.py [--calls N] [--repeats R]
Prints medians (of R repeats) and ratios.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "py"))
SCRIPTED_OPS = REPO / "bazel-bin" / "tests" / "core" / "runtime" / "libscripted_runtime_ops.so"


def per_call_us(fn, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls * 1e6


def median_us(fn, calls: int, repeats: int) -> float:
    fn()  # warm-up (first execute_engine deserializes and creates the context)
    return statistics.median(per_call_us(fn, calls) for _ in range(repeats))


def bench_dispatch(calls: int, repeats: int) -> None:
    import torch

    from torch_tensorrt_rtx.runtime.engine_record import EngineRecord

    torch.ops.load_library(str(SCRIPTED_OPS))
    record = EngineRecord.new(b"SCRIPTED-ENGINE v1\ninput x\noutput y\n", name="bench",
                              input_names=["x"], output_names=["y"])
    engine = torch.classes.tensorrt.Engine(record.to_list())
    with tempfile.TemporaryDirectory() as tmp:
        engine.set_runtime_settings(tmp + "/cache.bin", "lazy", "disabled", "static")
        x = [torch.ones(8)]
        noop = median_us(lambda: torch.ops.ttrx_test.noop(x), calls, repeats)
        execute = median_us(lambda: torch.ops.tensorrt.execute_engine(x, engine), calls, repeats)
        alloc = median_us(lambda: torch.empty(8), calls, repeats)
        del engine
    print(f"dispatch ({calls} calls x {repeats} repeats, median per call)")
    print(f"  ttrx_test.noop                  {noop:8.2f} us")
    print(f"  tensorrt.execute_engine (test)  {execute:8.2f} us   ratio {execute / noop:5.2f}x noop")
    print(f"  torch.empty(8) for reference    {alloc:8.2f} us")
    print(f"  added by our runtime (execute - noop): {execute - noop:.2f} us/call")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    if not SCRIPTED_OPS.is_file():
        print(f"missing {SCRIPTED_OPS}: bazel build //tests/core/runtime:libscripted_runtime_ops.so")
        return 2
    bench_dispatch(args.calls, args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
