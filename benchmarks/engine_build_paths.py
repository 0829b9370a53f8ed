"""Benchmark (not a test): build_engine's two paths, streamed to a temporary file or taken from
TensorRT-RTX's host memory (dynamo/conversion/_engine_builder.py, STREAM_ABOVE_BYTES).

    .venv/bin/python benchmarks/engine_build_paths.py [--models bert,resnet18d] [--rounds 5]
    .venv/bin/python benchmarks/engine_build_paths.py --memory 16,64,128,256

Default: for each zoo model (tests/py/models/zoo.py, the networks torch.compile builds with
dynamic=False, as benchmarks/torch_compile_vs_eager.py), interleaved rounds of
  plain      builder.build_serialized_network alone (no hash, no copy)
  streamed   build_engine forced onto the streaming path, then packed into its record (the file
             becomes the record: no copy)
  in memory  build_engine forced into host memory, then copied into its record
printing the median and lowest process CPU seconds (all threads) of each, its median wall seconds,
the engine size and the
weight bytes the path is chosen from.
--memory: for networks of one N MB constant, each path in a fresh process: the peak resident
size above the baseline through build_engine and packing into the record (sampled every 5 ms).
"""
from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

os.environ.setdefault("TORCH_TENSORRT_RTX_ENGINE_CACHE", "0")
REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "py")]

FORCE = {"streamed": -1, "in memory": 1 << 50}  # STREAM_ABOVE_BYTES that forces each path


def _networks(name: str) -> list:
    """The NetworkDefinitions torch.compile(backend="tensorrt_rtx") builds for a zoo model."""
    import torch

    from tests.py.models.zoo import ALL_MODELS
    from torch_tensorrt_rtx.dynamo import _compiler
    from torch_tensorrt_rtx.dynamo._engine_op import intercept_engines

    captured, real = [], _compiler.build_engine
    _compiler.build_engine = lambda network_def, *a, **k: captured.append(network_def) or real(network_def, *a, **k)
    try:
        case = ALL_MODELS[name]()
        args, kwargs = case.make(*case.sizes[1])
        torch._dynamo.reset()
        compiled = torch.compile(case.model, backend="tensorrt_rtx", options={"progress": False})
        with torch.no_grad(), warnings.catch_warnings(), intercept_engines(
                lambda spec, inputs, record: [torch.empty(0) for _ in spec.outputs]):
            warnings.simplefilter("ignore")
            try:
                compiled(*args, **kwargs)
            except Exception:  # noqa: BLE001 - the stand-in's empty outputs may upset the PyTorch ops after it
                pass
    finally:
        _compiler.build_engine = real
    return captured


def _build_and_pack(network_def, bound: int) -> int:
    """build_engine on the path `bound` forces, then the engine packed into its record as compile
    packs it (a streamed engine's file becomes the record; one built in memory is copied into it).
    Returns the engine's size."""
    from torch_tensorrt_rtx.dynamo.conversion import _engine_builder
    from torch_tensorrt_rtx.runtime.engine_record import EngineRecord, engine_offset

    name = "_run_on_trt_0"
    saved, _engine_builder.STREAM_ABOVE_BYTES = _engine_builder.STREAM_ABOVE_BYTES, bound
    try:
        engine, _ = _engine_builder.build_engine(network_def, label=name, progress=False,
                                                 record_offset=engine_offset(name))
    finally:
        _engine_builder.STREAM_ABOVE_BYTES = saved
    record = EngineRecord.new(engine, name=name, input_names=network_def.input_names,
                              output_names=network_def.output_names).to_tensor()
    engine.sha256  # noqa: B018 - as packaging asks it
    engine.close()
    del record
    return engine.nbytes


def speed(models: list, rounds: int) -> None:
    import torch

    from torch_tensorrt_rtx.dynamo.conversion._engine_builder import builder_config, network_weight_bytes

    torch.set_num_threads(1)
    print(f"build CPU seconds, median (lowest) of {rounds} interleaved rounds")
    for name in models:
        for k, network_def in enumerate(_networks(name)):
            runs = {"plain": lambda: network_def.builder.build_serialized_network(
                        network_def.network, builder_config(network_def, progress=False, trim=False)).nbytes}
            runs.update({path: (lambda bound=bound: _build_and_pack(network_def, bound)) for path, bound in FORCE.items()})
            seconds = {path: [] for path in runs}
            wall = {path: [] for path in runs}
            for _ in range(rounds):
                for path, run in runs.items():
                    gc.collect()
                    start, start_wall = time.process_time(), time.perf_counter()
                    size = run()
                    seconds[path].append(time.process_time() - start)
                    wall[path].append(time.perf_counter() - start_wall)
            cells = "  ".join(f"{p} {statistics.median(s):.3f} ({min(s):.3f}, wall {statistics.median(wall[p]):.3f})"
                              for p, s in seconds.items())
            print(f"{name}[{k}]: engine {size / 2**20:.1f} MB, weights {network_weight_bytes(network_def.network) / 2**20:.1f}"
                  f" MB: {cells}")


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def one_constant_peak(megabytes: int, path: str) -> None:
    """Child: the peak of build_engine + copy for a network of one `megabytes` constant."""
    import numpy as np
    import tensorrt_rtx as trt

    from torch_tensorrt_rtx.dynamo.conversion._interpreter import NetworkDefinition, trt_logger

    rows = megabytes * 2**20 // (4 * 1024)
    builder = trt.Builder(trt_logger())
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    weights = np.random.rand(rows, 1024).astype(np.float32)
    x = network.add_input("x", trt.float32, (2, rows))
    constant = network.add_constant((rows, 1024), trt.Weights(weights))
    product = network.add_matrix_multiply(x, trt.MatrixOperation.NONE, constant.get_output(0), trt.MatrixOperation.NONE)
    network.mark_output(product.get_output(0))
    network_def = NetworkDefinition(builder, network, None, ["x"], ["y"], [{}], {}, [])
    base = peak = _rss_mb()
    stop = threading.Event()

    def sample():
        nonlocal peak
        while not stop.wait(0.005):
            peak = max(peak, _rss_mb())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    size = _build_and_pack(network_def, FORCE[path])
    stop.set()
    sampler.join()
    peak = max(peak, _rss_mb())
    print(f"{megabytes:5d} MB constant, {path:9s}: engine {size / 2**20:6.1f} MB, peak +{peak - base:5.0f} MB "
          f"({(peak - base) / (size / 2**20):.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="bert,resnet18d,vit_b_16,vae_decoder")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--memory", help="comma-separated constant sizes in MB: peak memory of each path")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        one_constant_peak(int(options.child[0]), options.child[1])
    elif options.memory:
        for megabytes in options.memory.split(","):
            for path in FORCE:
                subprocess.run([sys.executable, __file__, "--child", megabytes, path], check=True)
    else:
        speed(options.models.split(","), options.rounds)


if __name__ == "__main__":
    main()
