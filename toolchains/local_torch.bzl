"""Repository rule that finds torch, Python headers and pybind11 from the project's Python.

The project's Python is $PYTHON_BIN_PATH when set, else `.venv/bin/python` in the
workspace root (what scripts/setup.sh creates). Nothing is downloaded: the rule asks
that interpreter where its packages live and links them into an external repository.

Targets of the generated repository (`@local_torch`):
  :libtorch      torch C++ headers and shared libraries (c10, torch_cpu, torch)
  :python        Python C headers (no library: extension modules resolve at load time)
  :pybind11      pybind11 headers
  //:defs.bzl    PYTHON_BIN, the absolute path of the interpreter, for tests that start it
"""

_PROBE = """
import sysconfig, torch, pybind11, os
print(os.path.dirname(torch.__file__))
print(sysconfig.get_paths()["include"])
print(pybind11.get_include())
print(int(torch._C._GLIBCXX_USE_CXX11_ABI))
"""

_BUILD = """
package(default_visibility = ["//visibility:public"])

cc_library(
    name = "libtorch",
    hdrs = glob(["torch/include/**/*.h", "torch/include/**/*.hpp", "torch/include/**/*.cuh"]),
    srcs = ["torch/lib/libc10.so", "torch/lib/libtorch_cpu.so", "torch/lib/libtorch.so"],
    includes = ["torch/include", "torch/include/torch/csrc/api/include"],
    defines = ["_GLIBCXX_USE_CXX11_ABI={abi}"],
    linkopts = ["-Wl,-rpath,{torch_lib}"],
)

cc_library(
    name = "python",
    hdrs = glob(["python_include/**/*.h"]),
    includes = ["python_include"],
)

cc_library(
    name = "pybind11",
    hdrs = glob(["pybind11_include/**/*.h"]),
    includes = ["pybind11_include"],
    deps = [":python"],
)
"""

def _default_python(ctx):
    workspace_root = ctx.path(Label("//:WORKSPACE")).dirname
    return str(workspace_root) + "/.venv/bin/python"

def _local_torch_impl(ctx):
    python = ctx.os.environ.get("PYTHON_BIN_PATH", "") or _default_python(ctx)
    if not ctx.path(python).exists:
        fail("local_torch: no Python at %s. Run scripts/setup.sh first, or set PYTHON_BIN_PATH " % python +
             "to an interpreter that has torch and pybind11 installed.")
    result = ctx.execute([python, "-c", _PROBE])
    if result.return_code != 0:
        fail("local_torch: %s could not import torch and pybind11:\n%s" % (python, result.stderr))
    torch_dir, python_include, pybind11_include, abi = result.stdout.strip().splitlines()
    ctx.symlink(torch_dir, "torch")
    ctx.symlink(python_include, "python_include")
    ctx.symlink(pybind11_include, "pybind11_include")
    ctx.file("BUILD.bazel", _BUILD.format(abi = abi, torch_lib = torch_dir + "/lib"))
    ctx.file("defs.bzl", "PYTHON_BIN = %r\n" % python)
    ctx.file("WORKSPACE", "workspace(name = \"%s\")\n" % ctx.name)

local_torch = repository_rule(
    implementation = _local_torch_impl,
    local = True,
    # PYTHONPATH too: a build front end's isolated environment (pip's) keeps the interpreter
    # and puts its own torch on PYTHONPATH, so a new one must be probed again.
    environ = ["PYTHON_BIN_PATH", "PYTHONPATH"],
)
