#!/usr/bin/env bash
# Builds the C++ runtime with Bazel and copies it into the Python package, where
# torch_tensorrt_rtx.runtime._native finds it:
#   py/torch_tensorrt_rtx/lib/libtorchtrt_rtx_runtime.so   (torch op library)
#   py/torch_tensorrt_rtx/_C.so                            (pybind11: FileLock, cache store)
# Extra arguments go to bazel, e.g. `scripts/build_native.sh --config=rtx` with
# TENSORRT_RTX_HOME set for a build that runs engines. The copies are git-ignored.
set -euo pipefail
cd "$(dirname "$0")/.."
bazel build "$@" //:libtorchtrt_rtx_runtime.so //core/runtime:_C.so
bin="$(bazel info "$@" bazel-bin)"
pkg=py/torch_tensorrt_rtx
mkdir -p "$pkg/lib"
install -m 0755 "$bin/libtorchtrt_rtx_runtime.so" "$pkg/lib/libtorchtrt_rtx_runtime.so"
install -m 0755 "$bin/core/runtime/_C.so" "$pkg/_C.so"
echo "C++ runtime copied into $pkg/lib and $pkg/_C.so"
