"""Upstream's torch.compile backend names, ``"torch_tensorrt"`` and ``"tensorrt"``, for this backend.

After ``import torch_tensorrt_rtx``, ``torch.compile(model, backend="torch_tensorrt")`` (or
``"tensorrt"``) compiles with ``tensorrt_rtx`` — but only when nothing else owns the name: not
an installed ``torch_tensorrt`` package (upstream registers both names when it is imported, and a
second registration would break its import), not another package's ``torch_dynamo_backends``
entry point, not a backend already registered. Our entry point keeps ``tensorrt_rtx`` only, so
without the import those names stay free.

Dynamo's registry module costs seconds to import, so the names are added when it is first
imported (a one-shot import hook), never by importing it ourselves.
"""
from __future__ import annotations

import importlib.util
import logging
import sys

from torch_tensorrt_rtx._saved_program_ops import AfterImport

logger = logging.getLogger(__name__)

UPSTREAM_NAMES = ("torch_tensorrt", "tensorrt")
_REGISTRY = "torch._dynamo.backends.registry"
_TARGET = "torch_tensorrt_rtx.dynamo.backend:tensorrt_rtx_backend"


def owner_of(name: str, registry) -> "str | None":
    """Who else holds backend `name`, or None when it is free for us."""
    if importlib.util.find_spec("torch_tensorrt") is not None:
        return "the installed torch_tensorrt package"
    if name in registry._BACKENDS or name in registry._COMPILER_FNS:
        return "a backend registered earlier"
    from importlib.metadata import entry_points

    for entry in entry_points(group="torch_dynamo_backends"):
        if entry.name == name:
            return f"the entry point of {entry.value}"
    return None


def add_upstream_names() -> None:
    """Point each free upstream name at this backend (lazily, as an entry point would)."""
    try:
        from importlib.metadata import EntryPoint

        registry = sys.modules[_REGISTRY]
        for name in UPSTREAM_NAMES:
            owner = owner_of(name, registry)
            if owner is None:
                registry._BACKENDS[name] = EntryPoint(name=name, value=_TARGET, group="torch_dynamo_backends")
            else:
                logger.debug("backend name %r is not ours: %s holds it", name, owner)
    except Exception as exc:  # noqa: BLE001 - importing torch._dynamo must never fail because of us
        logger.warning("torch_tensorrt_rtx could not add the backend names %s: %s: %s", UPSTREAM_NAMES,
                       type(exc).__name__, exc)


_HOOK = AfterImport(_REGISTRY, add_upstream_names)


def install() -> None:
    _HOOK.run_now_or_after_import()
