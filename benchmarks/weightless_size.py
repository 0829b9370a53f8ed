"""Benchmark (not a test): .pt2 size of weightless programs (strip_engine_weights=True) against a
normal save, relative to the bytes of the model's weights (target: at most 1.1x the weights).

    .venv/bin/python benchmarks/weightless_size.py [--models resnet18d,distilbert]

On a machine with a CUDA GPU the engines build with STRIP_PLAN + REFIT and the whole weightless
.pt2 is measured. Without one (TensorRT-RTX 1.7 cannot build REFIT/STRIP_PLAN on the CPU), the
engines are built without those two flags, so they still hold their weights: then the script
prints the part of the .pt2 outside the engines (the program weights kept once, the graph, the
metadata) and the plans' size with weights; the stripped plans' size needs a GPU.
"""
from __future__ import annotations

import os
import argparse
import sys
import tempfile
import warnings
from pathlib import Path

os.environ.setdefault("TORCH_TENSORRT_RTX_ENGINE_CACHE", "0")  # time real builds: no engine cache unless asked


REPO = Path(__file__).resolve().parents[1]
sys.path.append(str(REPO))  # tests.py.models.zoo; the package comes from PYTHONPATH or the install

import torch  # noqa: E402

import torch_tensorrt_rtx as trtx  # noqa: E402
from torch_tensorrt_rtx.dynamo.conversion import _engine_builder  # noqa: E402


def _weight_bytes(model: torch.nn.Module) -> int:
    seen = {}
    for t in list(model.parameters()) + list(model.buffers()):
        seen[(t.data_ptr(), t.numel())] = t.numel() * t.element_size()
    return sum(seen.values())


def _save(case, path: Path, **options) -> tuple[int, int]:
    """(.pt2 bytes, bytes of the engine records inside)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compiled = trtx.compile(case.model, inputs=case.args, kwarg_inputs=case.kwargs or None,
                                progress=False, **options)
        trtx.save(compiled, path)
    engines = sum(len(r.engine) for r in trtx.engine_records(compiled).values())
    return path.stat().st_size, engines


def main() -> None:
    from tests.py.models.zoo import BUILDERS

    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="resnet18d,distilbert")
    names = parser.parse_args().models.split(",")
    gpu = torch.cuda.is_available()
    if not gpu:
        _engine_builder.refit_flags = lambda settings: []  # see the module docstring
    print(f"{'model':12} {'weights':>12} {'normal .pt2':>12} {'x':>6} {'weightless':>12} {'x':>6} {'plans':>12} "
          f"{'outside plans x':>16}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            case = BUILDERS[name]()
            weights = _weight_bytes(case.model)
            normal, _ = _save(case, Path(tmp) / f"{name}.pt2")
            light, plans = _save(case, Path(tmp) / f"{name}_weightless.pt2", strip_engine_weights=True)
            print(f"{name:12} {weights:12d} {normal:12d} {normal / weights:6.3f} {light:12d} {light / weights:6.3f} "
                  f"{plans:12d} {(light - plans) / weights:16.3f}")
    if not gpu:
        print("no CUDA GPU: plans were built without STRIP_PLAN/REFIT and hold their weights; the weightless "
              ".pt2 is 'outside plans' + the stripped plans (measured by scripts/rtx_acceptance.sh)")


if __name__ == "__main__":
    main()
