"""The runtime cache file store: many processes share one JIT runtime cache file safely.

``RuntimeCacheFile(path)`` implements the cache file protocol (DESIGN.md, "The cache file
protocol"); the C++ runtime implements the same steps byte for byte:

- Lock: ``<path>.lock`` through py-filelock (``flock(2)`` on Unix, ``LockFileEx`` on
  Windows), ``DEFAULT_LOCK_TIMEOUT_S`` seconds. The lock file is never deleted.
- Load: under the lock read the whole file, release, then deserialize. Missing -> start
  empty. Deserialize fails (corrupt, truncated, other GPU/version) -> warning naming the
  file, start empty.
- Save: serialize first, outside the lock; skip an empty or failed serialization.
  Create missing parent directories (mode 0o700). Under the lock: delete stale temp
  files ``<name>.*.tmp`` (a temp file only lives while its writer holds the lock, so any
  found under the lock belongs to a killed writer), write a uniquely named temp file
  ``<name>.<random>.tmp`` in the same directory, flush + fsync, ``os.replace`` over the
  cache, fsync the directory.
- The lock is polled every ``LOCK_POLL_INTERVAL_S`` (50 ms).
- Lock timeout or I/O error -> warning, the cache file is left untouched, carry on.
- A symlink at the cache path (or at the lock path) is refused with a warning: replacing
  it would silently swap the link for a regular file, and following it would let whoever
  planted it pick which file we overwrite.

It works on raw bytes and callables, so it needs no GPU::

    store = RuntimeCacheFile(default_cache_path())
    store.try_load(runtime_cache.deserialize)          # -> bool, never raises for I/O
    store.try_save(lambda: runtime_cache.serialize())  # -> bool, never raises for I/O

Failures that happen in normal operation are reported by the ``try_`` methods' return
value plus a logged warning; exceptions are left for programming errors.
"""
from __future__ import annotations

import glob
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Callable, Optional, Union

import filelock

from torch_tensorrt_rtx.runtime.definitions import CACHE_PROTOCOL

logger = logging.getLogger(__name__)

# The protocol's constants come from cache_protocol.txt, which the C++ runtime reads too.
DEFAULT_LOCK_TIMEOUT_S = CACHE_PROTOCOL.lock_timeout_ms / 1000
LOCK_POLL_INTERVAL_S = CACHE_PROTOCOL.lock_poll_interval_ms / 1000
LOCK_SUFFIX = CACHE_PROTOCOL.lock_suffix
# Per-user default location: $XDG_CACHE_HOME/<dir>/<file>, else ~/.cache/<dir>/<file>.
DEFAULT_CACHE_DIR_NAME = CACHE_PROTOCOL.default_cache_dir
DEFAULT_CACHE_FILE_NAME = CACHE_PROTOCOL.default_cache_file
# Temp files are "<cache name>.<random>.tmp" in the cache's directory. They exist only
# while their writer holds the lock, so one found under the lock belongs to a dead writer.
_TEMP_SUFFIX = ".tmp"

Blob = Union[bytes, bytearray, memoryview]


def default_cache_path(create_dir: bool = True) -> Path:
    """The per-user runtime cache file; its directory is created with mode 0o700."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    # The XDG spec says a relative XDG_CACHE_HOME is invalid and must be ignored.
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    directory = base / DEFAULT_CACHE_DIR_NAME
    if create_dir:
        try:
            _make_private_dirs(directory)
        except OSError as exc:
            logger.warning("cannot create runtime cache directory %s: %s", directory, exc)
    return directory / DEFAULT_CACHE_FILE_NAME


class RuntimeCacheFile:
    """One cache file plus its lock file; see the module docstring for the protocol."""

    def __init__(self, path: Union[str, os.PathLike], *,
                 lock_timeout: float = DEFAULT_LOCK_TIMEOUT_S) -> None:
        self.path = Path(os.path.abspath(os.fspath(path)))
        self.lock_path = self.path.with_name(self.path.name + LOCK_SUFFIX)
        self.lock_timeout = float(lock_timeout)

    def __repr__(self) -> str:
        return f"RuntimeCacheFile({str(self.path)!r})"

    def _refuse_symlink(self, action: str) -> bool:
        for p in (self.path, self.lock_path):
            if os.path.islink(p):  # False on any lstat error, as in the C++ runtime
                logger.warning(
                    "runtime cache: not %s %s: %s is a symlink (expected a regular file); "
                    "set the cache path to the link's target instead", action, self.path, p)
                return True
        return False

    def _lock(self):
        # A fresh lock object per operation: filelock objects are reentrant and
        # thread-local, and a shared one would hide contention between our own threads.
        lock = filelock.FileLock(str(self.lock_path), timeout=self.lock_timeout)
        return lock.acquire(poll_interval=LOCK_POLL_INTERVAL_S)

    # -- load -------------------------------------------------------------------------
    def try_read(self) -> Optional[bytes]:
        """The whole file read under the lock; None if missing, refused or unreadable."""
        if self._refuse_symlink("loading"):
            return None
        if not os.path.exists(self.path):  # False on any stat error, as in the C++ runtime
            return None  # fast path, no lock file created just to find nothing
        try:
            with self._lock():
                try:
                    with open(self.path, "rb") as f:
                        return f.read()
                except FileNotFoundError:
                    return None
        except filelock.Timeout:
            logger.warning("runtime cache: could not lock %s within %.1f s; starting with an "
                           "empty cache", self.lock_path, self.lock_timeout)
        except OSError as exc:
            logger.warning("runtime cache: cannot read %s (%s); starting with an empty cache",
                           self.path, exc)
        return None

    def try_load(self, deserialize: Callable[[memoryview], object]) -> bool:
        """Read the file and hand it to ``deserialize``; True if it accepted the bytes.

        ``deserialize`` returns falsy or raises to reject the bytes (corrupt, truncated,
        another GPU or version): that gives a warning and the caller starts empty.
        """
        data = self.try_read()
        if data is None:
            return False
        try:
            ok = deserialize(memoryview(data))
        except Exception as exc:
            ok, reason = False, f"{type(exc).__name__}: {exc}"
        else:
            reason = "rejected by the runtime (corrupt, truncated, or from another GPU/version)"
        if not ok:
            logger.warning("runtime cache: cannot use %s (%d bytes): %s; starting with an "
                           "empty cache", self.path, len(data), reason)
            return False
        return True

    # -- save -------------------------------------------------------------------------
    def try_save(self, serialize: Callable[[], Optional[Blob]]) -> bool:
        """Serialize (outside the lock), then atomically replace the file; True if written."""
        try:
            blob = serialize()
        except Exception as exc:
            logger.warning("runtime cache: serialization failed (%s: %s); %s left untouched",
                           type(exc).__name__, exc, self.path)
            return False
        return self.try_save_bytes(blob)

    def try_save_bytes(self, blob: Optional[Blob]) -> bool:
        if blob is None or memoryview(blob).nbytes == 0:
            logger.debug("runtime cache: nothing to save to %s", self.path)
            return False
        if self._refuse_symlink("saving"):
            return False
        try:
            _make_private_dirs(self.path.parent)
            with self._lock():
                self._replace_under_lock(memoryview(blob).cast("B"))
            return True
        except filelock.Timeout:
            logger.warning("runtime cache: could not lock %s within %.1f s; %s left untouched",
                           self.lock_path, self.lock_timeout, self.path)
        except OSError as exc:
            logger.warning("runtime cache: cannot write %s (%s); file left untouched",
                           self.path, exc)
        return False

    def _replace_under_lock(self, data: memoryview) -> None:
        directory = self.path.parent
        self._remove_stale_temp_files()
        fd, tmp = tempfile.mkstemp(prefix=self.path.name + ".", suffix=_TEMP_SUFFIX,
                                   dir=directory)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            # Check again under the lock: the link may have appeared after our first look.
            if self.path.is_symlink():
                raise OSError(f"{self.path} became a symlink")
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        _fsync_directory(directory)

    def _remove_stale_temp_files(self) -> None:
        """Delete temp files left by writers killed mid-save (call only under the lock)."""
        for stale in self.path.parent.glob(f"{glob.escape(self.path.name)}.*{_TEMP_SUFFIX}"):
            # The random part is non-empty and has no dot: "<name>.gpu1.<random>.tmp" is
            # the temp file of another cache, guarded by another lock.
            middle = stale.name[len(self.path.name) + 1:-len(_TEMP_SUFFIX)]
            if not middle or "." in middle:
                continue
            try:
                stale.unlink()
                logger.info("runtime cache: removed %s left by an interrupted save", stale)
            except OSError:
                pass  # best effort; a leftover temp file costs disk space, nothing else


def _make_private_dirs(directory: Path) -> None:
    """Create missing directories, every level with mode 0o700 (``mkdir(parents=True)``
    gives the intermediate ones the default mode)."""
    if os.path.exists(directory) or directory.parent == directory:
        return
    _make_private_dirs(directory.parent)
    try:
        directory.mkdir(mode=0o700)
    except FileExistsError:
        pass


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable. Windows cannot open directories; its rename is journaled."""
    if sys.platform == "win32":
        return
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
