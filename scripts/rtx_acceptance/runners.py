"""Where the acceptance run executes: a real RTX GPU, or the test doubles (--dry-run).

Both runners offer the same few operations, so every step of the run is the same code in
both modes; only what stands behind "run the compiled program" differs:

- ``GpuRunner``: CUDA tensors, the compiled program's real TensorRT-RTX engines,
  ``torch.compile`` (default inductor) on the GPU.
- ``DryRunner``: CPU tensors; errors of the compiled program come from the CPU reference
  executor (``torch_tensorrt_rtx.verify``), and everything that would execute an engine
  runs a ``TRTModule`` over the tensorrt_rtx test double (tests/py/dynamo/runtime/
  trt_double.py). Its figures measure the harness, never TensorRT-RTX.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

import torch

REPO = Path(__file__).resolve().parents[2]
DOUBLE_DIR = REPO / "tests/py/dynamo/runtime"
CHILD = Path(__file__).with_name("ttfi_child.py")
DOUBLE_INPUT_SHAPE = (2, 16)


def double_module(name: str = "double"):
    """A TRTModule over the tensorrt_rtx test double (relu engine), for dry runs only."""
    sys.path.insert(0, str(DOUBLE_DIR))
    from trt_double import TrtDouble, make_engine_bytes, stand_in_gpu  # noqa: E402

    from torch_tensorrt_rtx.runtime import EngineRecord, TRTModule

    n = DOUBLE_INPUT_SHAPE[1]
    engine = make_engine_bytes({"x": ((1, n), DOUBLE_INPUT_SHAPE, (4, n))}, ["y"])
    record = EngineRecord.new(engine, name=name, input_names=["x"], output_names=["y"])
    stand_in_gpu()  # the double's device: TRTModule's GPU checks run against it
    return TRTModule(record, trt_api=TrtDouble())


def max_abs_error(actual: Any, expected: Any) -> float:
    if isinstance(actual, (list, tuple)):
        return max(max_abs_error(a, e) for a, e in zip(actual, expected))
    return float((actual.float() - expected.float()).abs().max())


class Runner:
    dry = False
    device = "cpu"

    def sync(self) -> None:
        pass

    def to_device(self, values: list) -> list:
        return [v.to(self.device) for v in values]

    def time_ms(self, fn: Callable[[], Any], iters: int, warmup: int = 3) -> dict[str, float]:
        """Median and minimum milliseconds per call of ``fn`` (synchronized)."""
        with torch.no_grad():
            for _ in range(warmup):
                fn()
            self.sync()
            samples = []
            for _ in range(iters):
                start = time.perf_counter()
                fn()
                self.sync()
                samples.append((time.perf_counter() - start) * 1e3)
        return {"median_ms": statistics.median(samples), "min_ms": min(samples)}

    def first_call_s(self, fn: Callable[[], Any]) -> float:
        with torch.no_grad():
            start = time.perf_counter()
            fn()
            self.sync()
        return time.perf_counter() - start

    def ttfi(self, program: Path, inputs: Path, mode: str, cache: Path, env: dict) -> dict:
        """Time to first inference in a fresh process (cold / warm / disabled cache)."""
        if mode == "cold":
            for stale in (cache, Path(str(cache) + ".lock")):
                stale.unlink(missing_ok=True)
        before = cache.stat().st_size if cache.exists() else None
        cmd = [sys.executable, str(CHILD), "--program", str(program), "--inputs", str(inputs),
               "--cache", str(cache), "--mode", mode] + (["--dry-run"] if self.dry else [])
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, env=env)
        if proc.returncode != 0:
            raise RuntimeError(f"time-to-first-inference child ({mode}) failed with exit code "
                               f"{proc.returncode}: {proc.stderr.strip()[-2000:]}")
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        result["cache_bytes_before"] = before
        result["cache_bytes_after"] = cache.stat().st_size if cache.exists() else None
        return result


class GpuRunner(Runner):
    device = "cuda"

    def sync(self) -> None:
        torch.cuda.synchronize()

    def compiled_callable(self, model, compiled, inputs: list) -> tuple[Callable, float]:
        """(the compiled program on this GPU, its max abs error against eager)."""
        module = compiled.to(self.device)
        with torch.no_grad():
            error = max_abs_error(module(*inputs), model(*inputs))
        return (lambda: module(*inputs)), error

    def strategy_callable(self, compiled, inputs: list) -> Callable:
        module = compiled.to(self.device)
        return lambda: module(*inputs)

    def inductor_callable(self, model, inputs: list) -> tuple[Callable, float]:
        fast = torch.compile(model)
        with torch.no_grad():
            error = max_abs_error(fast(*inputs), model(*inputs))
        return (lambda: fast(*inputs)), error


class DryRunner(Runner):
    dry = True

    def compiled_callable(self, model, compiled, inputs: list) -> tuple[Callable, float]:
        import torch_tensorrt_rtx as trtx

        report = trtx.verify(compiled, *inputs, reference_module=model)
        if not report.ok:
            raise RuntimeError(f"reference executor disagrees with eager: {report}")
        error = report.end_to_end_max_abs_error
        double = double_module()
        x = torch.randn(DOUBLE_INPUT_SHAPE)
        return (lambda: double(x)), float(error if error is not None else float("nan"))

    def strategy_callable(self, compiled, inputs: list) -> Callable:
        double = double_module("strategies")
        x = torch.randn(DOUBLE_INPUT_SHAPE)
        return lambda: double(x)

    def inductor_callable(self, model, inputs: list) -> tuple[Callable, float]:
        # Inductor needs a C++ toolchain and minutes on 2 cores; the dry run checks the
        # plumbing with the eager module instead.
        with torch.no_grad():
            error = max_abs_error(model(*inputs), model(*inputs))
        return (lambda: model(*inputs)), error


def make_runner(dry: bool) -> Runner:
    return DryRunner() if dry else GpuRunner()


def child_env(workdir: Path) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "py"), env.get("PYTHONPATH", "")])
    env["XDG_CACHE_HOME"] = str(workdir / "xdg_cache")  # never the user's default cache
    return env


def optional_import(name: str) -> Optional[Any]:
    try:
        return __import__(name, fromlist=["_"])
    except Exception:
        return None
