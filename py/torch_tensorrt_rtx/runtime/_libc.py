"""The C library's functions through ctypes, looked up once by their users, and the page size.

    malloc_trim = libc_function("malloc_trim", [ctypes.c_size_t], ctypes.c_int)   # None where absent
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
from typing import Any, Optional, Sequence

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def libc_function(name: str, argtypes: Sequence[Any], restype: Any, use_errno: bool = False) -> Optional[Any]:
    """The C library's function `name` with its prototype set, or None (another C library without
    it, Windows, no C library found)."""
    try:
        function = getattr(ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=use_errno), name)
    except (OSError, AttributeError, TypeError):
        return None
    function.argtypes, function.restype = list(argtypes), restype
    return function
