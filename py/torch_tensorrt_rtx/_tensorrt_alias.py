"""``import tensorrt`` gives TensorRT-RTX's module when no ``tensorrt`` package is installed.

Upstream's RTX wheel does the same when ``torch_tensorrt`` is imported (it puts ``tensorrt_rtx``
in ``sys.modules["tensorrt"]``), so upstream code written for RTX, e.g. converters doing
``import tensorrt as trt``, keeps working after ``import torch_tensorrt_rtx as torch_tensorrt``.

Here it is a finder placed *last* on ``sys.meta_path``: an installed ``tensorrt`` (standard
TensorRT) is always found first and is never shadowed, and nothing is imported until someone
imports ``tensorrt``. ``tensorrt.plugin`` etc. are ``tensorrt_rtx.plugin`` etc.: the same module
objects, under both names.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType
from typing import Optional

ALIAS, TARGET = "tensorrt", "tensorrt_rtx"


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, target: str):
        self.target = target
        self._real_spec = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = importlib.import_module(self.target)
        self._real_spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        module.__spec__ = self._real_spec  # the import system set the alias' spec: keep the real one


class TensorRTAliasFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path=None, target=None) -> Optional[importlib.machinery.ModuleSpec]:
        if fullname != ALIAS and not fullname.startswith(ALIAS + "."):
            return None
        real = TARGET + fullname[len(ALIAS):]
        try:
            if importlib.util.find_spec(real) is None:
                return None
        except (ImportError, ValueError):
            return None
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(real), is_package=True)


def install() -> None:
    if not any(isinstance(f, TensorRTAliasFinder) for f in sys.meta_path):
        sys.meta_path.append(TensorRTAliasFinder())
