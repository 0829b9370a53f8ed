"""Saved programs as AOTInductor packages: trtx.save(..., output_format="aot_inductor") runs from
Python (aoti_load_package) and from the C++ example examples/cpp_serving, a process with no
Python interpreter, with the same outputs. Also: the default .pt2 holds no pickled example
inputs. Engines run on the scripted test backend (C++) or the test double (Python)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile

import pytest
import torch

import torch_tensorrt_rtx as trtx
from engine_programs import CPP_SERVING, HERE_DIR, INSTALLED_RUNTIME, REPO, SCRIPTED_OPS, Program, double_record

INPUT = trtx.Input(min_shape=(1, 4), opt_shape=(2, 4), max_shape=(8, 4))

SAVE_AND_RUN = """
import sys, torch
import torch_tensorrt_rtx as trtx
from engine_programs import Program, scripted_record
package = sys.argv[1]
trtx.save(Program(scripted_record()), package, output_format="aot_inductor",
          inputs=[trtx.Input(min_shape=(1, 4), opt_shape=(2, 4), max_shape=(8, 4))])
runner = torch._inductor.aoti_load_package(package)
for shape in ((3, 4), (1, 4)):
    n = shape[0] * shape[1]
    (y,) = runner((torch.arange(n, dtype=torch.float32) * 0.1).reshape(shape)),
    print(" ".join(f"{v:g}" for v in y.flatten().tolist()), flush=True)
stats = lambda: list(torch.ops.ttrx_test.scripted_stats())[:3]  # live engines, contexts, deserializations
print(stats(), flush=True)
import gc
del runner
gc.collect()
print(stats(), flush=True)
"""


def test_default_format_stores_no_example_inputs(tmp_path):
    path = tmp_path / "program.pt2"
    trtx.save(Program(double_record()), path, inputs=[INPUT])
    pickles = [i for i in zipfile.ZipFile(path).infolist() if "sample_inputs" in i.filename]
    assert all(i.file_size == 0 for i in pickles), pickles
    program = trtx.load(path)
    assert program.example_inputs is None
    assert any(n.target is torch.ops.tensorrt_rtx.execute_engine.default for n in program.graph.nodes)


def test_unknown_output_format_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="unknown output_format 'onnx'; expected one of 'exported_program', 'aot_inductor'"):
        trtx.save(Program(double_record()), tmp_path / "p.pt2", inputs=[INPUT], output_format="onnx")


def test_aot_inductor_package_runs_from_python_and_from_cpp_alike(tmp_path):
    for needed in (SCRIPTED_OPS, CPP_SERVING):
        if not needed.is_file():
            pytest.skip(f"{needed} not built (scripts/test.sh builds it)")
    package = tmp_path / "program.pt2"
    env = dict(os.environ, TORCH_TENSORRT_RTX_RUNTIME_LIBRARY=str(SCRIPTED_OPS),
               PYTHONPATH=os.pathsep.join([str(REPO / "py"), str(HERE_DIR)]), XDG_CACHE_HOME=str(tmp_path))
    python = subprocess.run([sys.executable, "-c", SAVE_AND_RUN, str(package)], capture_output=True,
                            text=True, env=env, timeout=600)
    assert python.returncode == 0, python.stderr[-3000:]
    lines = python.stdout.splitlines()
    from_python = lines[:2]
    # One engine for the package, built once, freed with the loaded package.
    assert lines[2:4] == ["[1, 1, 1]", "[0, 0, 1]"], lines
    # (x + 1) * 2 * 3 with x = 0, 0.1, ...: the scripted engine doubles its input.
    assert [float(v) for v in from_python[1].split()] == pytest.approx([6.0, 6.6, 7.2, 7.8])

    cpp_env = {"PATH": "/usr/bin:/bin", "XDG_CACHE_HOME": str(tmp_path), "HOME": str(tmp_path)}
    from_cpp = []
    for shape in ("3x4", "1x4"):
        cpp = subprocess.run([str(CPP_SERVING), "--library", str(SCRIPTED_OPS), "--kernel-strategy", "eager",
                              str(package), shape], capture_output=True, text=True, env=cpp_env, timeout=120)
        assert cpp.returncode == 0, cpp.stderr
        lines = cpp.stdout.splitlines()
        assert lines[0] == "python: absent", lines
        match = re.fullmatch(r"output 0 \[(\d+), (\d+)\]: (.*)", lines[1])
        assert match and f"{match[1]}x{match[2]}" == shape, lines[1]
        from_cpp.append(match[3])
    for cpp_values, py_values in zip(from_cpp, from_python):
        assert [float(v) for v in cpp_values.split()] == pytest.approx([float(v) for v in py_values.split()])


def test_cpp_serving_explains_a_bad_setting(tmp_path):
    if not (SCRIPTED_OPS.is_file() and CPP_SERVING.is_file()):
        pytest.skip("examples/cpp_serving or the scripted op library not built")
    cpp = subprocess.run([str(CPP_SERVING), "--library", str(SCRIPTED_OPS), "--kernel-strategy", "fast",
                          str(tmp_path / "missing.pt2"), "1x4"], capture_output=True, text=True, timeout=120)
    assert cpp.returncode == 1 and "unknown kernel_strategy 'fast'" in cpp.stderr, cpp.stderr


def test_cpp_serving_says_why_the_default_library_cannot_run_engines(tmp_path):
    if not (INSTALLED_RUNTIME.is_file() and CPP_SERVING.is_file()):
        pytest.skip("examples/cpp_serving or the default runtime library not built (scripts/build_native.sh)")
    cpp = subprocess.run([str(CPP_SERVING), "--library", str(INSTALLED_RUNTIME), str(tmp_path / "program.pt2"),
                          "1x4"], capture_output=True, text=True, timeout=120)
    assert cpp.returncode == 1, cpp.stderr
    assert "registers no tensorrt_rtx::execute_engine because it was built without TensorRT-RTX" in cpp.stderr
    assert "TENSORRT_RTX_HOME" in cpp.stderr, cpp.stderr
