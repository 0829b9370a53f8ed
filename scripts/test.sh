#!/usr/bin/env bash
# Runs every test of torch_tensorrt_rtx: the C++ suites through Bazel (gtest), then the
# Python suites (pytest). Installs what is missing first (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup.sh
if [ -x scripts/build_native.sh ]; then
  scripts/build_native.sh
fi
echo "[test] C++ tests (bazel test //tests/...)" >&2
bazel test //tests/...
echo "[test] examples (the C++ serving program the AOTInductor test runs)" >&2
bazel build //examples/...
echo "[test] compile check of the TensorRT backend against standard TensorRT headers" >&2
bazel build //core/runtime:backend_tensorrt_compile_check
echo "[test] Python tests (pytest tests/py)" >&2
.venv/bin/python -m pytest tests/py -q -rs "$@"
