"""The runtime cache file store: many engines and processes share one cache file and keep
every engine's JIT kernels.

The file is a container (``cache_container``) of entries keyed by engine identity, the
SHA-256 of the serialized engine, the same in every process and both runtimes. The C++
runtime (``core/runtime/runtime_cache_file.h``) implements the same protocol and writes
the same bytes::

    store = RuntimeCacheFile(default_cache_path())
    key = engine_key(engine_bytes)
    entry = store.try_load_entry(key)          # -> CachedEntry | None, never raises for I/O
    store.try_save_entry(key, cache.serialize())  # -> bool, never raises for I/O

- Lock: ``<path>.lock`` (``flock(2)`` on Unix, ``LockFileEx`` byte (0, 1) on Windows),
  ``DEFAULT_LOCK_TIMEOUT_S`` polled every ``LOCK_POLL_INTERVAL_S``; never deleted.
- Load, under a shared lock (read-only where the lock file cannot be written; with no
  lock at all where it does not exist and cannot be created, since then nobody can
  write the cache either): the header, the index and this engine's entry only.
- Save, under py-filelock's exclusive lock: read the index, keep every other engine's
  entry (least recently used ones go only if the size cap needs room), write
  ``<name><temp_marker><random>`` beside the cache, fsync, replace, fsync the directory.
  An empty serialization is never written.
- Refused with a warning, never overwritten: a symlink, FIFO or device at the path, a
  file or directory other users can write, a file that is not a container of ours or
  of another format version. A file larger than the cap is not loaded. A corrupt
  container of ours is not loaded and is replaced by the next save.
- Lock timeout or I/O error: warning, the file untouched, carry on.
"""
from __future__ import annotations

import errno
import hashlib
import inspect
import logging
import os
import stat
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Callable, List, NamedTuple, Optional, Union

import filelock

from torch_tensorrt_rtx.runtime import cache_container as container
from torch_tensorrt_rtx.runtime import cache_file_io as io
from torch_tensorrt_rtx.runtime.cache_file_io import CacheFileRefused, default_cache_path
from torch_tensorrt_rtx.runtime.definitions import CACHE_PROTOCOL

logger = logging.getLogger(__name__)

DEFAULT_LOCK_TIMEOUT_S = CACHE_PROTOCOL.lock_timeout_ms / 1000
LOCK_POLL_INTERVAL_S = CACHE_PROTOCOL.lock_poll_interval_ms / 1000
LOCK_SUFFIX = CACHE_PROTOCOL.lock_suffix
TOUCH_INTERVAL_S = CACHE_PROTOCOL.touch_interval_s
_COPY_CHUNK = 1 << 22

Blob = Union[bytes, bytearray, memoryview]


def filelock_options(lock_class: type) -> dict:
    """The options that keep ``lock_class`` (py-filelock's ``FileLock``) the lock the C++
    runtime takes on the same file, for the ones the installed release has (both arrived in
    filelock 3.30.0; older releases neither unlink nor fall back, and take no such option).

    - ``preserve_lock_file=True``: a Windows release otherwise deletes the lock file, which the
      C++ side locks too; the protocol never deletes it.
    - ``fallback_to_soft=False``: where ``flock`` fails with ENOSYS (some network and container
      mounts), filelock otherwise switches silently to an existence ("soft") lock that the C++
      runtime's flock neither sees nor respects, and that is released by deleting the lock
      file. Refused, the error reaches the store: it warns and leaves the cache untouched, as
      the C++ runtime does on such a file system.
    """
    try:
        accepted = inspect.signature(lock_class).parameters
    except (TypeError, ValueError):
        return {}
    wanted = {"preserve_lock_file": True, "fallback_to_soft": False}
    return {name: value for name, value in wanted.items() if name in accepted}


_FILELOCK_OPTIONS = filelock_options(filelock.FileLock)


def _exclusive_lock(lock_path: Path, timeout: float) -> filelock.BaseFileLock:
    return filelock.FileLock(str(lock_path), timeout=timeout, **_FILELOCK_OPTIONS)

__all__ = ["CachedEntry", "RuntimeCacheFile", "default_cache_path", "engine_key", "max_bytes_from_env"]


def engine_key(engine: Blob) -> bytes:
    """An engine's identity in the cache: SHA-256 of its serialized bytes."""
    return hashlib.sha256(engine).digest()


def max_bytes_from_env(environ=None) -> int:
    """The size cap: $TORCH_TENSORRT_RTX_CACHE_MAX_BYTES if a positive integer, else 1 GiB."""
    env = os.environ if environ is None else environ
    text = env.get(CACHE_PROTOCOL.max_bytes_env, "")
    if text:
        # Decimal digits only, exactly as the C++ runtime accepts them.
        if text.isascii() and text.isdigit() and 0 < int(text) < 1 << 64:
            return int(text)
        logger.warning("runtime cache: ignoring %s=%r (expected a positive number of bytes); "
                       "using %d", CACHE_PROTOCOL.max_bytes_env, text, CACHE_PROTOCOL.default_max_bytes)
    return CACHE_PROTOCOL.default_max_bytes


class CachedEntry(NamedTuple):
    data: bytearray  # read straight from the file into this one buffer
    last_use: int  # Unix seconds of the entry's last save


class RuntimeCacheWarning(UserWarning):
    """The runtime cache was not used as asked (untrusted or damaged file, lock timeout, an entry
    over the size cap, ...): the program goes on without it. Raised through ``warnings`` once per
    cache path and reason, besides the logging record, which a library's NullHandler may hide."""


_WARNED: set = set()  # (cache path, reason kind) already raised through `warnings`
_WARNED_LOCK = threading.Lock()


class RuntimeCacheFile:
    """One cache file plus its lock file; see the module docstring for the protocol."""

    def __init__(self, path: Union[str, os.PathLike], *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT_S,
                 max_bytes: Optional[int] = None) -> None:
        self.path = Path(os.path.abspath(io.check_path(path)))
        self.lock_path = self.path.with_name(self.path.name + LOCK_SUFFIX)
        self.lock_timeout = float(lock_timeout)
        if not 0.0 <= self.lock_timeout <= 1e9:  # also NaN
            # One meaning in both runtimes and both operations: never "wait forever" for a save
            # and "give up at once" for a load.
            raise ValueError(f"runtime cache lock_timeout must be a number of seconds >= 0, found {lock_timeout!r}")
        self.max_bytes = int(max_bytes) if max_bytes is not None else max_bytes_from_env()
        if self.max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, found {max_bytes}")

    def __repr__(self) -> str:
        return f"RuntimeCacheFile({str(self.path)!r})"

    def _warn(self, kind: str, text: str, *args: Any) -> None:
        """A logging warning every time; a RuntimeCacheWarning the first time for this path and kind."""
        logger.warning(text, *args)
        with _WARNED_LOCK:
            first = (str(self.path), kind) not in _WARNED
            _WARNED.add((str(self.path), kind))
        if first:
            warnings.warn(RuntimeCacheWarning(f"torch_tensorrt_rtx {text % args} (said once per cache path and "
                                              "reason; later ones go to logging only)"), stacklevel=4)

    # -- load -------------------------------------------------------------------------
    def try_load_entry(self, key: bytes) -> Optional[CachedEntry]:
        """This engine's entry, or None (missing, refused, unreadable: warnings say why)."""
        found = self._under_shared_lock(lambda fd: self._read_entry(fd, key), "loading")
        return found if isinstance(found, CachedEntry) else None

    def try_load(self, key: bytes, deserialize: Callable[[memoryview], object]) -> Optional[CachedEntry]:
        """Load this engine's entry and hand it to ``deserialize``; the entry if accepted.

        ``deserialize`` returns falsy or raises to reject the bytes (another GPU or
        TensorRT-RTX version): a warning, and the caller starts empty.
        """
        entry = self.try_load_entry(key)
        if entry is None:
            return None
        try:
            ok, reason = bool(deserialize(memoryview(entry.data))), "rejected by the runtime"
        except Exception as exc:
            ok, reason = False, f"{type(exc).__name__}: {exc}"
        if not ok:
            self._warn("unusable entry",
                       "runtime cache: cannot use the entry for engine %s in %s (%d bytes): "
                       "%s (other GPU or TensorRT-RTX version?); starting with an empty cache",
                       key.hex()[:16], self.path, len(entry.data), reason)
            return None
        return entry

    def try_read_index(self) -> Optional[List[container.Entry]]:
        """Every entry's key, last use and size (for tools and tests); None if unreadable."""
        found = self._under_shared_lock(self._read_index, "reading")
        return found if isinstance(found, list) else None

    def _read_index(self, fd: int) -> List[container.Entry]:
        size = os.fstat(fd).st_size
        header = container.parse_header(bytes(io.read_exactly(
            fd, 0, min(size, container.HEADER_SIZE), self.path)), size)
        if size == 0:
            return []
        index = io.read_exactly(fd, container.HEADER_SIZE,
                                header.count * container.INDEX_ENTRY_SIZE, self.path)
        return container.parse_index(bytes(index), header, size)

    def _read_entry(self, fd: int, key: bytes) -> Optional[CachedEntry]:
        for entry in self._read_index(fd):
            if entry.key == key:
                return CachedEntry(io.read_exactly(fd, entry.offset, entry.size, self.path),
                                   entry.last_use)
        logger.debug("runtime cache: no entry for engine %s in %s", key.hex()[:16], self.path)
        return None

    def _under_shared_lock(self, read: Callable[[int], object], action: str) -> object:
        try:
            if not os.path.lexists(self.path):
                return None  # fast path: no lock file created just to find nothing
            # Before the lock file is opened at all: a directory other users can write may hold anything.
            io.check_directory(self.path.parent)
            with _SharedLock(self.lock_path, self.lock_timeout):
                fd = io.open_cache_for_reading(self.path, self.max_bytes)
                if fd is None:
                    return None
                try:
                    return read(fd)
                finally:
                    os.close(fd)
        except filelock.Timeout:
            self._warn("lock timeout", "runtime cache: could not lock %s within %.1f s; starting with an "
                       "empty cache", self.lock_path, self.lock_timeout)
        except CacheFileRefused as exc:
            self._warn("refused", "runtime cache: not %s %s: %s", action, self.path, exc)
        except container.ContainerError as exc:
            self._warn("not our container", "runtime cache: not %s %s: %s; starting with an empty cache",
                       action, self.path, exc)
        except OSError as exc:
            self._warn("unreadable", "runtime cache: cannot read %s (%s); starting with an empty cache",
                       self.path, exc)
        return None

    # -- save -------------------------------------------------------------------------
    def try_save_entry(self, key: bytes, data: Optional[Blob], *, now: Optional[int] = None) -> bool:
        """Replace this engine's entry, keeping every other engine's; True if written."""
        if data is None or memoryview(data).nbytes == 0:
            logger.debug("runtime cache: nothing to save to %s", self.path)
            return False
        data = memoryview(data).cast("B")
        if container.file_size_of([data.nbytes]) > self.max_bytes:
            self._warn("entry over the size cap",
                       "runtime cache: the entry for engine %s (%d bytes) alone exceeds the "
                       "cache size cap of %d bytes (%s); %s left untouched", key.hex()[:16],
                       data.nbytes, self.max_bytes, CACHE_PROTOCOL.max_bytes_env, self.path)
            return False
        try:
            if os.path.islink(self.path) or os.path.islink(self.lock_path):
                raise CacheFileRefused("a symlink is at the cache or lock path (expected a regular "
                                       "file); set the cache path to the link's target instead")
            io.make_private_dirs(self.path.parent)
            io.check_directory(self.path.parent)
            _check_lock_path_is_a_file(self.lock_path)
            lock = _exclusive_lock(self.lock_path, self.lock_timeout)
            with lock.acquire(poll_interval=LOCK_POLL_INTERVAL_S):
                self._save_under_lock(key, data, int(time.time()) if now is None else int(now))
            return True
        except filelock.Timeout:
            self._warn("lock timeout", "runtime cache: could not lock %s within %.1f s; %s left untouched",
                       self.lock_path, self.lock_timeout, self.path)
        except CacheFileRefused as exc:
            self._warn("refused", "runtime cache: not saving to %s: %s; file left untouched", self.path, exc)
        except OSError as exc:
            self._warn("unwritable", "runtime cache: cannot write %s (%s); file left untouched", self.path, exc)
        return False

    def _save_under_lock(self, key: bytes, data: memoryview, now: int) -> None:
        io.remove_stale_temp_files(self.path)
        fd = io.open_cache_for_reading(self.path, None)
        try:
            entries: List[container.Entry] = []
            if fd is not None:
                try:
                    entries = self._read_index(fd)
                except container.ContainerError as exc:
                    if exc.verdict != "corrupt":
                        raise CacheFileRefused(f"{exc}; move it away or choose another cache "
                                               f"path") from None
                    self._warn("damaged", "runtime cache: %s is a damaged cache (%s); replacing it",
                               self.path, exc)
            kept = container.entries_to_keep(entries, key, data.nbytes, self.max_bytes)
            evicted = len([e for e in entries if e.key != key]) - len(kept)
            if evicted:
                logger.info("runtime cache: evicting %d least recently used entries from %s to "
                            "stay under %d bytes", evicted, self.path, self.max_bytes)
            prefix = container.encode_prefix([(e.key, e.last_use, e.size) for e in kept]
                                             + [(key, now, data.nbytes)])
            out, temp = io.create_temp_file(self.path)
            try:
                with out:
                    out.write(prefix)
                    for entry in kept:
                        _copy_range(fd, entry.offset, entry.size, out, self.path)
                    out.write(data)
                    out.flush()
                    os.fsync(out.fileno())
                if fd is not None:
                    os.close(fd)  # Windows cannot replace a file that is still open
                    fd = None
                if os.path.islink(self.path):  # may have appeared after our first look
                    raise CacheFileRefused(f"{self.path} became a symlink")
                io.replace_file(temp, self.path)
            except BaseException:
                try:
                    os.unlink(temp)
                except OSError:
                    pass
                raise
        finally:
            if fd is not None:
                os.close(fd)
        io.fsync_directory(self.path.parent)


def _copy_range(fd: int, offset: int, size: int, out, path: Path) -> None:
    done = 0
    while done < size:
        step = min(_COPY_CHUNK, size - done)
        out.write(io.read_exactly(fd, offset + done, step, path))
        done += step


class _SharedLock:
    """The load side's lock: flock(LOCK_SH) on Unix, opening the lock file read-only where it
    cannot be written, and no lock where it neither exists nor can be created (then no
    writer can exist). Windows: py-filelock's exclusive lock."""

    def __init__(self, lock_path: Path, timeout: float) -> None:
        self.lock_path, self.timeout = lock_path, timeout
        self._fd: Optional[int] = None
        self._exclusive = None

    def __enter__(self) -> "_SharedLock":
        if io.current_platform() == io.WINDOWS:
            self._exclusive = _exclusive_lock(self.lock_path, self.timeout)
            self._exclusive.acquire(poll_interval=LOCK_POLL_INTERVAL_S)
            return self
        import fcntl

        deadline = time.monotonic() + self.timeout
        while True:
            fd = _open_lock_file(self.lock_path)
            if fd is None:
                return self
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                if time.monotonic() >= deadline:
                    raise filelock.Timeout(str(self.lock_path)) from None
                time.sleep(LOCK_POLL_INTERVAL_S)
                continue
            except BaseException:
                os.close(fd)
                raise
            # A peer that unlinks the lock file on release may have done so between our
            # open and our flock: then we hold a lock nobody else will ever see. Retry.
            try:
                held, there = os.fstat(fd), os.stat(self.lock_path, follow_symlinks=False)
                if held.st_nlink > 0 and (held.st_dev, held.st_ino) == (there.st_dev, there.st_ino):
                    self._fd = fd
                    return self
            except OSError:
                pass
            os.close(fd)

    def __exit__(self, *exc) -> None:
        if self._exclusive is not None:
            self._exclusive.release()
        if self._fd is not None:
            os.close(self._fd)  # closing releases the flock


_NOT_A_FILE = "is not a regular file (a FIFO, device or directory at the lock path is refused)"


def _check_lock_path_is_a_file(lock_path: Path) -> None:
    """CacheFileRefused if something other than a regular file sits at the lock path (py-filelock
    would open it as it is; opening a FIFO read-only waits for a writer forever)."""
    try:
        mode = os.lstat(lock_path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode):
        raise CacheFileRefused(f"lock file {lock_path} {_NOT_A_FILE}")


def _open_lock_file(lock_path: Path) -> Optional[int]:
    # O_NONBLOCK: a FIFO at the lock path must not block the open; it is refused just below.
    flags = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | flags, 0o666)
    except OSError as exc:
        if exc.errno == errno.EISDIR:  # as the C++ FileLock does
            raise CacheFileRefused(f"lock file {lock_path} {_NOT_A_FILE}") from None
        if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        try:
            fd = os.open(lock_path, os.O_RDONLY | flags)  # flock works read-only
        except FileNotFoundError:
            return None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise CacheFileRefused(f"lock file {lock_path} {_NOT_A_FILE}")
    return fd
