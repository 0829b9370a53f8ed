"""The runtime cache's lock on ``<cache>.lock``: the Python twin of ``core/util/file_lock.h``,
one behaviour in both runtimes and both operations.

- Unix: ``flock(2)`` (what py-filelock and the C++ FileLock take on the same file); Windows:
  ``LockFileEx`` on byte range (0, 1), through ctypes. Loads take a shared lock, saves an
  exclusive one, on every platform.
- The lock file is opened read-write and created if missing; where that is not permitted
  (EACCES, EPERM, EROFS: a read-only image, another user's lock file) an existing one is
  opened read-only, which both lock kinds accept. Where it neither exists nor can be
  created, ``CacheFileLock.open`` returns None: nobody can write the cache there.
- A held lock is "busy, try again" until the timeout; a permission error is never read as
  busy (py-filelock retries EACCES until its timeout): it reaches the caller at once.
- Opened without blocking and without following a symlink; anything but a regular file at
  the lock path is ``CacheFileRefused``. The lock file is never deleted. A peer that
  deletes it on release cannot make two holders: after locking, the descriptor must still
  be the file at the path, else the lock is taken again.
"""
from __future__ import annotations

import errno
import os
import stat
import sys
import time
from pathlib import Path
from typing import Optional

from torch_tensorrt_rtx.runtime.cache_file_io import CacheFileRefused
from torch_tensorrt_rtx.runtime.definitions import CACHE_PROTOCOL

POLL_INTERVAL_S = CACHE_PROTOCOL.lock_poll_interval_ms / 1000
_NOT_A_FILE = "is not a regular file (a FIFO, device or directory at the lock path is refused)"
_READ_ONLY_ERRNOS = (errno.EACCES, errno.EPERM, errno.EROFS)


class CacheLockTimeout(TimeoutError):
    """Another process held the lock for the whole timeout."""


class CacheFileLock:
    """``with CacheFileLock.open(path, shared=True) as lock: lock.acquire(timeout)``."""

    def __init__(self, path: Path, fd: int, shared: bool) -> None:
        self.path, self._fd, self.shared = path, fd, shared

    @classmethod
    def open(cls, path: Path, shared: bool) -> Optional["CacheFileLock"]:
        fd = _open_lock_file(path)
        return None if fd is None else cls(path, fd, shared)

    def acquire(self, timeout: float) -> None:
        """Take the lock, polling until ``timeout`` seconds have passed (at least one try)."""
        deadline = time.monotonic() + timeout
        while True:
            if self._fd is None:
                self._fd = _open_lock_file(self.path)
                if self._fd is None:
                    raise FileNotFoundError(errno.ENOENT, "lock file vanished", str(self.path))
            if _try_lock(self._fd, self.shared):
                if _still_at_path(self._fd, self.path):
                    return
                self.close()  # a peer deleted the file we locked: nobody else sees it
                continue
            now = time.monotonic()
            if now >= deadline:
                raise CacheLockTimeout(f"could not lock {self.path} within {timeout:.1f} s")
            time.sleep(min(POLL_INTERVAL_S, deadline - now))

    def close(self) -> None:
        if self._fd is not None:
            _release(self._fd)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "CacheFileLock":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _open_lock_file(path: Path) -> Optional[int]:
    # O_NONBLOCK: a FIFO at the lock path must not block the open; it is refused just below.
    flags = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0) | \
        getattr(os, "O_BINARY", 0) | getattr(os, "O_NOINHERIT", 0)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | flags, 0o666)  # & ~umask, as the C++ FileLock
    except OSError as exc:
        if exc.errno == errno.EISDIR:
            raise CacheFileRefused(f"lock file {path} {_NOT_A_FILE}") from None
        if exc.errno not in _READ_ONLY_ERRNOS:
            raise
        try:
            fd = os.open(path, os.O_RDONLY | flags)
        except FileNotFoundError:
            return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise CacheFileRefused(f"lock file {path} {_NOT_A_FILE}")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _still_at_path(fd: int, path: Path) -> bool:
    try:
        held, there = os.fstat(fd), os.stat(path, follow_symlinks=False)
    except OSError:
        return False
    return held.st_nlink > 0 and (held.st_dev, held.st_ino) == (there.st_dev, there.st_ino)


if sys.platform == "win32":
    import ctypes
    import msvcrt
    from ctypes import wintypes

    _ERROR_LOCK_VIOLATION = 33
    _LOCKFILE_FAIL_IMMEDIATELY, _LOCKFILE_EXCLUSIVE_LOCK = 0x1, 0x2

    class _Overlapped(ctypes.Structure):  # offset 0: the byte py-filelock and the C++ FileLock lock
        _fields_ = [("Internal", ctypes.c_void_p), ("InternalHigh", ctypes.c_void_p),
                    ("Offset", wintypes.DWORD), ("OffsetHigh", wintypes.DWORD), ("hEvent", wintypes.HANDLE)]

    _kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    _kernel32.LockFileEx.argtypes = [wintypes.HANDLE, wintypes.DWORD, wintypes.DWORD, wintypes.DWORD,
                                     wintypes.DWORD, ctypes.POINTER(_Overlapped)]
    _kernel32.LockFileEx.restype = wintypes.BOOL
    _kernel32.UnlockFileEx.argtypes = [wintypes.HANDLE, wintypes.DWORD, wintypes.DWORD, wintypes.DWORD,
                                       ctypes.POINTER(_Overlapped)]
    _kernel32.UnlockFileEx.restype = wintypes.BOOL

    def _try_lock(fd: int, shared: bool) -> bool:
        flags = _LOCKFILE_FAIL_IMMEDIATELY | (0 if shared else _LOCKFILE_EXCLUSIVE_LOCK)
        if _kernel32.LockFileEx(msvcrt.get_osfhandle(fd), flags, 0, 1, 0, ctypes.byref(_Overlapped())):
            return True
        error = ctypes.get_last_error()
        if error == _ERROR_LOCK_VIOLATION:
            return False
        raise ctypes.WinError(error)

    def _release(fd: int) -> None:  # at once: Windows may release a closed handle's locks later
        _kernel32.UnlockFileEx(msvcrt.get_osfhandle(fd), 0, 1, 0, ctypes.byref(_Overlapped()))
else:
    try:
        import fcntl
    except ImportError:  # imported where fcntl is missing (a Windows check), never used there
        fcntl = None

    def _try_lock(fd: int, shared: bool) -> bool:
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:  # EWOULDBLOCK / EAGAIN: another holder
            return False
        return True

    def _release(fd: int) -> None:
        pass  # closing the descriptor releases the flock at once
