"""torch.compile(backend="tensorrt_rtx", dynamic=True) against torch_tensorrt_rtx.compile, side by side.

A benchmark, not a test. For each model (built by benchmarks/model_sweep.py, random weights):
  - trtx.compile with a dynamic batch (1..4): its wall time ("aot s");
  - torch.compile(dynamic=True) called with batches 2, 3 and 4 (each call verified against eager
    with the CPU reference executor): how many engine builds that took ("builds", target 1), the
    time inside the backend for the first build ("backend s"), and the time from the first call to
    the backend's return ("1st call s": dynamo's own tracing, which trtx.compile does not do,
    plus the backend);
  - "ratio": backend s / aot s (target <= 2), and "call ratio": 1st call s / aot s.

    .venv/bin/python benchmarks/torch_compile_vs_aot.py                        # the default models
    .venv/bin/python benchmarks/torch_compile_vs_aot.py timm.mobilevit_xxs hf.roberta
"""
from __future__ import annotations

import os
import argparse
import sys
import time
from pathlib import Path
from typing import Any, List, Optional

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.model_sweep import MODELS, _spec  # noqa: E402

import torch_tensorrt_rtx as trtx  # noqa: E402
from torch_tensorrt_rtx.dynamo.backend import tensorrt_rtx_backend  # noqa: E402

os.environ.setdefault("TORCH_TENSORRT_RTX_ENGINE_CACHE", "0")  # time real builds: no engine cache unless asked


DEFAULT_MODELS = ["timm.mobilevit_xxs", "tv.mobilenet_v2", "timm.vit_small_patch16_224", "hf.roberta",
                  "timm.levit_128s", "hf.segformer"]
BATCHES = (2, 3, 4)
OPTIONS = {"progress": False}


def _with_batch(value: Any, batch: int) -> Any:
    """`value` (an example with batch 2) grown or cut to `batch` rows, same dtype and values."""
    if isinstance(value, torch.Tensor) and value.dim():
        return torch.cat([value] * (batch // value.shape[0] + 1))[:batch]
    return value


def _aot_seconds(case) -> float:
    start = time.perf_counter()
    trtx.compile(case.model, [_spec(a, True) for a in case.args],
                 kwarg_inputs={k: _spec(v, True) for k, v in case.kwargs.items()} or None, progress=False)
    return time.perf_counter() - start


def _torch_compile(case) -> dict:
    """Builds, backend seconds per build, and the first call's seconds up to the backend's return."""
    builds: List[float] = []
    returned: List[float] = []

    def timed_backend(gm, example_inputs):
        start = time.perf_counter()
        compiled = tensorrt_rtx_backend(gm, example_inputs, options=OPTIONS)
        builds.append(time.perf_counter() - start)
        returned.append(time.perf_counter())
        return compiled

    torch._dynamo.reset()
    compiled = torch.compile(case.model, backend=timed_backend, dynamic=True)
    first_call = None
    with trtx.compile_reports() as reports:
        for batch in BATCHES:
            start = time.perf_counter()
            trtx.verify(compiled, *[_with_batch(a, batch) for a in case.args], reference_module=case.model,
                        **{k: _with_batch(v, batch) for k, v in case.kwargs.items()})
            if first_call is None and returned:
                first_call = returned[0] - start
    torch._dynamo.reset()
    return {"graphs": len(builds), "engines": len(reports), "backend": builds[0] if builds else float("nan"),
            "first_call": first_call or float("nan"),
            "fallback": sum(sum(r.fallback_ops.values()) for r in reports)}


def _warm_up() -> None:
    """Pay the one-time costs (imports, decomposition tables, TensorRT-RTX start-up) before any
    timing, so that the first model's figures are not inflated on one side only."""
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU()).eval()
    case = type("Case", (), {"model": model, "args": [torch.randn(2, 3, 8, 8)], "kwargs": {}})
    _aot_seconds(case)
    _torch_compile(case)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help=f"model names from model_sweep.py (default: {DEFAULT_MODELS})")
    args = parser.parse_args(argv)
    names = args.names or DEFAULT_MODELS
    _warm_up()
    print(f"{'model':30} {'builds':>6} {'backend s':>9} {'1st call s':>10} {'aot s':>7} {'ratio':>6} "
          f"{'call ratio':>10}  (builds over batches {list(BATCHES)}; ratio = backend s / aot s, target <= 2)",
          flush=True)
    for name in names:
        try:
            case = MODELS[name]()
            aot = _aot_seconds(case)
            run = _torch_compile(case)
        except Exception as e:  # noqa: BLE001 - a benchmark reports every failure and moves on
            print(f"{name:30} ERROR {type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}",
                  flush=True)
            continue
        note = f"  ({run['fallback']} op(s) in PyTorch)" if run["fallback"] else ""
        print(f"{name:30} {run['graphs']:>6} {run['backend']:>9.1f} {run['first_call']:>10.1f} {aot:>7.1f} "
              f"{run['backend'] / aot:>6.2f} {run['first_call'] / aot:>10.2f}{note}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
