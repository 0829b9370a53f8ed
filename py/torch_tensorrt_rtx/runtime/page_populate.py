"""Fault in a fresh buffer's pages with one system call before it is filled.

    populate_for_writing(tensor)   # True when the pages are now in place

A new buffer of hundreds of MB (an engine's packed record) takes one page fault per 4 KB page
when it is first written: 25,000 traps for resnet50's 98 MB engine. `madvise(MADV_POPULATE_WRITE)`
(Linux 5.14+) maps them all in one call, which measured 0.061 -> 0.050 s for that copy on this
machine's VM. The pages and their contents are the same either way (a writer fills every byte),
so this changes time only. Only for a buffer filled from memory: a read from a file into fresh
pages is faster without it (engine_record._copied_from_memory has the figures). Anywhere else
(another OS, an older kernel, no C library) it is a no-op.

    memory = PopulatedMemory.ahead(expected_bytes, budget_bytes)   # None where it cannot or should not
    ...                                  # a thread maps its pages meanwhile (a build running)
    record = memory.take(exact_bytes)    # an mmap.mmap of exactly that size, its pages in place

`PopulatedMemory` is for a buffer whose size is known only roughly before the work that fills it
(an engine's packed record while TensorRT-RTX builds the engine): its pages are mapped on another
core while the build runs, and the buffer is cut (or grown) to the exact size afterwards without
moving what is mapped (mremap).
"""
from __future__ import annotations

import ctypes
import logging
import mmap
import sys
import threading
from typing import Any, Optional

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
    nbytes = tensor.numel() * tensor.element_size()
    if nbytes < POPULATE_ABOVE_BYTES or tensor.device.type != "cpu":
        return False
    return _populate(tensor.data_ptr(), nbytes)


def _supported() -> bool:
    return _MADVISE is not None and not _unsupported


def _populate(start: int, nbytes: int) -> bool:
    """madvise(MADV_POPULATE_WRITE) over the pages holding [start, start + nbytes)."""
    global _unsupported
    if not _supported():
        return False
    aligned = start - start % PAGE_SIZE
    if _MADVISE(aligned, nbytes + start - aligned, MADV_POPULATE_WRITE) == 0:
        return True
    _unsupported = True
    logger.debug("madvise(MADV_POPULATE_WRITE) refused (errno %d): buffers fault in page by page",
                 ctypes.get_errno())
    return False


def _address(memory: mmap.mmap) -> int:
    view = ctypes.c_char.from_buffer(memory)
    try:
        return ctypes.addressof(view)
    finally:
        del view  # an exported buffer would forbid resizing or closing the mapping


class PopulatedMemory:
    """Private anonymous memory of (about) `nbytes` whose pages a thread maps, `STEP` bytes per
    system call, until they are all in place or `stop` is called; `take` then hands the memory over
    at its exact size. On this project's VMs a page first written after the host took it back (free
    page reporting) costs 3-8 us: 25,000 of them for resnet50's 98 MB record, paid on the core the
    TensorRT-RTX build leaves free instead of after the build. Linux only (mremap, and
    MADV_POPULATE_WRITE, 5.14+): `ahead` gives None elsewhere. `outstanding`: the bytes of all
    PopulatedMemory not yet taken or closed, which `ahead` keeps within its budget."""

    STEP = 4 << 20
    outstanding = 0
    _lock = threading.Lock()

    @classmethod
    def ahead(cls, nbytes: int, budget: int) -> Optional["PopulatedMemory"]:
        """A PopulatedMemory of `nbytes` (its pages mapped from now on), or None: too small to be
        worth it, more than `budget` bytes with those outstanding, or a system that cannot."""
        if nbytes < POPULATE_ABOVE_BYTES or not _supported() or not hasattr(mmap, "MAP_PRIVATE"):
            return None
        with cls._lock:
            if cls.outstanding + nbytes > budget:
                return None
            cls.outstanding += nbytes
        try:
            return cls(nbytes)
        except (OSError, ValueError) as exc:
            with cls._lock:
                cls.outstanding -= nbytes
            logger.debug("no memory mapped ahead (%s)", exc)
            return None

    def __init__(self, nbytes: int) -> None:
        self.nbytes = nbytes
        self.populated = 0  # bytes from the start whose pages are in place
        self._memory: Optional[mmap.mmap] = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE)
        self._start = _address(self._memory)
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._run, name="trtx-record-populate", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while self.populated < self.nbytes and not self._halt.is_set():
            step = min(self.STEP, self.nbytes - self.populated)
            if not _populate(self._start + self.populated, step):
                return
            self.populated += step

    def stop(self) -> None:
        """Stop mapping pages (after the step under way)."""
        self._halt.set()
        if self._thread is not threading.current_thread():  # collected on its own thread: it is ending
            self._thread.join()

    def take(self, nbytes: int) -> Optional[mmap.mmap]:
        """The memory as a writable mmap of exactly `nbytes` (cut, or grown, in place or moved by
        the kernel, never copied; pages not mapped yet are mapped now in one call), owned by the
        caller from now on; None if it cannot be resized (the memory is then released) or was
        taken or closed before."""
        self.stop()
        memory = self._release()
        if memory is None:
            return None
        try:
            if nbytes != len(memory):
                memory.resize(nbytes)
        except (OSError, ValueError, SystemError) as exc:
            logger.debug("memory mapped ahead not resized from %d to %d bytes (%s)", len(memory), nbytes, exc)
            memory.close()
            return None
        if nbytes > self.populated:  # a larger buffer than expected, or a build faster than the thread
            _populate(_address(memory) + self.populated, nbytes - self.populated)
        return memory

    def close(self) -> None:
        """Release the memory unless it was taken (idempotent)."""
        self.stop()
        memory = self._release()
        if memory is not None:
            memory.close()

    def _release(self) -> Optional[mmap.mmap]:
        memory, self._memory = self._memory, None
        if memory is not None:
            with self._lock:
                PopulatedMemory.outstanding -= self.nbytes
        return memory

    def __del__(self) -> None:
        if getattr(self, "_memory", None) is not None:
            self.close()
