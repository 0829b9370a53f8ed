#!/usr/bin/env bash
# Runs the Python compiler and runtime tests on torch 2.14.1 (CI runs everything on 2.13.0).
# A venv of its own, .venv-torch214 (torch 2.14.1 from the registry is a CUDA build, about 5.5 GB),
# with this project installed editable and the C++ runtime disabled: the library in the package is
# built against CI's torch. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
venv=.venv-torch214
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import torch, sys; sys.exit(torch.__version__.split("+")[0] != "2.14.1")' 2>/dev/null; then
  "$venv/bin/python" -m pip install -q --disable-pip-version-check torch==2.14.1 torchvision==0.29.1
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps -e .
fi
# Every other pin of pyproject.toml (runtime and dev), without CI's torch/torchvision pins; re-run each
# time (a no-op once installed), so a new test dependency reaches this venv too.
mapfile -t pins < <("$venv/bin/python" - <<'PY'
import tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
for pin in project["dependencies"] + project["optional-dependencies"]["dev"]:
    if not pin.replace(" ", "").startswith(("torch==", "torch>", "torchvision")):
        print(pin)
PY
)
"$venv/bin/python" -m pip install -q --disable-pip-version-check "${pins[@]}"
echo "[torch 2.14] $("$venv/bin/python" -c 'import torch; print(torch.__version__)')" >&2
TORCH_TENSORRT_RTX_RUNTIME_LIBRARY="" "$venv/bin/python" -m pytest -q -p no:xdist -m "not models" \
  tests/py/dynamo --ignore=tests/py/dynamo/runtime/test_package_import.py "$@"
