"""The runtime cache file store: many engines and processes share one cache file and keep
every engine's JIT kernels.

The file is a container (``cache_container``) of entries keyed by engine identity, the
SHA-256 of the serialized engine, the same in every process and both runtimes. The C++
runtime (``core/runtime/runtime_cache_file.h``) implements the same protocol and writes
the same bytes::

    store = RuntimeCacheFile(default_cache_path())
    key = engine_key(engine_bytes)
    entry = store.try_load_entry(key)          # -> CachedEntry | None, never raises
    store.try_save_entry(key, cache.serialize())  # -> bool, never raises

- Path and size cap are resolved once, when the store is made: a later ``chdir`` or change
  of $TORCH_TENSORRT_RTX_CACHE_MAX_BYTES does not move or resize it.
- Lock: ``<path>.lock`` (``cache_lock``: ``flock(2)`` on Unix, ``LockFileEx`` byte (0, 1)
  on Windows), ``DEFAULT_LOCK_TIMEOUT_S`` polled every ``LOCK_POLL_INTERVAL_S``; never deleted.
  The directory's trust is checked once per operation, before the lock file is opened.
- Load, under a shared lock (on every platform; read-only where the lock file cannot be
  written; with no lock at all where it does not exist and cannot be created, since then
  nobody can write the cache either): the header, the index and this engine's entry only,
  whose checksum is checked before the bytes are returned.
- Save, under the exclusive lock: read the index, keep every other engine's intact entry
  (least recently used ones go only if the size cap needs room; damaged ones are dropped),
  write ``<name><temp_marker><random>`` beside the cache, fsync, replace, fsync the
  directory. An empty serialization is never written. A version-1 file is migrated.
- Refused with a warning, never overwritten: a symlink, FIFO or device at the path, a
  file or directory other users can write, a file that is not a container of ours or
  of another format version. A file larger than the cap is not loaded.
- Lock timeout, I/O error or any other failure (``Exception``): a warning, the file
  untouched, carry on. Warnings go to logging every time and to ``warnings`` as a
  ``RuntimeCacheWarning`` once per cache path and reason.
"""
from __future__ import annotations

import atexit
import hashlib
import logging
import os
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Callable, List, NamedTuple, Optional, Union

from torch_tensorrt_rtx.runtime import cache_container as container
from torch_tensorrt_rtx.runtime import cache_file_io as io
from torch_tensorrt_rtx.runtime.cache_file_io import CacheFileRefused, default_cache_path
from torch_tensorrt_rtx.runtime.cache_lock import CacheFileLock, CacheLockTimeout
from torch_tensorrt_rtx.runtime.definitions import CACHE_PROTOCOL

logger = logging.getLogger(__name__)

DEFAULT_LOCK_TIMEOUT_S = CACHE_PROTOCOL.lock_timeout_ms / 1000
LOCK_POLL_INTERVAL_S = CACHE_PROTOCOL.lock_poll_interval_ms / 1000
LOCK_SUFFIX = CACHE_PROTOCOL.lock_suffix
TOUCH_INTERVAL_S = CACHE_PROTOCOL.touch_interval_s
_COPY_CHUNK = 1 << 22

Blob = Union[bytes, bytearray, memoryview]

__all__ = ["CachedEntry", "RuntimeCacheFile", "default_cache_path", "engine_key", "max_bytes_from_env"]


def engine_key(engine: Blob) -> bytes:
    """An engine's identity in the cache: SHA-256 of its serialized bytes."""
    return hashlib.sha256(engine).digest()


def max_bytes_from_env(environ=None) -> int:
    """The size cap: $TORCH_TENSORRT_RTX_CACHE_MAX_BYTES if a positive integer, else 1 GiB."""
    env = os.environ if environ is None else environ
    text = env.get(CACHE_PROTOCOL.max_bytes_env, "")
    if text:
        # Decimal digits only, 1 to 2**64 - 1, exactly as the C++ runtime accepts them.
        if text.isascii() and text.isdigit() and 0 < int(text) < 1 << 64:
            return int(text)
        # The C++ runtime's text, word for word.
        logger.warning("runtime cache: ignoring %s='%s' (expected a positive number of bytes); "
                       "using %d", CACHE_PROTOCOL.max_bytes_env, text, CACHE_PROTOCOL.default_max_bytes)
    return CACHE_PROTOCOL.default_max_bytes


class CachedEntry(NamedTuple):
    data: bytearray  # read straight from the file into this one buffer
    last_use: int  # Unix seconds of the entry's last save


class RuntimeCacheWarning(UserWarning):
    """The runtime cache was not used as asked (untrusted or damaged file, lock timeout, an entry
    over the size cap, ...): the program goes on without it. Raised through ``warnings`` once per
    cache path and reason, besides the logging record, which a library's NullHandler may hide."""


_WARNED: set = set()  # (category, path, reason kind) already raised through `warnings`
_WARNED_LOCK = threading.Lock()


def warn_once(path: str, kind: str, text: str, stacklevel: int = 2,
              category: type = RuntimeCacheWarning, per: str = "cache path") -> None:
    """``text`` as a ``category`` warning, the first time for this path and reason ``kind``.
    Both runtime-cache stores report here (the Python one after logging, the C++ one through
    ``_C`` or the op library's sink after writing the line to stderr), and so does the engine
    cache (``per="cache directory"``)."""
    with _WARNED_LOCK:
        first = (category, path, kind) not in _WARNED
        _WARNED.add((category, path, kind))
    if first:
        warnings.warn(category(f"torch_tensorrt_rtx {text} (said once per {per} and reason; "
                               "later ones go to logging only)"), stacklevel=stacklevel)


_NATIVE_SINKS: list = []  # the ctypes callbacks handed to C++, alive as long as the process


def connect_native_warnings(library_path: Union[str, os.PathLike]) -> bool:
    """Have the C++ runtime library at ``library_path`` (loaded already) report its runtime cache
    warnings through ``warn_once`` too, not only to stderr; False (and a debug record) for a
    library without that entry point. Never raises."""
    import ctypes

    def sink(path: bytes, kind: bytes, text: bytes) -> None:
        warn_once(os.fsdecode(path), kind.decode(), text.decode("utf-8", "replace"), stacklevel=3)

    callback = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p)(sink)
    try:
        set_sink = ctypes.CDLL(os.fspath(library_path)).torch_tensorrt_rtx_set_cache_warning_sink
    except (OSError, AttributeError) as exc:
        logger.debug("runtime cache: %s cannot report warnings to Python (%s)", library_path, exc)
        return False
    set_sink(callback)
    atexit.register(set_sink, None)  # engines destroyed after the interpreter must not call back
    _NATIVE_SINKS.append(callback)
    return True


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
        warn_once(str(self.path), kind, text % args, stacklevel=5)

    # -- load -------------------------------------------------------------------------
    def try_load_entry(self, key: bytes) -> Optional[CachedEntry]:
        """This engine's entry, or None (missing, refused, unreadable: warnings say why)."""
        found = self._under_lock(True, lambda: self._read(lambda fd: self._read_entry(fd, key)), "loading")
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
        """Every intact entry's key, last use, size, offset and checksum (for tools and tests);
        None if unreadable."""
        found = self._under_lock(True, lambda: self._read(lambda fd: self._read_index(fd).entries), "reading")
        return found if isinstance(found, list) else None

    def _read_index(self, fd: int) -> container.Index:
        size = os.fstat(fd).st_size
        header = container.parse_header(bytes(io.read_exactly(
            fd, 0, min(size, container.HEADER_SIZE), self.path)), size)
        if size == 0:
            return container.Index([], "")
        index = io.read_exactly(fd, container.HEADER_SIZE, container.index_bytes(header, size), self.path)
        return container.parse_index(bytes(index), header, size)

    def _read_entry(self, fd: int, key: bytes) -> Optional[CachedEntry]:
        index = self._read_index(fd)
        if index.damage:
            self._warn("damaged", "runtime cache: %s is damaged (%s); using its intact entries only",
                       self.path, index.damage)
        for entry in index.entries:
            if entry.key == key:
                data = io.read_exactly(fd, entry.offset, entry.size, self.path)
                if entry.checksum is not None and container.checksum(data) != entry.checksum:
                    self._warn("damaged", "runtime cache: the entry for engine %s in %s is damaged "
                               "(checksum mismatch); starting with an empty cache", key.hex()[:16], self.path)
                    return None
                return CachedEntry(data, entry.last_use)
        logger.debug("runtime cache: no entry for engine %s in %s", key.hex()[:16], self.path)
        return None

    def _read(self, read: Callable[[int], object]) -> object:
        """``read(fd)`` of the cache file (None if there is none)."""
        fd = io.open_cache_for_reading(self.path, self.max_bytes)
        if fd is None:
            return None
        try:
            return read(fd)
        finally:
            os.close(fd)

    def _under_lock(self, shared: bool, work: Callable[[], object], action: str) -> object:
        """``work()`` under the shared (load) or exclusive (save) lock; every failure is a
        warning (the documented set: any Exception; KeyboardInterrupt and SystemExit pass)."""
        try:
            if shared and not os.path.lexists(self.path):
                return None  # fast path: no lock file created just to find nothing
            if not shared:
                if os.path.islink(self.path) or os.path.islink(self.lock_path):
                    raise CacheFileRefused("a symlink is at the cache or lock path (expected a regular "
                                           "file); set the cache path to the link's target instead")
                io.make_private_dirs(self.path.parent)
            # Once, before the lock file is opened at all: a directory other users can write may hold anything.
            io.check_directory(self.path.parent)
            lock = CacheFileLock.open(self.lock_path, shared)
            if lock is None and not shared:
                raise CacheFileRefused(f"lock file {self.lock_path} cannot be created")
            with lock or _NO_LOCK:
                if lock is not None:
                    lock.acquire(self.lock_timeout)
                return work()
        except CacheLockTimeout:
            self._warn("lock timeout", "runtime cache: could not lock %s within %.1f s; %s", self.lock_path,
                       self.lock_timeout, _OUTCOME[shared] % self.path)
        except CacheFileRefused as exc:
            self._warn("refused", "runtime cache: not %s %s: %s", action, self.path, exc)
        except container.ContainerError as exc:
            self._warn("not our container", "runtime cache: not %s %s: %s; %s", action, self.path, exc,
                       _OUTCOME[shared] % self.path)
        except Exception as exc:  # OSError, MemoryError, ...: the same warning as the C++ store's
            self._warn("unusable", "runtime cache: cannot %s %s (%s: %s); %s", "read" if shared else "write",
                       self.path, type(exc).__name__, exc, _OUTCOME[shared] % self.path)
        return None

    # -- save -------------------------------------------------------------------------
    def try_save_entry(self, key: bytes, data: Optional[Blob], *, now: Optional[int] = None) -> bool:
        """Replace this engine's entry, keeping every other engine's intact one; True if written."""
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
        when = int(time.time()) if now is None else int(now)
        return self._under_lock(False, lambda: self._save_under_lock(key, data, when), "saving") is True

    def _save_under_lock(self, key: bytes, data: memoryview, now: int) -> bool:
        io.remove_stale_temp_files(self.path)
        old = [io.open_cache_for_reading(self.path, None)]  # closed before the replace (Windows needs that)
        try:
            return self._save_from(old, key, data, now)
        finally:
            if old[0] is not None:
                os.close(old[0])

    def _save_from(self, old: List[Optional[int]], key: bytes, data: memoryview, now: int) -> bool:
        fd = old[0]
        entries: List[container.Entry] = []
        if fd is not None:
            try:
                index = self._read_index(fd)
            except container.ContainerError as exc:
                if exc.verdict != "corrupt":
                    raise CacheFileRefused(f"{exc}; move it away or choose another cache path") from None
                index = container.Index([], str(exc))
            if index.damage:
                self._warn("damaged", "runtime cache: %s is damaged (%s); keeping its %d intact entries",
                           self.path, index.damage, len(index.entries))
            entries = index.entries
        kept = container.entries_to_keep(entries, key, data.nbytes, self.max_bytes)
        evicted = len([e for e in entries if e.key != key]) - len(kept)
        if evicted:
            logger.info("runtime cache: evicting %d least recently used entries from %s to "
                        "stay under %d bytes", evicted, self.path, self.max_bytes)
        # A version-1 entry has no checksum yet: computed from its bytes (the migration).
        kept = [e if e.checksum is not None else e._replace(checksum=_checksum_of_range(fd, e, self.path))
                for e in kept]
        own = (key, now, data.nbytes, container.checksum(data))
        while not self._write_and_replace(old, kept, own, data):
            pass  # a damaged entry was dropped from `kept`: written again without it
        return True

    def _write_and_replace(self, old: List[Optional[int]], kept: List[container.Entry], own: tuple,
                           data: memoryview) -> bool:
        """Write the new file and put it in place; False (and the entry dropped from ``kept``)
        when a kept entry's bytes do not match its checksum."""
        fd = old[0]
        prefix = container.encode_prefix([(e.key, e.last_use, e.size, e.checksum) for e in kept] + [own])
        out, temp = io.create_temp_file(self.path)
        try:
            with out:
                out.write(prefix)
                for position, entry in enumerate(kept):
                    if _copy_range(fd, entry, out, self.path) != entry.checksum:
                        self._warn("damaged", "runtime cache: the entry for engine %s in %s is damaged "
                                   "(checksum mismatch); dropping it", entry.key.hex()[:16], self.path)
                        del kept[position]
                        os.unlink(temp)
                        return False
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            if fd is not None:
                os.close(fd)
                old[0] = None
            io.install_temp_file(temp, self.path)  # unless a symlink appeared there since our first look
        except BaseException:
            io.remove_quietly(temp)
            raise
        io.fsync_directory(self.path.parent)
        return True


_OUTCOME = {True: "starting with an empty cache (%s untouched)", False: "%s left untouched"}


class _NoLock:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


_NO_LOCK = _NoLock()


def _checksum_of_range(fd: int, entry: container.Entry, path: Path) -> int:
    crc, done = 0, 0
    while done < entry.size:
        step = min(_COPY_CHUNK, entry.size - done)
        crc = container.checksum(io.read_exactly(fd, entry.offset + done, step, path), crc)
        done += step
    return crc


def _copy_range(fd: int, entry: container.Entry, out, path: Path) -> int:
    """Copy the entry's bytes to ``out``; their CRC-32."""
    crc, done = 0, 0
    while done < entry.size:
        step = min(_COPY_CHUNK, entry.size - done)
        chunk = io.read_exactly(fd, entry.offset + done, step, path)
        out.write(chunk)
        crc = container.checksum(chunk, crc)
        done += step
    return crc
