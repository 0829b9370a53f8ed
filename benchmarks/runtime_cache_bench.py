"""Runtime cache store and engine record costs (a benchmark, not a test).

    .venv/bin/python benchmarks/runtime_cache_bench.py [--dir DIR]

1. The runtime cache container, Python and C++ stores: saving and loading one engine's
   entry with 1, 16 and 256 entries (100 MB in all) against a raw write + fsync + rename
   (+ directory fsync) of the same bytes and a raw read of one entry, in the same run, on
   the same directory. Targets: a save within 1.5x of raw; a load reads only its own
   entry plus the index. Prints medians and ratios.
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

from torch_tensorrt_rtx.runtime import EngineRecord, RuntimeCacheFile, engine_key

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


def _stores(path: str):
    """(name, store) for the Python store and, when built, the C++ store through _C."""
    stores = [("python", RuntimeCacheFile(path + ".py"))]
    try:
        from torch_tensorrt_rtx import _C

        stores.append(("c++", _C.RuntimeCacheFile(path + ".cxx")))
    except ImportError:
        print("  (C++ store not built: run scripts/build_native.sh to include it)")
    return stores


def _save(store, key, blob):
    if isinstance(store, RuntimeCacheFile):
        return store.try_save_entry(key, blob)
    return store.try_save_entry(key, blob, None)


def _load(store, key):
    return store.try_load_entry(key)


def bench_cache(directory: str) -> None:
    """Save and load one engine's entry in a container of 1, 16 and 256 entries holding
    100 MB in all, against raw write+fsync+rename of the same total bytes (what any save
    has to write) and a raw read of one entry's bytes (what a load has to read)."""
    print(f"runtime cache container vs raw I/O in {directory} (median ms; 100 MB in all)")
    print(f"{'entries':>7} {'store':>7} {'op':>5} {'store':>9} {'raw':>9} {'ratio':>6}")
    total = 100 * MB
    for count, runs in ((1, 7), (16, 7), (256, 7)):
        size = total // count
        blobs = [os.urandom(size) for _ in range(count)] if count > 1 else [os.urandom(size)]
        keys = [engine_key(str(i).encode()) for i in range(count)]
        raw = os.path.join(directory, f"raw{count}.bin")
        raw_blob = b"".join(blobs)
        save_r = _median_ms(lambda: _raw_save(raw, raw_blob), runs)
        load_r = _median_ms(lambda: _raw_read_range(raw, 0, size), runs)
        for name, store in _stores(os.path.join(directory, f"c{count}")):
            for key, blob in zip(keys, blobs):
                assert _save(store, key, blob)
            middle = count // 2
            save_s = _median_ms(lambda: _save(store, keys[middle], blobs[middle]), runs)
            load_s = _median_ms(lambda: _load(store, keys[middle]), runs)
            for op, s_, r_ in (("save", save_s, save_r), ("load", load_s, load_r)):
                print(f"{count:>7} {name:>7} {op:>5} {s_:9.2f} {r_:9.2f} {s_ / r_:6.2f}")


def _raw_read_range(path: str, offset: int, size: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(size)


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
