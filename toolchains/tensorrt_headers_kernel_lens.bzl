"""Repository rule: NVIDIA's standard TensorRT 10.14 headers from the PyPI wheel kernel-lens.

Only for the CI compile check of core/runtime/backend_tensorrt.cpp without the
TensorRT-RTX SDK (`bazel build //core/runtime:backend_tensorrt_compile_check`). The
headers are used where pip installed them (`kernel_lens/include/tensorrt` in the
project's Python); they are never copied into this repository. TensorRT's headers include
<cuda_runtime_api.h>: CUDA's include directory comes from $CUDA_HOME, else
/usr/local/cuda.

Install: `.venv/bin/pip install kernel-lens==2.0.1`. Without it the repository still
exists and building its library fails with a message saying so.
"""

_PROBE = """
import importlib.util, os
spec = importlib.util.find_spec("kernel_lens")
print(os.path.join(os.path.dirname(spec.origin), "include", "tensorrt") if spec else "")
"""

_BUILD = """
package(default_visibility = ["//visibility:public"])

cc_library(
    name = "tensorrt_headers",
    hdrs = glob(["tensorrt/*.h", "cuda/**/*.h", "cuda/**/*.hpp"]),
    includes = ["tensorrt", "cuda"],
)
"""

_MISSING = """
package(default_visibility = ["//visibility:public"])

genrule(
    name = "missing",
    outs = ["missing.h"],
    cmd = "echo 'TensorRT headers for the compile check not found: {reason}' >&2; exit 1",
)

cc_library(
    name = "tensorrt_headers",
    hdrs = [":missing"],
)
"""

def _impl(ctx):
    ctx.file("WORKSPACE", "workspace(name = \"%s\")\n" % ctx.name)
    workspace_root = ctx.path(Label("//:WORKSPACE")).dirname
    python = ctx.os.environ.get("PYTHON_BIN_PATH", "") or str(workspace_root) + "/.venv/bin/python"
    result = ctx.execute([python, "-c", _PROBE])
    include = result.stdout.strip() if result.return_code == 0 else ""
    if not include or not ctx.path(include + "/NvInferRuntime.h").exists:
        ctx.file("BUILD.bazel", _MISSING.format(
            reason = "run `%s -m pip install kernel-lens==2.0.1`." % python,
        ))
        return
    cuda = ctx.os.environ.get("CUDA_HOME", "") or "/usr/local/cuda"
    if not ctx.path(cuda + "/include/cuda_runtime_api.h").exists:
        ctx.file("BUILD.bazel", _MISSING.format(
            reason = "no include/cuda_runtime_api.h under %s (set CUDA_HOME)." % cuda,
        ))
        return
    ctx.symlink(include, "tensorrt")
    ctx.symlink(cuda + "/include", "cuda")
    ctx.file("BUILD.bazel", _BUILD)

tensorrt_headers_kernel_lens = repository_rule(
    implementation = _impl,
    local = True,
    environ = ["PYTHON_BIN_PATH", "CUDA_HOME"],
)
