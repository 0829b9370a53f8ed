"""Log levels in upstream Torch-TensorRT's form, over this package's ``logging`` loggers.

    import torch_tensorrt_rtx as torch_tensorrt
    with torch_tensorrt.logging.debug():        # or info(), warnings(), errors(), internal_errors(), graphs()
        compiled = torch_tensorrt.compile(model, inputs=[x])
    torch_tensorrt.logging.set_level(logging.INFO)   # until changed again

Every message of this package (and TensorRT-RTX's own, under ``torch_tensorrt_rtx.tensorrt``)
goes through the ``torch_tensorrt_rtx`` logger. A context manager sets that logger's level for
the block and restores it after. When the application has configured no logging handler, the
block also prints the records to stderr (Python would otherwise show only warnings), so
``with debug():`` shows the debug output as upstream's does. ``graphs()`` is one level below
DEBUG (``GRAPHS`` = 5) and adds the lowered and partitioned graphs and each engine's layers.
"""
from __future__ import annotations

import logging
from typing import Any

from torch_tensorrt_rtx.dynamo._debugger import GRAPHS, PACKAGE_LOGGER, PackageLogLevel

__all__ = ["GRAPHS", "set_level", "internal_errors", "errors", "warnings", "info", "debug", "graphs"]


def _logger() -> logging.Logger:
    return logging.getLogger(PACKAGE_LOGGER)


def set_level(level: int, logger: Any = None) -> None:
    """Set the level of this package's logger (or of `logger`) until changed again."""
    if not isinstance(level, int) or isinstance(level, bool):
        raise ValueError(f"set_level: level must be a logging level such as logging.DEBUG, got {level!r}")
    (logger or _logger()).setLevel(level)


class _Level:
    """Context manager: the package logger at `level` for the block, printed to stderr when the
    application configured no handler (see dynamo._debugger.PackageLogLevel)."""

    level = logging.NOTSET

    def __enter__(self) -> None:
        self._scope = PackageLogLevel(self.level)
        self._scope.__enter__()

    def __exit__(self, *exc: Any) -> None:
        self._scope.__exit__(*exc)


class internal_errors(_Level):
    """Only internal errors (CRITICAL) in the block."""

    level = logging.CRITICAL


class errors(_Level):
    """Errors and worse in the block."""

    level = logging.ERROR


class warnings(_Level):
    """Warnings and worse in the block."""

    level = logging.WARNING


class info(_Level):
    """Info and worse in the block."""

    level = logging.INFO


class debug(_Level):
    """Everything down to DEBUG (TensorRT-RTX's verbose messages included) in the block."""

    level = logging.DEBUG


class graphs(_Level):
    """Everything, plus the lowered and partitioned graphs and each engine's layer list."""

    level = GRAPHS
