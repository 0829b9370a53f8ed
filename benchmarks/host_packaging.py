"""Benchmark (not a test): where an in-memory engine's packaging goes, and what two alternatives buy.

    .venv/bin/python benchmarks/host_packaging.py [--models resnet50] [--dtype float32] [--rounds 6] [--peak]

An engine whose network holds at most STREAM_ABOVE_BYTES of weights is built into TensorRT-RTX's host
memory (`HostEngine`); packaging then hashes it (SHA-256, on another thread from the moment the
build returns) while copying it into a fresh packed record (`EngineRecord.to_tensor`, its pages
populated in one madvise call first). Per model (onnx_route.py's cases; its network captured from
one compile), interleaved rounds, in one process, of `build_engine` and packing, three ways:
  host        as compile does it
  ahead       the record's memory mapped during the build on a thread (MADV_POPULATE_WRITE, sized from
              the network's weights plus 4 MB, written here for the measurement), the engine then
              copied into pages already in place
  streamed    STREAM_ABOVE_BYTES forced below the network's weights: the engine streamed into a
              temporary file that becomes the record (prefault, trailing hash, mapping)
Prints median seconds of the build, the copy into the record, the wait for the hash after it, both
(after the build) and the total, and this machine's SHA-256 throughput (hashlib): on the host path
the hash, not the copy, bounds packaging once the copy is as fast as the hash.
--peak: each variant once more in a fresh process, the resident size's peak above the process's
baseline through the build and packing (sampled every 2 ms).
"""
from __future__ import annotations

import argparse
import ctypes
import gc
import hashlib
import json
import mmap
import os
import statistics
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

os.environ["TORCH_TENSORRT_RTX_ENGINE_CACHE"] = "0"  # time real builds
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent), str(HERE.parent / "py")]

VARIANTS = ("host", "ahead", "streamed")
_MADV_POPULATE_WRITE = 23


def _network(model: str, dtype_name: str):
    """The NetworkDefinition compile builds for onnx_route.py's case `model` (one engine)."""
    import torch

    import onnx_route
    from torch_tensorrt_rtx.dynamo import _compiler

    captured, real = [], _compiler.build_engine
    _compiler.build_engine = lambda network_def, *a, **k: captured.append(network_def) or real(network_def, *a, **k)
    try:
        torch.manual_seed(0)
        case = onnx_route.MODELS[model]()
        case.module.eval()
        onnx_route._one(onnx_route.run_ours, case, getattr(torch, dtype_name))
    finally:
        _compiler.build_engine = real
    if len(captured) != 1:
        raise SystemExit(f"{model} compiled to {len(captured)} engines; this benchmark takes models of one")
    return captured[0]


class _PopulatedAhead:
    """Anonymous memory of `nbytes` whose pages a thread maps, 4 MB per madvise call, until `stop`."""

    def __init__(self, nbytes: int) -> None:
        self.memory = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE)
        anchor = ctypes.c_char.from_buffer(self.memory)
        self.start = ctypes.addressof(anchor)
        del anchor  # an exported buffer would forbid resizing the mapping
        libc = ctypes.CDLL(None, use_errno=True)
        self.madvise = libc.madvise
        self.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        self.nbytes, self.done, self.halt = nbytes, 0, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while self.done < self.nbytes and not self.halt.is_set():
            step = min(4 << 20, self.nbytes - self.done)
            if self.madvise(self.start + self.done, step, _MADV_POPULATE_WRITE) != 0:
                raise OSError(ctypes.get_errno(), "madvise(MADV_POPULATE_WRITE) refused")
            self.done += step

    def stop(self) -> None:
        self.halt.set()
        self.thread.join()


def _one(network_def, variant: str) -> dict:
    """One build and packing on `variant`'s path: seconds of each step."""
    import torch

    from torch_tensorrt_rtx.dynamo.conversion import _engine_builder
    from torch_tensorrt_rtx.runtime.engine_record import EngineRecord, _around_engine, engine_offset

    name = "_run_on_trt_0"
    saved = _engine_builder.STREAM_ABOVE_BYTES
    ahead = None
    if variant == "streamed":
        _engine_builder.STREAM_ABOVE_BYTES = -1
    elif variant == "ahead":
        weights = _engine_builder.network_weight_bytes(network_def.network)
        ahead = _PopulatedAhead(engine_offset(name) + weights + (4 << 20))
    start = time.perf_counter()
    try:
        engine, _ = _engine_builder.build_engine(network_def, label=name, progress=False,
                                                 record_offset=engine_offset(name))
    finally:
        _engine_builder.STREAM_ABOVE_BYTES = saved
        if ahead is not None:
            ahead.stop()
    built = time.perf_counter()
    record = EngineRecord.new(engine, name=name, input_names=network_def.input_names,
                              output_names=network_def.output_names)
    if ahead is None:
        tensor = record.to_tensor()
    else:  # the packed record's bytes, as _pack_into writes them, into the memory mapped ahead
        before, after = _around_engine(record._parts())
        memory = ahead.memory
        memory.resize(len(before) + engine.nbytes + len(after))
        memory[:len(before)] = before
        engine.readinto(memoryview(memory)[len(before):len(before) + engine.nbytes])
        memory[len(before) + engine.nbytes:] = after
        tensor = torch.frombuffer(memory, dtype=torch.uint8)
    copied = time.perf_counter()
    engine.sha256  # noqa: B018 - as packaging asks it, after the copy
    hashed = time.perf_counter()
    engine.close()
    del tensor
    return {"build": built - start, "copy": copied - built, "hash wait": hashed - copied,
            "after build": hashed - built, "total": hashed - start}


def _sha256_seconds_per_gb() -> float:
    data = os.urandom(64 << 20)
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        hashlib.sha256(data).digest()
        runs.append(time.perf_counter() - start)
    return min(runs) / (len(data) / 1e9)


def speed(model: str, dtype_name: str, rounds: int) -> None:
    network_def = _network(model, dtype_name)
    rows = {v: [] for v in VARIANTS}
    for k in range(rounds):
        for variant in VARIANTS[k % 3:] + VARIANTS[:k % 3]:  # rotating order against drifting load
            gc.collect()
            time.sleep(0.5)
            rows[variant].append(_one(network_def, variant))
    keys = list(rows["host"][0])
    print(f"{model} {dtype_name}, median seconds of {rounds} interleaved rounds (load: {os.getloadavg()[0]:.2f})")
    print(f"  {'variant':<9} " + " ".join(f"{k:>11}" for k in keys))
    for variant, runs in rows.items():
        print(f"  {variant:<9} " + " ".join(f"{statistics.median(r[k] for r in runs):>11.3f}" for k in keys))


_PEAK_CHILD = """
import sys, threading, time, json
sys.path.insert(0, {here!r})
import host_packaging as hp
network_def = hp._network({model!r}, {dtype!r})
import gc; gc.collect(); time.sleep(0.3)
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20
base = rss(); peak = [base]; done = []
def sample():
    while not done:
        peak[0] = max(peak[0], rss()); time.sleep(0.002)
threading.Thread(target=sample, daemon=True).start()
hp._one(network_def, {variant!r})
done.append(1); time.sleep(0.01)
print(json.dumps(peak[0] - base))
"""


def peak(model: str, dtype_name: str) -> None:
    print(f"{model} {dtype_name}: resident peak above the baseline through build and packing, fresh processes")
    for variant in VARIANTS:
        code = _PEAK_CHILD.format(here=str(HERE), model=model, dtype=dtype_name, variant=variant)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        print(f"  {variant:<9} {float(out.strip().splitlines()[-1]):6.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet50", help="onnx_route.py models of one engine")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16"])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--peak", action="store_true", help="also each variant's resident peak (fresh processes)")
    options = parser.parse_args()
    warnings.simplefilter("ignore")
    print(f"SHA-256 (hashlib): {_sha256_seconds_per_gb():.3f} s per GB")
    for model in options.models.split(","):
        speed(model, options.dtype, options.rounds)
        if options.peak:
            peak(model, options.dtype)


if __name__ == "__main__":
    main()
