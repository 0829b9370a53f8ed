"""The package's pybind11 module ``_C`` (C++ FileLock, cache store, native builder callbacks),
loaded apart from ``_native`` (the op library's loader, which imports only the runtime package)."""
from __future__ import annotations

import logging
from typing import Any, Optional

logger = logging.getLogger(__name__)


def pybind_module() -> Optional[Any]:
    """``_C``, or None where it was not built (a source checkout before ``scripts/build_native.sh``).
    Never raises."""
    try:
        from torch_tensorrt_rtx import _C
    except Exception as exc:  # noqa: BLE001 - absent or unloadable: the callers keep their Python paths
        logger.debug("the pybind11 module _C is not available (%s: %s)", type(exc).__name__, exc)
        return None
    return _C
