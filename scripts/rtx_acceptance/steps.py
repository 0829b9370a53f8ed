"""The steps of the acceptance run. Each returns plain data for the report and never hides a
failure: an exception in one family is recorded and the run goes on with the next."""
from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from rtx_acceptance.runners import REPO, Runner, child_env

# The probe test prints its answer; any line naming deserialize and merge/replace is kept.
PROBE = re.compile(r"IRuntimeCache\.deserialize\b|deserialize\b.*\b(merge[sd]?|replace[sd]?)\b", re.IGNORECASE)
RTX_GPU_MARK = re.compile(r"mark\.rtx_gpu\b")


# -- machine --------------------------------------------------------------------------------------

def _nvidia_smi() -> dict[str, str]:
    if shutil.which("nvidia-smi") is None:
        return {}
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,compute_cap,driver_version,memory.total",
                              "--format=csv,noheader"], capture_output=True, text=True, timeout=30).stdout
    except Exception:
        return {}
    fields = [f.strip() for f in out.splitlines()[0].split(",")] if out.strip() else []
    return dict(zip(["gpu", "compute_capability", "driver", "memory"], fields))


def machine_info() -> dict[str, Any]:
    from torch_tensorrt_rtx.runtime import _native
    from torch_tensorrt_rtx.runtime import device

    info: dict[str, Any] = {"python": sys.version.split()[0], "platform": platform.platform(),
                            "torch": torch.__version__, "torch_cuda": torch.version.cuda}
    try:
        import tensorrt_rtx
        info["tensorrt_rtx"] = tensorrt_rtx.__version__
    except Exception as exc:
        info["tensorrt_rtx"] = f"not importable ({exc})"
    info["gpu_status"] = device.supported_gpu().reason
    info["portable_engines_run_on"] = device.describe_targets()
    info.update(_nvidia_smi())
    info["cxx_runtime"] = _native.status()
    try:
        info["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                                        text=True, timeout=10).stdout.strip() or "unknown"
    except Exception:
        info["commit"] = "unknown"
    return info


# -- rtx_gpu tests (and the IRuntimeCache.deserialize probe among them) --------------------------

def rtx_gpu_test_files() -> list[Path]:
    files = []
    for path in sorted((REPO / "tests/py").rglob("test_*.py")):
        if RTX_GPU_MARK.search(path.read_text(errors="replace")):
            files.append(path)
    return files


def run_rtx_gpu_tests(workdir: Path) -> dict[str, Any]:
    files = rtx_gpu_test_files()
    cmd = [sys.executable, "-m", "pytest", *map(str, files), "-m", "rtx_gpu", "-q", "-rA", "-s",
           "-p", "no:cacheprovider"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=child_env(workdir), timeout=3600)
    lines = proc.stdout.splitlines()
    summary = next((l.strip("= ").strip() for l in reversed(lines) if re.search(r"\d+ (passed|failed|skipped|error|deselected)", l)),
                   "no summary line")
    counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|skipped|errors?|deselected)", summary)}
    skips = sorted({l.split(" - ", 1)[-1].strip() for l in lines if l.startswith("SKIPPED")})
    probe = [l.strip() for l in lines if PROBE.search(l)]
    log = workdir / "rtx_gpu_tests.log"
    log.write_text(proc.stdout + "\n--- stderr ---\n" + proc.stderr)
    return {"files": [str(f.relative_to(REPO)) for f in files], "returncode": proc.returncode,
            "summary": summary, "counts": counts, "skip_reasons": skips, "probe": probe,
            "seconds": time.perf_counter() - start, "log": str(log)}


# -- model families -------------------------------------------------------------------------------

@dataclass
class Family:
    name: str
    source: str
    build: Callable[[], tuple]  # () -> (eval model, Input specs, concrete inputs at the opt shape)


def families() -> dict[str, Family]:
    """The demo models and every example model family, all from examples/models.py."""
    import torch_tensorrt_rtx as trtx

    sys.path.insert(0, str(REPO))
    from examples import compile_demo  # its CASES: the demo's input ranges
    from examples import models as zoo

    found: dict[str, Family] = {}
    for name, shapes in compile_demo.CASES.items():
        def build(name=name, shapes=shapes):
            return (zoo.build_demo(name), [trtx.Input(**shapes, dtype=torch.float32)],
                    [torch.randn(shapes["opt_shape"])])
        found[name] = Family(name, "examples/models.py", build)
    for name in sorted(zoo.MODELS):
        def build(name=name):
            model, specs = zoo.build(name, torch.float32)
            return model, specs, zoo.example_inputs(name, 2, 8, torch.float32)
        found[name] = Family(name, "example model families", build)
    return found


def _strategies(runner: Runner, compiled, inputs: list, cache: Path, iters: int) -> dict[str, Any]:
    """Kernel strategies lazy / eager / none and whole-graph CUDA-graph capture, with latency."""
    from torch_tensorrt_rtx import runtime

    out: dict[str, Any] = {}
    call = runner.strategy_callable(compiled, inputs)
    variants = [(f"kernel_strategy={k}", {"kernel_strategy": k}) for k in runtime.KERNEL_STRATEGIES]
    variants += [("cuda_graph_strategy=whole_graph_capture", {"cuda_graph_strategy": "whole_graph_capture"}),
                 ("whole_graph_capture + kernel_strategy=eager",
                  {"cuda_graph_strategy": "whole_graph_capture", "kernel_strategy": "eager"})]
    for label, settings in variants:
        try:
            with runtime.settings(cache_path=cache, **settings):
                first = runner.first_call_s(call)  # recreates the context with these settings
                out[label] = {"first_call_s": first, **runner.time_ms(call, iters)}
        except Exception as exc:
            out[label] = {"error": f"{type(exc).__name__}: {exc}"}
    return out


def measure_family(family: Family, runner: Runner, workdir: Path, iters: int) -> dict[str, Any]:
    import torch_tensorrt_rtx as trtx

    result: dict[str, Any] = {"family": family.name, "source": family.source}
    try:
        model, specs, inputs = family.build()
        start = time.perf_counter()
        compiled = trtx.compile(model, specs, min_block_size=1, progress=False)
        result["compile_s"] = time.perf_counter() - start
        result["engines"] = len(compiled.compile_report.engines)
        program, saved_inputs = workdir / f"{family.name}.pt2", workdir / f"{family.name}.inputs.pt"
        trtx.save(compiled, program)
        torch.save(inputs, saved_inputs)

        model = model.to(runner.device)
        device_inputs = runner.to_device(inputs)
        run_compiled, result["max_abs_error"] = runner.compiled_callable(model, compiled, device_inputs)
        result["latency"] = {"eager": runner.time_ms(lambda: model(*device_inputs), iters),
                             "tensorrt_rtx": runner.time_ms(run_compiled, iters)}
        try:  # inductor needs a working C++/Triton toolchain: its failure must not hide ours
            run_inductor, result["inductor_max_abs_error"] = runner.inductor_callable(model, device_inputs)
            result["latency"]["inductor"] = runner.time_ms(run_inductor, iters)
        except Exception as exc:
            result["inductor_error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
        cache = workdir / f"{family.name}.runtime_cache.bin"
        env = child_env(workdir)
        result["ttfi"] = {mode: runner.ttfi(program, saved_inputs, mode, cache, env)
                          for mode in ("cold", "warm", "disabled")}
        result["strategies"] = _strategies(runner, compiled, device_inputs, cache, iters)
    except Exception as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
        result["traceback"] = traceback.format_exc(limit=8)
    return result


def family_ok(result: dict[str, Any], tolerance: float) -> bool:
    error = result.get("max_abs_error")
    strategy_errors = [v for v in result.get("strategies", {}).values() if "error" in v]
    return "error" not in result and error is not None and error <= tolerance and not strategy_errors


def env_flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0")
