#!/usr/bin/env bash
# Runs every test of torch_tensorrt_rtx: the C++ suites through Bazel (gtest), the Windows
# C++ suites cross-compiled and run under wine (scripts/windows_test.sh), then the Python
# suites (pytest, on both CPUs through pytest-xdist: the tests of one acceptance model are one
# work unit, tests/py/conftest.py, so each model is built on one worker). Installs what is missing first
# (scripts/setup.sh). Extra arguments go to pytest (-n 0 runs it in one process).
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
echo "[test] Windows C++ tests: mingw-w64 build, run under wine (scripts/windows_test.sh)" >&2
scripts/windows_test.sh --gtest_brief=1
echo "[test] Python tests (pytest -n 2 --dist loadgroup tests/py)" >&2
.venv/bin/python -m pytest tests/py -q -rs -n 2 --dist loadgroup "$@"
