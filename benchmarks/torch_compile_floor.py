"""Benchmark (not a test): how low torch.compile(backend="tensorrt_rtx") can go against backend="eager",
from the costs our backend cannot drop: the ATen trace of dynamo's graph, the TensorRT-RTX build and
packing each engine into the program (its SHA-256, the engine's identity, and one copy into its record).

    .venv/bin/python benchmarks/torch_compile_floor.py [--models vit_b_16,vae_decoder,resnet18d] [--repeats 5]

Same rounds as benchmarks/torch_compile_vs_eager.py (warm-up, then interleaved eager / trtx rounds,
one torch thread, engines answered by its stand-in; compile = first call - second call), in CPU
seconds of the process (all threads), which moves far less than wall time on a shared machine.
In each trtx round the CPU seconds of the ATen trace (`_dynamo_aten._trace`, the make_fx of dynamo's
graph), of `build_engine` (TensorRT-RTX's build) and of packaging (`_compiler._package`: waiting for
the engine's hash, which a thread starts when the build returns, and copying the engine into its
record) are taken apart (a graph the backend exports instead of tracing, one that writes to an input
say, counts its export under rest):
  eager, trtx   median compile CPU seconds of each backend
  ratio         trtx / eager (issue 21's target: at most 1.5)
  trace, build, pack  median CPU seconds of the ATen trace, the engine build(s) and their packaging
                (the hash thread's CPU lands in whichever of build and pack it overlaps)
  rest          trtx - eager - trace - build - pack: our other phases, plus what dynamo does more for us
  after         CPU seconds dynamo spends between our backend returning and the graph's first call
                (guards, bytecode): the most a build running beside it on a free core could hide
  floors        (eager + build + pack) / eager and (eager + trace + build + pack) / eager: the ratio
                if everything else cost nothing; above 1.5, the target is out of reach without a
                cheaper build or packaging (or, for the second, without the trace)

Then TensorRT-RTX's fixed cost per build, on one-layer networks built with tensorrt_rtx alone (no
torch, no wrapper of ours): with no weight, and with one 64x64 weight. On Linux with glibc, a
build of a network with any weight allocates and zero-fills a 64 MiB host buffer (seen with gdb:
operator new(67108864) under build_serialized_network), about 16,600 fresh pages: most of that
build's CPU time is the kernel faulting them in (sys). Run this script with
MALLOC_MMAP_THRESHOLD_=134217728 MALLOC_TRIM_THRESHOLD_=268435456 to see builds with that buffer kept
resident between builds (glibc then serves it from the heap and does not give it back: about 65 MB
more resident memory, and every build after the first skips those faults).
"""
from __future__ import annotations

import argparse
import gc
import os
import resource
import statistics
import sys
import time
import warnings
from typing import Dict, List

os.environ.setdefault("TORCH_TENSORRT_RTX_ENGINE_CACHE", "0")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch_compile_vs_eager as rounds_of  # noqa: E402  (puts the repository and py/ on sys.path)


class _CpuMeter:
    """Wraps a module's function so each call adds its process CPU seconds to `seconds`."""

    def __init__(self, module, name: str) -> None:
        self.module, self.name, self.seconds = module, name, 0.0
        self.real = getattr(module, name)

    def __enter__(self) -> "_CpuMeter":
        def timed(*args, **kwargs):
            start = time.process_time()
            try:
                return self.real(*args, **kwargs)
            finally:
                self.seconds += time.process_time() - start

        setattr(self.module, self.name, timed)
        return self

    def __exit__(self, *exc) -> None:
        setattr(self.module, self.name, self.real)


class _AfterBackend:
    """Wraps the backend's per-graph compile: `seconds` adds up, per graph, the process CPU seconds
    from its return to the first call of what it returned."""

    def __init__(self) -> None:
        from torch_tensorrt_rtx.dynamo import backend

        self.module, self.seconds = backend, 0.0
        self.real = backend._compile_dynamo_graph

    def __enter__(self) -> "_AfterBackend":
        def compile_and_mark(*args, **kwargs):
            compiled = self.real(*args, **kwargs)
            returned, called = time.process_time(), []

            def first_call_marked(*inputs):
                if not called:
                    called.append(True)
                    self.seconds += time.process_time() - returned
                return compiled(*inputs)

            return first_call_marked

        self.module._compile_dynamo_graph = compile_and_mark
        return self

    def __exit__(self, *exc) -> None:
        self.module._compile_dynamo_graph = self.real


def _compile_cpu(model, backend: str, args, kwargs) -> float:
    round_ = rounds_of._round(model, backend, args, kwargs, False)
    return round_.first.cpu - round_.run.cpu


def model_floors(name: str, repeats: int) -> Dict[str, float]:
    """Median CPU seconds of eager compile, trtx compile, the trace, the build, packaging and dynamo's
    work after the backend, for zoo model `name`."""
    from tests.py.models.zoo import ALL_MODELS
    from torch_tensorrt_rtx.dynamo import _compiler, _dynamo_aten

    import torch

    torch.manual_seed(0)
    case = ALL_MODELS[name]()
    args, kwargs = case.make(*case.sizes[1])
    samples: Dict[str, List[float]] = {"eager": [], "trtx": [], "trace": [], "build": [], "pack": [], "after": []}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for backend in ("eager", "tensorrt_rtx"):  # warm-up, untimed
            rounds_of._round(case.model, backend, args, kwargs, False)
        for _ in range(repeats):
            samples["eager"].append(_compile_cpu(case.model, "eager", args, kwargs))
            with _CpuMeter(_dynamo_aten, "_trace") as trace, _CpuMeter(_compiler, "build_engine") as build, \
                    _CpuMeter(_compiler, "_package") as pack, _AfterBackend() as after:
                samples["trtx"].append(_compile_cpu(case.model, "tensorrt_rtx", args, kwargs))
            samples["trace"].append(trace.seconds)
            samples["build"].append(build.seconds)
            samples["pack"].append(pack.seconds)
            samples["after"].append(after.seconds)
    return {key: statistics.median(values) for key, values in samples.items()}


def _one_layer_network(builder, trt, weighted: bool):
    import numpy as np

    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    x = network.add_input("x", trt.float32, (1, 64))
    if weighted:
        weight = network.add_constant((64, 64), trt.Weights(np.ones((64, 64), np.float32))).get_output(0)
        y = network.add_matrix_multiply(x, trt.MatrixOperation.NONE, weight, trt.MatrixOperation.NONE).get_output(0)
    else:
        y = network.add_activation(x, trt.ActivationType.RELU).get_output(0)
    network.mark_output(y)
    return network


def build_floor(weighted: bool, repeats: int) -> Dict[str, float]:
    """Median CPU seconds, system CPU seconds and minor page faults of building a one-layer network."""
    import tensorrt_rtx as trt

    from torch_tensorrt_rtx.dynamo.conversion._interpreter import trt_logger

    rows = []
    for attempt in range(repeats + 1):  # the first build of each kind is a warm-up
        builder = trt.Builder(trt_logger())
        network = _one_layer_network(builder, trt, weighted)
        config = builder.create_builder_config()
        gc.collect()
        before = resource.getrusage(resource.RUSAGE_SELF)
        if builder.build_serialized_network(network, config) is None:
            raise SystemExit("TensorRT-RTX failed to build the one-layer network")
        after = resource.getrusage(resource.RUSAGE_SELF)
        if attempt:
            rows.append((after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime,
                         after.ru_stime - before.ru_stime, after.ru_minflt - before.ru_minflt))
    return {key: statistics.median(row[i] for row in rows) for i, key in enumerate(("cpu", "sys", "faults"))}


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="vit_b_16,vae_decoder")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds per backend (default 5)")
    options = parser.parse_args()
    if options.repeats < 1:
        raise SystemExit(f"--repeats must be at least 1, got {options.repeats}")
    torch.set_num_threads(1)  # as benchmarks/torch_compile_vs_eager.py
    print(f"torch.compile compile CPU seconds (first call - second call), median of {options.repeats} interleaved "
          f"rounds after a warm-up; load {os.getloadavg()[0]:.1f}")
    print(f"{'model':<14} {'eager':>6} {'trtx':>6} {'ratio':>6} | {'trace':>6} {'build':>6} {'pack':>6} {'rest':>6} | "
          f"{'floor eager+build+pack':>22} {'+trace':>7} | {'after':>6}")
    for name in options.models.split(","):
        m = model_floors(name, options.repeats)
        floor = m["eager"] + m["build"] + m["pack"]
        rest = m["trtx"] - floor - m["trace"]
        print(f"{name:<14} {m['eager']:>6.3f} {m['trtx']:>6.3f} {m['trtx'] / m['eager']:>5.2f}x | {m['trace']:>6.3f} "
              f"{m['build']:>6.3f} {m['pack']:>6.3f} {rest:>6.3f} | {floor / m['eager']:>21.2f}x "
              f"{(floor + m['trace']) / m['eager']:>6.2f}x | {m['after']:>6.3f}")
    malloc = {k: v for k, v in os.environ.items() if k.startswith("MALLOC_")}
    print(f"TensorRT-RTX build of a one-layer network, median of {options.repeats} (malloc settings: {malloc or 'none'}):")
    for weighted, label in ((False, "no weight"), (True, "one 64x64 weight")):
        floor = build_floor(weighted, options.repeats)
        print(f"  {label:<17} {floor['cpu']:.3f} CPU s, of which {floor['sys']:.3f} system; "
              f"{floor['faults']:.0f} minor page faults")
    print(f"load {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
