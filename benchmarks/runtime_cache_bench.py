"""Runtime cache store and engine record costs (a benchmark, not a test).

    .venv/bin/python benchmarks/runtime_cache_bench.py [--dir DIR]

1. RuntimeCacheFile.try_save_bytes / try_load for 1 MB and 100 MB blobs against a raw
   write + fsync + rename (+ directory fsync) and a raw read, in the same run, on the
   same directory. Prints medians and ratios.
2. Peak memory (max RSS above the baseline, measured in a fresh child process each) of
   reading a 500 MB packed engine record from disk and unpacking it; the target is at
   most one extra copy of the engine beyond the buffer read from disk. Linux only
   (reads VmRSS/VmHWM from /proc/self/status).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from torch_tensorrt_rtx.runtime import EngineRecord, RuntimeCacheFile

MB = 1 << 20


def _raw_save(path: str, blob: bytes) -> None:
    tmp = path + ".rawtmp"
    with open(tmp, "wb") as f:
        f.write(blob)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(os.path.dirname(path), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _raw_load(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _median_ms(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def bench_cache(directory: str) -> None:
    print(f"cache file store vs raw I/O in {directory} (median ms)")
    print(f"{'size':>6} {'op':>5} {'store':>9} {'raw':>9} {'ratio':>6}")
    for size_mb, runs in ((1, 40), (100, 7)):
        blob = os.urandom(size_mb * MB)
        store = RuntimeCacheFile(os.path.join(directory, f"store{size_mb}.bin"))
        raw = os.path.join(directory, f"raw{size_mb}.bin")
        store.try_save_bytes(blob)
        _raw_save(raw, blob)  # warm both
        save_s = _median_ms(lambda: store.try_save_bytes(blob), runs)
        save_r = _median_ms(lambda: _raw_save(raw, blob), runs)
        load_s = _median_ms(lambda: store.try_load(lambda b: True), runs)
        load_r = _median_ms(lambda: _raw_load(raw), runs)
        for op, s, r in (("save", save_s, save_r), ("load", load_s, load_r)):
            print(f"{size_mb:>4}MB {op:>5} {s:9.2f} {r:9.2f} {s / r:6.2f}")


def _status_bytes(key: str) -> int:
    # VmHWM is this address space's peak RSS. ru_maxrss is not usable here: Linux carries
    # it across fork+exec, so a child would report the parent's peak.
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{key} not in /proc/self/status")


def _child_measure(path: str, mode: str) -> None:
    base = _status_bytes("VmRSS")
    with open(path, "rb") as f:
        buf = f.read()  # the one buffer a loader must hold
    after_read = _status_bytes("VmHWM")
    rec = EngineRecord.unpack(buf)
    if mode == "to_list":  # what handing the record to the C++ Engine would cost
        rec.to_list()
    peak = _status_bytes("VmHWM")
    n = memoryview(rec.engine).nbytes
    print(f"{mode}: read peak +{(after_read - base) / MB:.0f} MB, total peak "
          f"+{(peak - base) / MB:.0f} MB = {(peak - base) / n:.2f}x the {n / MB:.0f} MB engine")


def bench_record(directory: str) -> None:
    path = os.path.join(directory, "record500.bin")
    engine = bytearray(500 * MB)
    engine[::4096] = b"\x01" * len(engine[::4096])
    packed = EngineRecord.new(engine, name="big", input_names=["x"], output_names=["y"]).pack()
    del engine
    with open(path, "wb") as f:
        f.write(packed)
    del packed
    print("500 MB engine record, peak RSS above baseline (fresh process each):")
    for mode in ("unpack", "to_list"):
        out = subprocess.run([sys.executable, __file__, "--child", path, mode],
                             capture_output=True, text=True, check=True)
        print("  " + out.stdout.strip())
    os.unlink(path)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default=None)
    ap.add_argument("--child", nargs=2, default=None)
    args = ap.parse_args()
    if args.child:
        _child_measure(*args.child)
        return
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        bench_cache(d)
        bench_record(d)


if __name__ == "__main__":
    main()
