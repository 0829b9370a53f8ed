"""Helpers for the cross-runtime tests: real child processes running either runtime.

The C++ side is the pybind11 module ``torch_tensorrt_rtx._C`` (C++ FileLock and cache
file store) and the torch op library; both are built and copied into the package by
``scripts/build_native.sh``. Tests skip with that reason when they are missing.
"""
from __future__ import annotations

import pytest

from cross_runtime_helpers import PY_DIR, REPO

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
