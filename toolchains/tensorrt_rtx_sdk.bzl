"""Repository rule for NVIDIA's TensorRT-RTX SDK, used only under `--config=rtx`.

Points at $TENSORRT_RTX_HOME (the unpacked SDK archive: include/ and lib/). The SDK
is never downloaded nor copied into this repository. Without it the repository still
exists, so that `bazel build //...` works, but building its library fails with a
message that says what to install.
"""

_SDK_BUILD = """
package(default_visibility = ["//visibility:public"])

cc_library(
    name = "tensorrt_rtx",
    hdrs = glob(["include/**/*.h"]),
    includes = ["include"],
    srcs = glob(["lib/libtensorrt_rtx.so*"]),
)
"""

_MISSING_BUILD = """
package(default_visibility = ["//visibility:public"])

genrule(
    name = "missing_sdk",
    outs = ["missing_sdk.h"],
    cmd = "echo 'TensorRT-RTX SDK not found: set TENSORRT_RTX_HOME to the unpacked NVIDIA " +
          "TensorRT-RTX archive (with include/NvInfer.h and lib/libtensorrt_rtx.so) and build " +
          "with --config=rtx. {reason}' >&2; exit 1",
)

cc_library(
    name = "tensorrt_rtx",
    hdrs = [":missing_sdk"],
)
"""

def _tensorrt_rtx_sdk_impl(ctx):
    home = ctx.os.environ.get("TENSORRT_RTX_HOME", "")
    ctx.file("WORKSPACE", "workspace(name = \"%s\")\n" % ctx.name)
    if not home:
        ctx.file("BUILD.bazel", _MISSING_BUILD.format(reason = "TENSORRT_RTX_HOME is not set."))
        return
    if not ctx.path(home + "/include/NvInfer.h").exists:
        ctx.file("BUILD.bazel", _MISSING_BUILD.format(reason = "No include/NvInfer.h under " + home + "."))
        return
    ctx.symlink(home + "/include", "include")
    ctx.symlink(home + "/lib", "lib")
    ctx.file("BUILD.bazel", _SDK_BUILD)

tensorrt_rtx_sdk = repository_rule(
    implementation = _tensorrt_rtx_sdk_impl,
    local = True,
    environ = ["TENSORRT_RTX_HOME"],
)
