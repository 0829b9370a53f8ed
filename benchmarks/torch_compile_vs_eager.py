"""Benchmark (not a test): what torch.compile(backend="tensorrt_rtx") costs on top of torch.compile's
own tracing, measured against backend="eager" (Dynamo tracing, no compiler) on the same model.

    .venv/bin/python benchmarks/torch_compile_vs_eager.py [--models bert,resnet18d] [--dynamic]

Models come from the acceptance zoo (tests/py/models/zoo.py: random weights, tiny configs). For
each, in this process: one untimed warm-up call of each backend (one-time imports and kernel
setup would otherwise land on whichever runs first), then --repeats rounds that alternate the two
backends, each a first call after torch._dynamo.reset(); the medians are printed:
  eager      first call of torch.compile(model, backend="eager"): Dynamo tracing + guards
  trtx       first call of torch.compile(model, backend="tensorrt_rtx") until its first engine would
             run. No GPU here: the call stops with RTXGPUUnavailableError when the first engine is
             reached, so this is tracing + export + decompositions + partitioning + conversion +
             engine builds (+ any PyTorch work before that engine, small).
  ratio      median trtx / median eager (target in issue 21: at most 1.5x)
  phases     the compile report's phase times of the last trtx round (sum over Dynamo's graphs)
Prints one table; numbers depend on the machine's load (say so when you quote them).
"""
from __future__ import annotations

import os
import argparse
import collections
import statistics
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("TORCH_TENSORRT_RTX_ENGINE_CACHE", "0")  # time real builds: no engine cache unless asked


REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "py"))


def _first_call_seconds(model, backend: str, args, kwargs, dynamic: bool) -> float:
    import torch

    from torch_tensorrt_rtx.runtime import RTXGPUUnavailableError

    torch._dynamo.reset()
    options = {"progress": False} if backend == "tensorrt_rtx" else None
    compiled = torch.compile(model, backend=backend, dynamic=dynamic, options=options)
    start = time.perf_counter()
    try:
        with torch.no_grad():
            compiled(*args, **kwargs)
    except RTXGPUUnavailableError:
        pass  # compiled; the first engine cannot run on this machine
    return time.perf_counter() - start


def main() -> None:
    import torch

    from tests.py.models.zoo import ALL_MODELS
    import torch_tensorrt_rtx as trtx_package

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="bert,resnet18d,vit_b_16,vae_decoder")
    parser.add_argument("--dynamic", action="store_true", help="torch.compile(dynamic=True) instead of False")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds per backend (default 3)")
    options = parser.parse_args()
    builders = ALL_MODELS
    rows = []
    for name in options.models.split(","):
        if name not in builders:
            raise SystemExit(f"unknown model {name!r}; expected one of {', '.join(sorted(builders))}")
        torch.manual_seed(0)
        case = builders[name]()
        args, kwargs = case.make(*case.sizes[1])
        times = {"eager": [], "tensorrt_rtx": []}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for backend in times:  # warm-up, untimed
                _first_call_seconds(case.model, backend, args, kwargs, options.dynamic)
            for _ in range(options.repeats):  # interleaved, so drifting machine load hits both alike
                times["eager"].append(_first_call_seconds(case.model, "eager", args, kwargs, options.dynamic))
                with trtx_package.compile_reports() as reports:
                    times["tensorrt_rtx"].append(
                        _first_call_seconds(case.model, "tensorrt_rtx", args, kwargs, options.dynamic))
        phases = collections.Counter()
        for report in reports:
            phases.update(report.phase_seconds)
        rows.append((name, statistics.median(times["eager"]), statistics.median(times["tensorrt_rtx"]), phases))
    print(f"torch.compile first call, dynamic={options.dynamic} (median seconds of {options.repeats} interleaved "
          "rounds after a warm-up)")
    print(f"{'model':<18} {'eager':>8} {'trtx':>8} {'ratio':>7}  trtx phases")
    for name, eager, trtx, phases in rows:
        detail = ", ".join(f"{k} {v:.1f}" for k, v in phases.items())
        print(f"{name:<18} {eager:>8.2f} {trtx:>8.2f} {trtx / eager:>6.1f}x  {detail}")


if __name__ == "__main__":
    main()
