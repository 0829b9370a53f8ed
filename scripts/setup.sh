#!/usr/bin/env bash
# Installs everything torch_tensorrt_rtx needs on a fresh Debian 12 machine, idempotently:
# Debian packages (Bazel 4, googletest sources; mingw-w64 and wine for the Windows tests,
# scripts/windows_test.sh), then a virtual environment at .venv with
# the versions pinned in pyproject.toml (this project installed editable). A re-run that
# finds everything in place does nothing and takes about a second.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# cmake: the wheel test builds examples/cpp_serving against the installed wheel with it.
APT_PACKAGES=(bazel-bootstrap googletest python3-venv cmake)
# The Windows cross-compiler and wine, without their recommends (wine32, X fonts, ...):
# 31 packages instead of 111, and all the Windows tests need.
APT_PACKAGES_NO_RECOMMENDS=(g++-mingw-w64-x86-64-posix wine64 wine)
PYTHON="${PYTHON:-python3}"

log() { echo "[setup] $*" >&2; }

missing_packages() {
  local package
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || echo "$package"
  done
}
mapfile -t missing < <(missing_packages "${APT_PACKAGES[@]}")
mapfile -t missing_no_recommends < <(missing_packages "${APT_PACKAGES_NO_RECOMMENDS[@]}")
if ((${#missing[@]} + ${#missing_no_recommends[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  if ((${#missing[@]})); then
    log "installing Debian packages: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
  fi
  if ((${#missing_no_recommends[@]})); then
    log "installing Debian packages (without recommends): ${missing_no_recommends[*]}"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing_no_recommends[@]}"
  fi
fi

if [ ! -x .venv/bin/python ]; then
  log "creating .venv with $PYTHON ($("$PYTHON" --version 2>&1))"
  "$PYTHON" -m venv .venv
fi

# Reinstall only when the pins change.
stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  log "installing pinned Python packages into .venv (torch CPU, tensorrt-rtx, filelock, pytest, pytest-xdist, pybind11)"
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[dev]" 2>&1 | grep -v "is ignored: it is neither" || true
  header_packages=$(.venv/bin/python -c 'import tomllib; print(" ".join(tomllib.load(open("pyproject.toml", "rb"))["tool"]["torch_tensorrt_rtx"]["header-packages"]))')
  log "installing header-only packages without their dependencies: $header_packages"
  # shellcheck disable=SC2086
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps $header_packages
  .venv/bin/python -c "import torch, tensorrt_rtx, filelock, pybind11, pytest, xdist" \
    || { log "the Python packages did not install; see the pip output above"; exit 1; }
  rm -f .venv/.installed-*
  touch "$stamp"
fi
log "ready: $(.venv/bin/python -c 'import torch, tensorrt_rtx; print("torch", torch.__version__, "| tensorrt_rtx", tensorrt_rtx.__version__)')"
