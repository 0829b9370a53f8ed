"""Benchmark (not a test): the TensorRT-RTX build phase alone, our network against the ONNX route's, in one process.

    .venv/bin/python benchmarks/build_phase.py --model gpt2 [--dtype float16] [--rounds 2]

Answers "does TensorRT-RTX build OUR network slower, or is it our build wrapper?". For one model of
benchmarks/onnx_route.py it captures our INetworkDefinition (compile() with build_engine spied on)
and parses the ONNX route's (torch.onnx.export + OnnxParser, as onnx_route.py does), prints both
networks' layer-type counts and constant sizes, then times, interleaved per round:
  onnx plain         build_serialized_network of the ONNX route's network (what onnx_route.py times)
  ours plain         build_serialized_network of our network, same profile
  ours build_engine  our build_engine (streams to a temporary file, hashes, progress monitor)
Wall seconds and process CPU seconds (all threads) are printed: on a shared machine the CPU
seconds compare networks more steadily than the wall clock does.
"""
from __future__ import annotations

import argparse
import collections
import gc
import os
import resource
import sys
import tempfile
import time
import warnings

os.environ.setdefault("TORCH_TENSORRT_RTX_ENGINE_CACHE", "0")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import onnx_route  # noqa: E402  (puts the repository and py/ on sys.path)
import tensorrt_rtx as trt  # noqa: E402
import torch  # noqa: E402


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def our_network(case, dtype):
    from torch_tensorrt_rtx.dynamo import _compiler

    captured = []
    real = _compiler.build_engine

    def spy(network_def, *args, **kwargs):
        captured.append(network_def)
        return real(network_def, *args, **kwargs)

    _compiler.build_engine = spy
    try:
        onnx_route.run_ours(case, dtype)
    finally:
        _compiler.build_engine = real
    if len(captured) != 1:
        raise SystemExit(f"expected one engine, got {len(captured)}")
    return captured[0]


def onnx_network(case, dtype, directory):
    module = case.module.half() if dtype == torch.float16 else case.module
    dtypes = [dtype if dt.is_floating_point else dt for dt in case.dtypes]
    args = tuple(onnx_route._example(opt, dt) for (_lo, opt, _hi), dt in zip(case.ranges, dtypes))
    path = os.path.join(directory, "model.onnx")
    torch.onnx.export(module, args, path, dynamo=True, dynamic_shapes=onnx_route._dims(case),
                      input_names=case.names, verbose=False)
    case.module.float()
    logger = trt.Logger(trt.Logger.ERROR)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(path):
        raise SystemExit(f"OnnxParser failed: {parser.get_error(0)}")
    ranges = [{d: tuple(case.ranges[case.names.index(network.get_input(i).name)][k][d] for k in range(3))
               for d, size in enumerate(network.get_input(i).shape) if size < 0} for i in range(network.num_inputs)]
    return builder, network, parser, [network.get_input(i).name for i in range(network.num_inputs)], ranges


def describe(label: str, network) -> None:
    types = collections.Counter()
    constants = []
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        types[layer.type.name] += 1
        if layer.type == trt.LayerType.CONSTANT:
            layer.__class__ = trt.IConstantLayer
            constants.append(layer.weights.nbytes)
    big = [n for n in constants if n > 1024]
    print(f"{label}: {network.num_layers} layers; {len(constants)} constants ({len(big)} over 1 KB), "
          f"{sum(constants) / 2**20:.1f} MB")
    print("   " + ", ".join(f"{k} {v}" for k, v in types.most_common()))


def plain_build(builder, network, names, ranges):
    config = builder.create_builder_config()
    profile = builder.create_optimization_profile()
    for i, name in enumerate(names):
        shape = list(network.get_input(i).shape)
        lo, opt, hi = ([ranges[i][d][k] if d in ranges[i] else s for d, s in enumerate(shape)] for k in range(3))
        profile.set_shape(name, lo, opt, hi)
    config.add_optimization_profile(profile)
    return builder.build_serialized_network(network, config).nbytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gpt2", choices=list(onnx_route.MODELS))
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16"])
    parser.add_argument("--rounds", type=int, default=2)
    options = parser.parse_args()
    from torch_tensorrt_rtx.dynamo.conversion._engine_builder import build_engine

    dtype = getattr(torch, options.dtype)
    torch.manual_seed(0)
    case = onnx_route.MODELS[options.model]()
    case.module.eval()
    with tempfile.TemporaryDirectory() as tmp, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = our_network(case, dtype)
        builder, network, _parser, names, ranges = onnx_network(case, dtype, tmp)
        describe("ours", ours.network)
        describe("ONNX route", network)

        def ours_streamed():
            engine, _seconds = build_engine(ours, progress=False)
            size = engine.nbytes
            engine.close()
            return size

        routes = [("onnx plain", lambda: plain_build(builder, network, names, ranges)),
                  ("ours plain", lambda: plain_build(ours.builder, ours.network, ours.input_names, ours.input_ranges)),
                  ("ours build_engine", ours_streamed)]
        seconds = collections.defaultdict(list)
        for k in range(options.rounds):
            for label, route in (routes if k % 2 == 0 else routes[::-1]):
                gc.collect()
                wall, cpu = time.perf_counter(), _cpu()
                size = route()
                wall, cpu = time.perf_counter() - wall, _cpu() - cpu
                seconds[label].append((wall, cpu))
                print(f"round {k + 1} {label:18s} wall {wall:6.2f} s  cpu {cpu:6.2f} s  engine {size / 2**20:.0f} MB",
                      flush=True)
    print(f"\n{options.model} {options.dtype}, medians over {options.rounds} rounds (wall / cpu seconds):")
    for label, values in seconds.items():
        walls, cpus = sorted(v[0] for v in values), sorted(v[1] for v in values)
        print(f"  {label:18s} {walls[len(walls) // 2]:6.2f} / {cpus[len(cpus) // 2]:6.2f}")


if __name__ == "__main__":
    main()
