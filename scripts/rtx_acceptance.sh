#!/usr/bin/env bash
# One command for an RTX owner: verifies torch_tensorrt_rtx on this machine's GPU and writes
# a Markdown report under build/rtx_acceptance/ (every figure, the GPU, driver and versions).
#
#   scripts/rtx_acceptance.sh                     # needs an RTX GPU, its driver, a CUDA torch
#   scripts/rtx_acceptance.sh --dry-run           # the same steps against the test doubles (any machine)
#   scripts/rtx_acceptance.sh --families mlp,cnn --iters 20
#
# Steps: set up (scripts/setup.sh; with TENSORRT_RTX_HOME also the C++ runtime --config=rtx),
# run every rtx_gpu test (including the IRuntimeCache.deserialize merge-or-replace probe, and
# tests/py/dynamo/runtime/test_weightless_rtx_gpu.py: a strip_engine_weights build, its .pt2 size
# against the weights, refit on first load and refit_module_weights, on the Python runtime and on
# the C++ runtime -- the latter needs TENSORRT_RTX_HOME, else that test is skipped and reported),
# compile each example model family and compare with eager (max error) and time it against
# eager and torch.compile (inductor), time to first inference with a cold cache, a warm cache
# from an earlier process and the cache disabled, kernel strategies lazy/eager/none and
# whole-graph CUDA-graph capture. Exit 0 only when all of it passed; 2 when this machine has
# no usable RTX GPU (said within seconds, before installing anything).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

dry_run=0
for arg in "$@"; do
  [ "$arg" = "--dry-run" ] && dry_run=1
done
log() { echo "[rtx_acceptance] $*" >&2; }

if [ "$dry_run" = 0 ]; then
  # Fast first check, before any install: a machine without an NVIDIA driver stops here.
  if ! command -v nvidia-smi >/dev/null 2>&1; then
    log "no NVIDIA driver on this machine (nvidia-smi not found): this needs an NVIDIA RTX GPU."
    log "To exercise the script without one: scripts/rtx_acceptance.sh --dry-run"
    exit 2
  fi
  if ! gpus="$(nvidia-smi --query-gpu=name,compute_cap,driver_version --format=csv,noheader 2>&1)"; then
    log "nvidia-smi failed, so no usable NVIDIA GPU: $gpus"
    exit 2
  fi
  log "GPU(s): $gpus"
fi

scripts/setup.sh
if [ "$dry_run" = 0 ] && [ -n "${TENSORRT_RTX_HOME:-}" ]; then
  log "TENSORRT_RTX_HOME is set: building the C++ runtime with --config=rtx"
  scripts/build_native.sh --config=rtx
fi

export PYTHONPATH="$PWD/scripts${PYTHONPATH:+:$PYTHONPATH}"
if [ "$dry_run" = 0 ]; then
  .venv/bin/python -m rtx_acceptance preflight || exit 2
fi
exec .venv/bin/python -m rtx_acceptance run "$@"
