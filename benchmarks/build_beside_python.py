"""Benchmark (not a test): a TensorRT-RTX build while another thread runs Python, with the builder's
callbacks in Python and with the native ones (dynamo/conversion/_native_callbacks.py).

    .venv/bin/python benchmarks/build_beside_python.py [--models resnet18d,bert,vit_b_16] [--rounds 4] [--busy 0.5]

An application that compiles on a worker thread while its main thread runs Python, or a compile
that does Python work of its own during a build, has a thread holding the GIL beside the build.
Each callback TensorRT-RTX makes into a Python logger or progress monitor needs the GIL, so the
build waits for that thread at every one (a ResNet-50 build makes about 4,900).
For each zoo model (the networks torch.compile builds, as benchmarks/engine_build_paths.py), one
fresh process per mode (`TORCH_TENSORRT_RTX_NATIVE_CALLBACKS=0` for Python callbacks; the choice is
made once per process) builds the networks with build_engine, in interleaved rounds, alone and
beside a thread that runs Python for --busy seconds from the build's start. Prints the median wall
seconds of each, the time the busy thread added, and the native mode's figures beside Python's.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("TORCH_TENSORRT_RTX_ENGINE_CACHE", "0")
REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "py"), str(REPO / "benchmarks")]

MODES = {"python": "0", "native": "1"}  # TORCH_TENSORRT_RTX_NATIVE_CALLBACKS


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    count = 0
    while time.perf_counter() < end:
        count += 1


def child(models: list, rounds: int, busy: float) -> None:
    import torch
    from engine_build_paths import _networks

    from torch_tensorrt_rtx.dynamo.conversion._engine_builder import build_engine
    from torch_tensorrt_rtx.dynamo.conversion._interpreter import trt_logger

    torch.set_num_threads(1)
    results = {"native": trt_logger().native is not None}
    for name in models:
        networks = _networks(name)
        seconds = {"alone": [], "beside": []}
        for _ in range(rounds):
            for kind in seconds:
                total = 0.0
                for network_def in networks:
                    worker = threading.Thread(target=_spin, args=(busy,)) if kind == "beside" else None
                    start = time.perf_counter()
                    if worker is not None:
                        worker.start()
                    engine, _ = build_engine(network_def, label="b", progress=False)
                    total += time.perf_counter() - start
                    engine.close()
                    if worker is not None:
                        worker.join()
                seconds[kind].append(total)
        results[name] = {kind: statistics.median(values) for kind, values in seconds.items()}
    print(json.dumps(results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet18d,bert,vit_b_16")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--busy", type=float, default=0.5)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    models = args.models.split(",")
    if args.child:
        child(models, args.rounds, args.busy)
        return
    found = {}
    for mode, switch in MODES.items():
        env = dict(os.environ, TORCH_TENSORRT_RTX_NATIVE_CALLBACKS=switch)
        done = subprocess.run([sys.executable, __file__, "--child", "--models", args.models, "--rounds",
                               str(args.rounds), "--busy", str(args.busy)], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{mode}: the child failed:\n{done.stderr[-3000:]}")
        found[mode] = json.loads(done.stdout.strip().splitlines()[-1])
        if found[mode]["native"] != (mode == "native"):
            raise SystemExit(f"{mode}: the child's callbacks were not {mode} (see _native_callbacks at debug level)")
    print(f"build wall s, median of {args.rounds} interleaved rounds: alone / beside {args.busy} s of Python "
          "(+ added), Python callbacks vs native")
    for name in models:
        cells = []
        for mode in MODES:
            alone, beside = found[mode][name]["alone"], found[mode][name]["beside"]
            cells.append(f"{mode} {alone:.3f} / {beside:.3f} (+{beside - alone:.3f})")
        print(f"{name:10s} " + "   ".join(cells))


if __name__ == "__main__":
    main()
