"""save -> load in a fresh process, CPU-only guarantees, the no-GPU error, the entry point."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import torch_tensorrt_rtx as trtx
from torch_tensorrt_rtx.runtime import RTXGPUUnavailableError, supported_gpu

from examples.models import SmallCNN

REPO = Path(__file__).resolve().parents[3]
NO_GPU = pytest.mark.skipif(supported_gpu().supported, reason="a supported RTX GPU is present: engines would run")


def _run(code: str, timeout: int = 180) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=str(REPO))
    assert proc.returncode == 0, f"subprocess failed:\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr[-4000:]}"
    return proc


def _digest(records):
    return {name: {"name": r.name, "engine": hashlib.sha256(bytes(r.engine)).hexdigest(),
                   "inputs": r.input_names, "outputs": r.output_names, "targets": r.target_capabilities}
            for name, r in records.items()}


@pytest.fixture(scope="module")
def saved_cnn(tmp_path_factory):
    path = tmp_path_factory.mktemp("pt2") / "cnn.pt2"
    spec = trtx.Input(min_shape=(1, 3, 16, 16), opt_shape=(4, 3, 16, 16), max_shape=(16, 3, 16, 16))
    compiled = trtx.compile(SmallCNN().eval(), [spec], min_block_size=1, progress=False)
    trtx.save(compiled, path)
    return compiled, path


@pytest.fixture(scope="module")
def loaded_in_fresh_process(saved_cnn):
    """One fresh process loads the saved program and reports, one line each: its records, the
    shapes of its engine call's outputs and, without a supported GPU, what calling it and
    verifying it raise. Shared by the tests below (one torch start-up instead of one per test)."""
    _, path = saved_cnn
    proc = _run(f"""
        import hashlib, json, torch, torch_tensorrt_rtx as trtx
        from torch_tensorrt_rtx.runtime import RTXGPUUnavailableError, supported_gpu
        program = trtx.load({str(path)!r})
        records = trtx.engine_records(program)
        print("RECORDS:", json.dumps({{n: {{"name": r.name, "engine": hashlib.sha256(bytes(r.engine)).hexdigest(),
                                           "inputs": r.input_names, "outputs": r.output_names,
                                           "targets": r.target_capabilities}} for n, r in records.items()}}))
        # Shape propagation with a dynamic batch works from the saved program alone.
        calls = [n for n in program.graph.nodes if n.target == torch.ops.tensorrt_rtx.execute_engine.default]
        print("SHAPES:", json.dumps([str(v.shape) for v in calls[0].meta["val"]]))
        if not supported_gpu().supported:
            module = program.module()
            try:
                module(torch.randn(2, 3, 16, 16))
            except RTXGPUUnavailableError as e:
                print("GPU-ERROR:", e)
            try:
                trtx.verify(module, torch.randn(2, 3, 16, 16))
            except trtx.VerificationUnavailableError as e:
                print("VERIFY-ERROR:", e)
    """)
    return {line.split(":", 1)[0]: line.split(":", 1)[1].strip() for line in proc.stdout.splitlines()
            if line.split(":", 1)[0] in ("RECORDS", "SHAPES", "GPU-ERROR", "VERIFY-ERROR")}


def test_save_load_in_fresh_process_keeps_records(saved_cnn, loaded_in_fresh_process):
    compiled, _ = saved_cnn
    expected = _digest(trtx.engine_records(compiled))
    assert expected
    assert json.loads(loaded_in_fresh_process["RECORDS"]) == json.loads(json.dumps(expected))
    shapes = loaded_in_fresh_process["SHAPES"]
    assert "s" in shapes or "batch" in shapes, shapes  # symbolic batch dim, not baked in


def test_loaded_program_without_gpu_names_the_requirement(loaded_in_fresh_process):
    if supported_gpu().supported:
        pytest.skip("a supported RTX GPU is present")
    gpu_error = loaded_in_fresh_process.get("GPU-ERROR", "")
    assert "RTX GPU" in gpu_error and "compute capability" in gpu_error, loaded_in_fresh_process
    assert "loaded from disk" in loaded_in_fresh_process.get("VERIFY-ERROR", ""), loaded_in_fresh_process


@NO_GPU
def test_calling_compiled_module_without_gpu_raises_one_clear_error(static_mlp):
    with pytest.raises(RTXGPUUnavailableError, match="needs an NVIDIA RTX GPU with compute capability"):
        static_mlp(torch.randn(2, 16))


def test_import_compile_save_load_never_touch_cuda(tmp_path):
    _run(f"""
        import torch
        def forbid(name):
            def forbidden(*a, **k):
                raise AssertionError(f"torch.cuda.{{name}} was called")
            return forbidden
        # torch.export itself asks torch.cuda.is_available(); initializing CUDA or querying a device is
        # what a CPU build server must never see.
        for name in ("current_device", "get_device_capability", "get_device_name", "_lazy_init", "init",
                     "set_device", "synchronize"):
            setattr(torch.cuda, name, forbid(name))  # one function each: dynamo rejects aliases
        import torch_tensorrt_rtx as trtx
        from examples.models import MLP
        compiled = trtx.compile(MLP().eval(), [trtx.Input(min_shape=(1, 16), opt_shape=(2, 16), max_shape=(8, 16))],
                                min_block_size=1)
        assert trtx.verify(compiled, torch.randn(3, 16)).ok
        trtx.save(compiled, {str(tmp_path / 'mlp.pt2')!r})
        trtx.load({str(tmp_path / 'mlp.pt2')!r})
        assert not torch.cuda.is_initialized()
    """)


@NO_GPU
def test_backend_works_without_importing_the_package():
    proc = _run("""
        import sys, torch
        from examples.models import MLP
        assert "torch_tensorrt_rtx" not in sys.modules
        model = torch.compile(MLP().eval(), backend="tensorrt_rtx", dynamic=False, options={"min_block_size": 1})
        # torch found the backend through the entry point, which loads only the backend module
        assert "torch_tensorrt_rtx.dynamo.backend" in sys.modules
        assert "torch_tensorrt_rtx._compile" not in sys.modules
        try:
            model(torch.randn(2, 16))
        except Exception as e:
            print("RAISED:", type(e).__name__, e)
    """)
    assert "RAISED: RTXGPUUnavailableError" in proc.stdout, proc.stdout


def test_output_shape_expressions_survive_export(tmp_path):
    class Cat(torch.nn.Module):
        def forward(self, a, b):
            return torch.relu(torch.cat([a, b], dim=0)) * 2

    spec = trtx.Input(min_shape=(1, 4), opt_shape=(2, 4), max_shape=(8, 4))
    compiled = trtx.compile(Cat(), [spec, spec], min_block_size=1, progress=False)
    trtx.save(compiled, tmp_path / "cat.pt2")
    program = trtx.load(tmp_path / "cat.pt2")
    call = next(n for n in program.graph.nodes if n.target == torch.ops.tensorrt_rtx.execute_engine.default)
    spec_json = json.loads(call.args[2])
    assert spec_json["outputs"][0]["shape"] in (["i0_0 + i1_0", 4], ["i1_0 + i0_0", 4]), spec_json["outputs"]
    size = call.meta["val"][0].shape[0]
    assert isinstance(size, torch.SymInt) and "+" in str(size), size
