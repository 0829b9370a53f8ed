"""scripts/rtx_acceptance.sh: refuses quickly without a GPU, and its --dry-run runs every step
with the test doubles and writes the report skeleton. (The real run needs an RTX GPU.)"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "scripts/rtx_acceptance.sh"
sys.path.insert(0, str(REPO / "scripts"))
from rtx_acceptance import __main__ as acceptance  # noqa: E402
from rtx_acceptance import report, steps  # noqa: E402

from torch_tensorrt_rtx.runtime import device  # noqa: E402

from examples import models as zoo  # noqa: E402


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(extra)
    return env


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine has an NVIDIA driver")
def test_without_a_gpu_the_script_says_so_before_installing_anything():
    # The check comes first: no venv, pip or build step runs (the timeout only guards a hang).
    proc = subprocess.run([str(SCRIPT)], capture_output=True, text=True, timeout=60, env=_env())
    assert proc.returncode == 2, proc.stderr
    steps = [line for line in proc.stderr.splitlines() if line.startswith("[rtx_acceptance]")]
    assert len(steps) == 2, proc.stderr  # the two lines of the driver check, nothing after them
    assert "no NVIDIA driver" in proc.stderr and "--dry-run" in proc.stderr


def test_preflight_names_what_was_found_and_what_is_needed():
    if device.supported_gpu().supported:
        pytest.skip("a supported RTX GPU is present")
    proc = subprocess.run([sys.executable, "-m", "rtx_acceptance", "preflight"], capture_output=True,
                          text=True, timeout=120, env=_env(PYTHONPATH=str(REPO / "scripts")))
    assert proc.returncode == acceptance.NO_GPU_EXIT, proc.stderr
    for part in (device.supported_gpu().reason, device.describe_targets(), "--dry-run"):
        assert part in proc.stderr


def test_preflight_accepts_a_supported_gpu(monkeypatch, capsys):
    monkeypatch.setattr(device, "_device", lambda: (0, (8, 9), "cuda:0 Fake RTX 4090 with compute capability 8.9"))
    device.supported_gpu.cache_clear()
    try:
        assert acceptance.preflight() == 0
        assert "Fake RTX 4090" in capsys.readouterr().out
        monkeypatch.setattr(device, "_device", lambda: (0, (9, 0), "cuda:0 Fake H100 with compute capability 9.0"))
        device.supported_gpu.cache_clear()
        assert acceptance.preflight() == acceptance.NO_GPU_EXIT
    finally:
        device.supported_gpu.cache_clear()


def test_every_example_family_and_demo_model_is_found():
    found = steps.families()
    assert set(zoo.DEMO_MODELS) == {"mlp", "cnn"}
    assert set(found) == set(zoo.DEMO_MODELS) | set(zoo.MODELS)


def test_dry_run_runs_every_step_and_writes_the_report_skeleton(tmp_path):
    out = tmp_path / "acceptance"
    proc = subprocess.run([str(SCRIPT), "--dry-run", "--families", "mlp", "--iters", "2", "--out", str(out)],
                          capture_output=True, text=True, timeout=600, env=_env())
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    text = (out / "report.md").read_text()
    for part in ("(DRY RUN)", "No figure below measures TensorRT-RTX", "## Machine", "tensorrt_rtx",
                 "## `rtx_gpu` tests", "merge or replace", "## Model families", "| mlp |",
                 "## Time to first inference", "## Runtime strategies", "kernel_strategy=none",
                 "whole_graph_capture", "Verdict: **DRY RUN COMPLETED (nothing verified on hardware)**"):
        assert part in text, f"{part!r} missing from the report:\n{text}"
    (results,) = out.glob("work-*/results.json")
    data = json.loads(results.read_text())
    (mlp,) = data["families"]
    assert "error" not in mlp, mlp.get("traceback")
    assert mlp["engines"] >= 1 and mlp["max_abs_error"] < 1e-3
    ttfi = mlp["ttfi"]
    assert ttfi["cold"]["cache_bytes_before"] is None          # cold: no file
    assert ttfi["warm"]["cache_bytes_before"] > 0              # warm: the cold process's file
    assert ttfi["disabled"]["default_cache_written"] is False  # cache_path=None: no cache at all
    assert set(mlp["strategies"]) == {"kernel_strategy=lazy", "kernel_strategy=eager", "kernel_strategy=none",
                                      "cuda_graph_strategy=whole_graph_capture",
                                      "whole_graph_capture + kernel_strategy=eager"}
    assert all("error" not in v for v in mlp["strategies"].values())
    tests = data["rtx_gpu_tests"]
    assert tests["files"] and (tests["counts"].get("skipped") or tests["counts"].get("passed"))


def _real_data(**family):
    fam = {"family": "mlp", "source": "examples/models.py", **family}
    return {"dry_run": False, "started": "t", "seconds": 1.0, "verdict": "FAILED",
            "machine": {"gpu": "NVIDIA GeForce RTX 4090", "driver": "580.1"},
            "rtx_gpu_tests": {"files": ["a.py"], "summary": "1 failed", "returncode": 1, "seconds": 1.0,
                              "log": "x", "probe": ["IRuntimeCache.deserialize merges: kept both kernels"]},
            "families": [fam], "problems": ["rtx_gpu tests: 1 failed"]}


def test_report_of_a_failed_real_run_names_failures_and_has_no_dry_banner():
    text = report.render(_real_data(error="RuntimeError: boom", traceback="Traceback ..."))
    assert "DRY RUN" not in text and "Verdict: **FAILED**" in text
    assert "### mlp: RuntimeError: boom" in text and "- rtx_gpu tests: 1 failed" in text
    assert "- IRuntimeCache.deserialize merges: kept both kernels" in text
    assert "NVIDIA GeForce RTX 4090" in text


def test_report_keeps_our_figures_when_inductor_fails():
    fam = {"max_abs_error": 1e-4, "engines": 1, "compile_s": 2.0, "inductor_error": "BackendCompilerFailed: no cl.exe",
           "latency": {"eager": {"median_ms": 2.0, "min_ms": 1.9}, "tensorrt_rtx": {"median_ms": 0.5, "min_ms": 0.4}}}
    text = report.render(_real_data(**fam))
    row = next(line for line in text.splitlines() if line.startswith("| mlp | 1 |"))
    assert "0.500 (0.400)" in row and "failed" in row and "4.00x" in row
    assert "torch.compile (inductor) failed, so no inductor figure: BackendCompilerFailed" in text


def test_family_verdict_uses_the_error_tolerance():
    assert steps.family_ok({"max_abs_error": 1e-3, "strategies": {}}, 2e-2)
    assert not steps.family_ok({"max_abs_error": 0.5, "strategies": {}}, 2e-2)
    assert not steps.family_ok({"max_abs_error": 1e-3, "strategies": {"x": {"error": "E"}}}, 2e-2)
    assert not steps.family_ok({"error": "E"}, 2e-2)


def test_probe_lines_are_recognised():
    assert steps.PROBE.search("PROBE: IRuntimeCache.deserialize replaces the cache contents")
    assert steps.PROBE.search("IRuntimeCache.deserialize MERGES")
    assert steps.PROBE.search("probe: deserialize into a non-empty cache replaced it")
    assert not steps.PROBE.search("IRuntimeCache.serialize merges")
    for answer in ("REPLACE: deserialize discards", "UNCLEAR: sizes first=1 second=2 after both=2"):
        # the format of tests/py/dynamo/runtime/test_rtx_gpu.py's probe
        assert steps.PROBE.search(f"IRuntimeCache.deserialize into a non-empty cache: {answer}")


def test_rtx_gpu_test_files_are_the_marked_ones():
    files = {p.name for p in steps.rtx_gpu_test_files()}
    assert "test_rtx_gpu.py" in files and "test_rtx_acceptance.py" not in files


def test_gpu_runner_plumbing_on_cpu_stand_ins():
    """The GPU runner's own code (not CUDA, not TensorRT-RTX): callables, errors, timing."""
    import torch

    from rtx_acceptance.runners import GpuRunner

    class CpuStandIn(GpuRunner):
        device = "cpu"

        def sync(self):
            pass

    runner, model = CpuStandIn(), torch.nn.Linear(4, 3).eval()
    inputs = runner.to_device([torch.randn(2, 4)])
    shifted = torch.nn.Linear(4, 3).eval()
    shifted.load_state_dict(model.state_dict())
    with torch.no_grad():
        shifted.bias += 0.25
    call, error = runner.compiled_callable(model, shifted, inputs)
    assert abs(error - 0.25) < 1e-6 and call().shape == (2, 3)
    timing = runner.time_ms(runner.strategy_callable(shifted, inputs), iters=3)
    assert 0 < timing["min_ms"] <= timing["median_ms"]


def test_the_probe_tests_printed_answer_is_the_one_collected():
    import re

    sources = "\n".join(p.read_text() for p in steps.rtx_gpu_test_files())
    prints = re.findall(r'print\(f"(?:\\n)?([^"{]*deserialize[^"{]*)\{', sources)
    assert prints, "no rtx_gpu test prints the IRuntimeCache.deserialize probe's answer"
    assert all(steps.PROBE.search(prefix + "UNCLEAR") for prefix in prints), prints
