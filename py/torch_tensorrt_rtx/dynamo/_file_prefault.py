"""A file's pages made ahead, on another core, before the bytes that will fill them are known.

    prefault = FilePrefault(fd, offset, nbytes)   # a thread writes zeros over [offset, offset + nbytes)
    ...                                           # meanwhile the main thread works (a build, an export)
    prefault.stop()                               # before the real bytes go in: the zeros never land on them

Used for a streamed engine's temporary file (`conversion/_engine_builder.py`) and for the engine
cache's entry file (`_engine_cache.py`). The bytes written later then overwrite pages the file
already has instead of having the kernel find a new page for every 4 KiB while the compile waits:
on this project's VMs, whose kernel hands memory freed for a few seconds back to the host (free
page reporting), a first write costs 0.7-1.1 s per 448 MB, a rewrite 0.1-0.15 s
(`benchmarks/streamed_packaging.py`). Positional writes (`os.pwrite`, POSIX), so the owner's file
position is not shared; without them nothing is done, and a failed write just ends the thread
(the real writes then make the pages themselves).
"""
from __future__ import annotations

import logging
import os
import threading

from torch_tensorrt_rtx.dynamo._background import background_thread

logger = logging.getLogger(__name__)


class FilePrefault(threading.Thread):
    """Writes zeros over `nbytes` of the file `fd` from `offset`, stopping (between two steps) at `stop()`."""

    _STEP = 8 << 20

    def __init__(self, fd: int, offset: int, nbytes: int, start: bool = True) -> None:
        super().__init__(name="trtx-file-prefault", daemon=True)
        self.fd, self.offset, self.nbytes = fd, offset, nbytes
        self.written = 0
        self._halt = threading.Event()
        if start:
            self.begin()

    def begin(self) -> None:
        """Start writing (once; not where positional writes are missing, nor after `stop`)."""
        if hasattr(os, "pwrite") and self.nbytes > 0 and self.ident is None and not self._halt.is_set():
            self.start()

    def run(self) -> None:
        background_thread()
        zeros = bytes(min(self._STEP, self.nbytes))
        try:
            while self.written < self.nbytes and not self._halt.is_set():
                step = memoryview(zeros)[:min(len(zeros), self.nbytes - self.written)]
                self.written += os.pwrite(self.fd, step, self.offset + self.written)
        except OSError as exc:
            logger.debug("file prefault stopped after %d bytes: %s", self.written, exc)

    def stop(self) -> None:
        """Stop and wait until no zero is written any more."""
        self._halt.set()
        if self.ident is not None:
            self.join()
