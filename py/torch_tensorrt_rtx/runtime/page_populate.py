"""Fault in a fresh buffer's pages with one system call before it is filled.

    populate_for_writing(tensor)   # True when the pages are now in place

A new buffer of hundreds of MB (an engine's packed record) takes one page fault per 4 KB page
when it is first written: 25,000 traps for resnet50's 98 MB engine. `madvise(MADV_POPULATE_WRITE)`
(Linux 5.14+) maps them all in one call, which measured 0.061 -> 0.050 s for that copy on this
machine's VM. The pages and their contents are the same either way (a writer fills every byte),
so this changes time only. Only for a buffer filled from memory: a read from a file into fresh
pages is faster without it (engine_record._copied_from_memory has the figures). Anywhere else
(another OS, an older kernel, no C library) it is a no-op.
"""
from __future__ import annotations

import ctypes
import logging
import sys
from typing import Any

from torch_tensorrt_rtx.runtime._libc import PAGE_SIZE, libc_function

logger = logging.getLogger(__name__)

MADV_POPULATE_WRITE = 23  # linux/mman.h
# Below this a buffer is not worth a system call.
POPULATE_ABOVE_BYTES = 1 << 20

_MADVISE = (libc_function("madvise", [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int], ctypes.c_int, use_errno=True)
            if sys.platform.startswith("linux") else None)
_unsupported = False  # the kernel refused once (EINVAL: before 5.14): never ask again


def populate_for_writing(tensor: Any) -> bool:
    """Map every page of the CPU `tensor`'s memory now, ready to be written. False (nothing
    done) for a small tensor or where the system cannot."""
    global _unsupported
    nbytes = tensor.numel() * tensor.element_size()
    if _MADVISE is None or _unsupported or nbytes < POPULATE_ABOVE_BYTES or tensor.device.type != "cpu":
        return False
    start = tensor.data_ptr()
    aligned = start - start % PAGE_SIZE
    if _MADVISE(aligned, nbytes + start - aligned, MADV_POPULATE_WRITE) == 0:
        return True
    _unsupported = True
    logger.debug("madvise(MADV_POPULATE_WRITE) refused (errno %d): buffers fault in page by page",
                 ctypes.get_errno())
    return False
