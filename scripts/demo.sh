#!/usr/bin/env bash
# The main job: compiles the built-in example models with TensorRT-RTX on this machine,
# prints the build summary and the CPU reference check against eager PyTorch, and saves
# the compiled program. On a supported RTX GPU it also runs and times the engines.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup.sh
exec .venv/bin/python examples/compile_demo.py "$@"
