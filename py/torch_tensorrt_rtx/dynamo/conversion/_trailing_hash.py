"""SHA-256 of a file's bytes as a writer appends them, on another core, trailing the writer.

    hashing = TrailingFileHash(fd, start=offset)   # hashes the file from `offset` on
    ... write bytes to the file ...; hashing.advance(new_end)   # after each write
    hashing.finish()                               # hex digest of [start, last end)

The bytes are read back from the page cache through read-only mappings of at most WINDOW bytes (no
copy into Python; the window is the only resident memory it adds), so the writer returns at once:
TensorRT-RTX goes on serializing the next chunk of an engine while the last one is hashed, instead
of waiting for both (BERT-base: 7 chunks, each 0.013 s to write and 0.038 s to hash, with 0.01 s of
TensorRT-RTX's own work between two). POSIX (`os.pread` where a mapping cannot be made).
"""
from __future__ import annotations

import hashlib
import mmap
import os
import threading
from typing import Optional


class TrailingFileHash:
    """The SHA-256 of file descriptor `fd`'s bytes from `start` to the last `advance`d end. A worker
    thread runs only while bytes wait to be hashed (none is left behind by a file never finished).
    The caller keeps `fd` open until `finish` (or `close`) has returned."""

    WINDOW = 8 << 20

    def __init__(self, fd: int, start: int = 0) -> None:
        self.fd = fd
        self.hashed = start
        self._digest = hashlib.sha256()
        self._written = start
        self._worker: Optional[threading.Thread] = None
        self._hexdigest: Optional[str] = None
        self._error: Optional[BaseException] = None
        self._lock = threading.Lock()

    def advance(self, end: int) -> None:
        """The file now holds its bytes up to `end` (written: visible to reads and mappings)."""
        with self._lock:
            self._written = end
            if self._worker is None and self._error is None:
                self._worker = threading.Thread(target=self._run, name="trtx-engine-hash", daemon=True)
                self._worker.start()

    def finish(self) -> str:
        """The hex digest, once every advanced byte is hashed; raises what the hashing raised."""
        if self._hexdigest is None:
            self.close()
            if self._error is not None:
                raise self._error
            self._hexdigest = self._digest.hexdigest()
        return self._hexdigest

    def close(self) -> None:
        """Wait until every advanced byte is hashed (or the hashing failed); never raises."""
        while True:
            with self._lock:
                worker = self._worker
            if worker is None:
                return
            worker.join()

    def _run(self) -> None:
        try:
            while True:
                with self._lock:
                    end = self._written
                    if self.hashed >= end:
                        self._worker = None
                        return
                while self.hashed < end:
                    step = min(self.WINDOW, end - self.hashed)
                    self._hash_range(self.hashed, step)
                    self.hashed += step
        except BaseException as exc:  # noqa: BLE001 - raised again by finish()
            with self._lock:
                self._error, self._worker = exc, None

    def _hash_range(self, offset: int, size: int) -> None:
        base = offset - offset % mmap.ALLOCATIONGRANULARITY
        try:
            window = mmap.mmap(self.fd, offset + size - base, access=mmap.ACCESS_READ, offset=base)
        except (OSError, ValueError):  # no mapping of this file: read it (a copy)
            data = os.pread(self.fd, size, offset)
            if len(data) != size:
                raise OSError(f"engine file ended {size - len(data)} bytes short at byte {offset + len(data)}")
            self._digest.update(data)
            return
        try:
            with memoryview(window) as view:
                self._digest.update(view[offset - base:])
        finally:
            window.close()
