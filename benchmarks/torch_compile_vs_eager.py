"""Benchmark (not a test): what torch.compile(backend="tensorrt_rtx") costs on top of torch.compile's
own tracing, measured against backend="eager" (Dynamo tracing, no compiler) on the same model.

    .venv/bin/python benchmarks/torch_compile_vs_eager.py [--models bert,resnet18d] [--dynamic] [--repeats 3]

Models come from the acceptance zoo (tests/py/models/zoo.py: random weights, tiny configs). For
each, in this process: one untimed warm-up round of each backend (one-time imports and kernel
setup would otherwise land on whichever runs first), then --repeats rounds that alternate the two
backends. A round is torch._dynamo.reset(), a garbage collection (untimed: a full collection
landing inside one timed call would otherwise add its cost to that call only), the first call,
then a second call with the same inputs:
  first      first call: Dynamo tracing + guards + the backend + running the model once
  run        second call: running the model once (the guards pass, nothing compiles)
  compile    first - run: what the first call costs beyond running the model
  ratio      median trtx compile / median eager compile, in wall and in CPU seconds (target in
             issue 21: at most 1.5x). CPU seconds (the process's, all threads) barely move when
             other jobs share the machine; wall seconds do.
  phases     the compile report's phase times of the last trtx round (sum over Dynamo's graphs)

Both sides run the whole call. There is no RTX GPU here, so on the trtx side every engine call is
answered by a stand-in that returns empty tensors of the engine's output shapes
(torch_tensorrt_rtx.dynamo._engine_op.intercept_engines): graphs after a graph break still
compile, and the PyTorch ops between engines still run. Engines cost no time there while the eager
side runs the whole model (resnet18d: 0.02-0.04 s on one thread, 0.1-0.6 s on two busy cores), which
is why the ratio compares compile times, not first calls. PyTorch runs on one intra-op thread: with two, a model
call on 2 busy cores now and then waits 0.2-0.6 s for a descheduled OpenMP thread (measured), which
lands in whichever call it hits; compiling is single-threaded Python either way.
Prints one table; numbers depend on the machine's load (say so when you quote them).
"""
from __future__ import annotations

import argparse
import collections
import gc
import os
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any, List, NamedTuple

os.environ.setdefault("TORCH_TENSORRT_RTX_ENGINE_CACHE", "0")  # time real builds: no engine cache unless asked


REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "py"))


class Seconds(NamedTuple):
    wall: float
    cpu: float


class Round(NamedTuple):
    first: Seconds  # the first call
    run: Seconds    # the second call


def _timed(call) -> Seconds:
    wall, cpu = time.perf_counter(), time.process_time()
    call()
    return Seconds(time.perf_counter() - wall, time.process_time() - cpu)


def _engine_stand_in(spec: Any, inputs: List[Any], _record: Any) -> List[Any]:
    """Empty tensors of the engine's output shapes (a data-dependent dim: 0), on the inputs' device."""
    import torch

    from torch_tensorrt_rtx.dynamo._engine_op import evaluate_dim, torch_dtype

    device = inputs[0].device if inputs else torch.device("cpu")
    return [torch.empty([0 if d is None else evaluate_dim(d, inputs) for d in out.shape],
                        dtype=torch_dtype(out.dtype), device=device) for out in spec.outputs]


def _round(model, backend: str, args, kwargs, dynamic: bool) -> Round:
    import torch

    from torch_tensorrt_rtx.dynamo._engine_op import intercept_engines

    torch._dynamo.reset()
    gc.collect()
    options = {"progress": False} if backend == "tensorrt_rtx" else None
    compiled = torch.compile(model, backend=backend, dynamic=dynamic, options=options)
    with torch.no_grad(), intercept_engines(_engine_stand_in):
        first = _timed(lambda: compiled(*args, **kwargs))
        run = _timed(lambda: compiled(*args, **kwargs))
    return Round(first, run)


def _median(rounds: List[Round], field: str, clock: str, minus_run: bool = False) -> float:
    values = [getattr(getattr(r, field), clock) - (getattr(r.run, clock) if minus_run else 0.0) for r in rounds]
    return statistics.median(values)


def main() -> None:
    import torch

    from tests.py.models.zoo import ALL_MODELS
    import torch_tensorrt_rtx as trtx_package

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="bert,resnet18d,vit_b_16,vae_decoder")
    parser.add_argument("--dynamic", action="store_true", help="torch.compile(dynamic=True) instead of False")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds per backend (default 3)")
    options = parser.parse_args()
    if options.repeats < 1:
        raise SystemExit(f"--repeats must be at least 1, got {options.repeats}")
    torch.set_num_threads(1)  # see the module docstring
    builders = ALL_MODELS
    rows = []
    for name in options.models.split(","):
        if name not in builders:
            raise SystemExit(f"unknown model {name!r}; expected one of {', '.join(sorted(builders))}")
        torch.manual_seed(0)
        case = builders[name]()
        args, kwargs = case.make(*case.sizes[1])
        rounds = {"eager": [], "tensorrt_rtx": []}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for backend in rounds:  # warm-up, untimed
                _round(case.model, backend, args, kwargs, options.dynamic)
            for _ in range(options.repeats):  # interleaved, so drifting machine load hits both alike
                rounds["eager"].append(_round(case.model, "eager", args, kwargs, options.dynamic))
                with trtx_package.compile_reports() as reports:
                    rounds["tensorrt_rtx"].append(
                        _round(case.model, "tensorrt_rtx", args, kwargs, options.dynamic))
        phases = collections.Counter()
        for report in reports:
            phases.update(report.phase_seconds)
        rows.append((name, rounds["eager"], rounds["tensorrt_rtx"], phases, len(reports)))
    print(f"torch.compile first call, dynamic={options.dynamic}: median seconds of {options.repeats} interleaved "
          "rounds after a warm-up; compile = first call - second call; ratio = trtx compile / eager compile")
    print(f"{'model':<14} {'eager first':>11} {'run':>6} {'compile':>8} {'trtx first':>11} {'compile':>8} "
          f"{'ratio':>6} {'cpu ratio':>9}  trtx graphs and phases (last round)")
    for name, eager, trtx, phases, graphs in rows:
        compiles = {clock: (_median(eager, "first", clock, True), _median(trtx, "first", clock, True))
                    for clock in Seconds._fields}
        detail = ", ".join(f"{k} {v:.2f}" for k, v in phases.items())
        print(f"{name:<14} {_median(eager, 'first', 'wall'):>11.2f} {_median(eager, 'run', 'wall'):>6.2f} "
              f"{compiles['wall'][0]:>8.2f} {_median(trtx, 'first', 'wall'):>11.2f} {compiles['wall'][1]:>8.2f} "
              f"{compiles['wall'][1] / compiles['wall'][0]:>5.2f}x {compiles['cpu'][1] / compiles['cpu'][0]:>8.2f}x  "
              f"{graphs} graph(s): {detail}")


if __name__ == "__main__":
    main()
