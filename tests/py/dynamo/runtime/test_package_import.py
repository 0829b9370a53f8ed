"""What `import torch_tensorrt_rtx` gives a user, each in a fresh process: saved programs load with
plain torch.export.load (whether torch was imported before or after), the subpackages are
attributes, the package import itself does not import torch, the C++ runtime library does not
abort the process when another library holds the `tensorrt` op namespace, and a library that
cannot load is reported with the loader's own error."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

import torch_tensorrt_rtx as trtx
from engine_programs import INSTALLED_RUNTIME, Program, double_record, export

INPUT = trtx.Input(min_shape=(1, 4), opt_shape=(2, 4), max_shape=(8, 4))


def _run(code: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300,
                            env={**os.environ, **env})
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture
def saved_program(tmp_path):
    path = tmp_path / "program.pt2"
    trtx.save(Program(double_record()), path, inputs=[INPUT])
    return str(path)


LOAD_AFTER = """
import sys
import torch_tensorrt_rtx
assert "torch" not in sys.modules, "import torch_tensorrt_rtx imported torch"
import torch
program = torch.export.load(sys.argv[1])
print(sum(n.target is torch.ops.tensorrt_rtx.execute_engine.default for n in program.graph.nodes))
"""


def test_program_loads_with_plain_torch_export_load_when_torch_comes_after(saved_program):
    assert _run(LOAD_AFTER, saved_program).stdout.split() == ["1"]


LOAD_BEFORE = """
import sys, torch, torch_tensorrt_rtx
program = torch.export.load(sys.argv[1])
print(sum(n.target is torch.ops.tensorrt_rtx.execute_engine.default for n in program.graph.nodes))
print(type(torch_tensorrt_rtx.runtime.RuntimeCacheFile).__name__, torch_tensorrt_rtx.dynamo.__name__)
"""


def test_program_loads_with_plain_torch_export_load_and_subpackages_are_attributes(saved_program):
    assert _run(LOAD_BEFORE, saved_program).stdout.split() == ["1", "type", "torch_tensorrt_rtx.dynamo"]


def test_without_torch_nothing_is_registered_or_imported():
    code = "import sys, torch_tensorrt_rtx.runtime.runtime_cache_file; print('torch' in sys.modules)"
    assert _run(code).stdout.split() == ["False"]


NAMESPACE_TAKEN = """
import sys, warnings, torch
other = torch.library.Library("tensorrt", "DEF")   # what upstream Torch-TensorRT's library registers
other.define("execute_engine(Tensor[] inputs) -> Tensor[]")
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import torch_tensorrt_rtx
    from torch_tensorrt_rtx.runtime import _native
    print(_native.runtime_available())
print(_native.status())
print("|".join(str(w.message) for w in caught))
program = torch.export.load(sys.argv[1])
print(sum(n.target is torch.ops.tensorrt_rtx.execute_engine.default for n in program.graph.nodes))
"""


def test_a_taken_tensorrt_namespace_is_reported_not_fatal(saved_program):
    if not INSTALLED_RUNTIME.is_file():
        pytest.skip(f"{INSTALLED_RUNTIME} not built (scripts/build_native.sh)")
    lines = _run(NAMESPACE_TAKEN, saved_program, TORCH_TENSORRT_RTX_RUNTIME_LIBRARY=str(INSTALLED_RUNTIME)
                 ).stdout.splitlines()
    assert lines[0] == "False"
    for text in (lines[1], lines[2]):
        assert "namespace 'tensorrt' is already registered" in text and "torch.library registration" in text, text
        assert "Python runtime" in text, text
    assert lines[3] == "1", "saved programs must still load through the Python engine op"


def test_a_library_that_cannot_load_is_reported_with_the_loaders_error(tmp_path):
    broken = tmp_path / "libtorchtrt_rtx_runtime.so"
    broken.write_bytes(b"not an ELF file")
    code = "from torch_tensorrt_rtx.runtime import _native; print(_native.status())"
    status = _run(code, TORCH_TENSORRT_RTX_RUNTIME_LIBRARY=str(broken)).stdout
    assert "Could not load this library" in status and "caused by OSError" in status, status
    assert "invalid ELF header" in status or "file too short" in status, status
