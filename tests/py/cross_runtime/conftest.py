"""Helpers for the cross-runtime tests: real child processes running either runtime.

The C++ side is the pybind11 module ``torch_tensorrt_rtx._C`` (C++ FileLock and cache
file store) and the torch op library; both are built and copied into the package by
``scripts/build_native.sh``. Tests skip with that reason when they are missing.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
PY_DIR = REPO / "py"
PKG_DIR = PY_DIR / "torch_tensorrt_rtx"
BUILD_HINT = "C++ runtime not built: run scripts/build_native.sh"
# The op library with the scripted test backend (execute_engine without TensorRT).
SCRIPTED_OPS = REPO / "bazel-bin" / "tests" / "core" / "runtime" / "libscripted_runtime_ops.so"


def _has_native_module() -> bool:
    return any(PKG_DIR.glob("_C*.so"))


@pytest.fixture
def native():
    if not _has_native_module():
        pytest.skip(BUILD_HINT + " (torch_tensorrt_rtx._C missing)")
    from torch_tensorrt_rtx import _C

    return _C


@pytest.fixture
def runtime_library():
    lib = PKG_DIR / "lib" / "libtorchtrt_rtx_runtime.so"
    if not lib.is_file():
        pytest.skip(BUILD_HINT + f" ({lib} missing)")
    return lib


@pytest.fixture
def scripted_ops():
    if not SCRIPTED_OPS.is_file():
        pytest.skip("scripted-backend op library not built: bazel build "
                    "//tests/core/runtime:libscripted_runtime_ops.so")
    return SCRIPTED_OPS


def child_env(**extra: str) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(PY_DIR) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


class Child:
    """A Python child process; ``expect(line)`` waits for a line, ``finish()`` closes stdin."""

    def __init__(self, script: str, *args: str, **env: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", script, *map(str, args)], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env(**env))

    def expect(self, line: str) -> None:
        got = self.proc.stdout.readline().strip()
        if got != line:
            self.proc.kill()
            _, err = self.proc.communicate()
            raise AssertionError(f"child said {got!r}, expected {line!r}; stderr:\n{err}")

    def finish(self, timeout: float = 60) -> tuple[int, str, str]:
        out, err = self.proc.communicate(input="", timeout=timeout)
        return self.proc.returncode, out, err

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


def run(script: str, *args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=child_env(**env))
