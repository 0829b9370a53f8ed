"""The engine cache: a serialized engine is built once and reused by every later compile of the
same partition, in any process.

    cache = EngineCache(directory, max_bytes)
    engine = cache.try_load(key)           # bytearray | None; never raises for I/O or bad files
    found = cache.try_load_engine(key)     # CachedEngine | None: verified, read when packed
    record = cache.try_read_engine(key, lambda engine: pack(engine))   # one pass: read and verified at once
    cache.try_save(key, engine)            # bool; never raises for I/O or bad files

One file per engine, ``<key>.trtxcache`` (key: ``_engine_cache_key.engine_key``), so a save
writes only its own entry and a load reads only its own. An entry is a fixed header (magic,
format version, key, payload size, SHA-256 of the payload) and the serialized engine's bytes,
exactly as TensorRT-RTX returned them: a reused engine has the same SHA-256, so the runtime cache's
entry for it stays warm. The entry file's modification time is its last use (set on every hit),
which is all the index the size cap needs.

The same discipline as the runtime cache file (``runtime/runtime_cache_file.py``, whose helpers
this reuses): lock file ``<dir>/engine_cache.lock`` (``flock``; loads share it, saves hold it
exclusively, with a timeout); the directory must be one only you (or root) can write; entries
are opened without blocking and without following symlinks and must be regular files of at most
the size cap; saves write ``<entry><temp marker><random>`` beside it, fsync and rename. A
compile hands its first save an unnamed file in the directory whose pages were made while
TensorRT-RTX built (``start_spare_entry``, ``SpareEntryFile``): the entry is written into it under the
lock, which only then gives it that temp name. Before a
save, the least recently used entries of *other* engines go until the new one fits under the cap.
A refused, truncated or damaged entry (checksum mismatch) gives an ``EngineCacheWarning`` (once
per directory and reason; logging every time) and the engine is built again; the next save
replaces it. ``$TORCH_TENSORRT_RTX_ENGINE_CACHE=0`` switches the cache off in the whole process.

``custom_engine_cache=`` (upstream's name) replaces the directory by the user's own store, a
``BaseEngineCache`` (importable from here, as upstream spells it): see ``_custom_engine_cache.py``.
"""
from __future__ import annotations

import contextlib
import hashlib
import itertools
import logging
import operator
import os
import re
import stat
import struct
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple, Union

import torch

from torch_tensorrt_rtx.runtime import cache_file_io as io
from torch_tensorrt_rtx.runtime.cache_file_io import CacheFileRefused
from torch_tensorrt_rtx.runtime.cache_lock import CacheFileLock, CacheLockTimeout
from torch_tensorrt_rtx.runtime.runtime_cache_file import warn_once

logger = logging.getLogger(__name__)

OFF_SWITCH_ENV = "TORCH_TENSORRT_RTX_ENGINE_CACHE"  # "0", "off", "false" or "no": no engine cache
DEFAULT_SUBDIR = "engines"
LOCK_NAME = "engine_cache.lock"
SUFFIX = ".trtxcache"
# Waiting for a peer to finish writing an engine of hundreds of MB is cheaper than building it.
LOCK_TIMEOUT_S = 60.0
_ENTRY_NAME = re.compile(r"[0-9a-f]{64}" + re.escape(SUFFIX))
_MAGIC = b"TRTXENGC"
_FORMAT_VERSION = 1
_HEADER = struct.Struct("<8sII32sQ32s")  # magic, format version, header size, key, payload size, SHA-256
Blob = Union[bytes, bytearray, memoryview]
_VERIFY_CHUNK = 8 << 20  # an entry is verified and copied through a buffer of this size


class EngineCacheWarning(UserWarning):
    """The engine cache could not be used as asked (an untrusted directory, a damaged or refused
    entry, a lock timeout, an engine over the size cap): the compile goes on and builds."""


def disabled_by_environment(environ=None, name: str = OFF_SWITCH_ENV) -> bool:
    value = (os.environ if environ is None else environ).get(name, "")
    return value.strip().lower() in ("0", "off", "false", "no")


def default_cache_dir() -> str:
    """``engines`` in the runtime cache's default directory (not created here)."""
    return os.path.join(io.default_cache_dir(), DEFAULT_SUBDIR)


def check_cache_settings(settings: Any) -> Optional[str]:
    """Validate the cache fields of CompilationSettings; the directory as text (or None)."""
    for name in ("cache_built_engines", "reuse_cached_engines"):
        if not isinstance(getattr(settings, name), bool):
            raise ValueError(f"{name} must be True or False, got {getattr(settings, name)!r}")
    size = settings.engine_cache_size
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"engine_cache_size must be a number of bytes >= 1, got {size!r}")
    if getattr(settings, "custom_engine_cache", None) is not None:
        from torch_tensorrt_rtx.dynamo._custom_engine_cache import check_custom_cache

        check_custom_cache(settings.custom_engine_cache)
    directory = settings.engine_cache_dir
    if directory is None:
        return None
    if not isinstance(directory, (str, os.PathLike)):
        raise ValueError(f"engine_cache_dir must be a directory path or None, got {type(directory).__name__}")
    text = os.fsdecode(os.fspath(directory))
    if not text or "\0" in text:
        raise ValueError(f"engine_cache_dir must be a directory path (non-empty, no NUL character), got {text!r}")
    return text




class _Header(NamedTuple):
    key: bytes
    size: int
    sha256: bytes


@contextlib.contextmanager
def _locked(lock_path: Path, shared: bool, timeout: float):
    """The runtime cache's lock discipline on the engine cache's lock file: shared for reads,
    exclusive for writes (runtime/cache_lock.py). A lock file that cannot be created means nobody
    can write here: a read then goes ahead unlocked, a write is refused."""
    lock = CacheFileLock.open(lock_path, shared)
    if lock is None:
        if not shared:
            raise CacheFileRefused(f"cannot create the lock file {lock_path}")
        yield
        return
    with lock:
        lock.acquire(timeout)
        yield


def _entry_header(key: bytes, size: int, sha256: bytes) -> bytes:
    return _HEADER.pack(_MAGIC, _FORMAT_VERSION, _HEADER.size, key, size, sha256)


def _payload(engine: Any) -> Tuple[int, bytes, Callable[[Any], None]]:
    """(size, SHA-256, write-to-file) of an engine: a SerializedEngine / CachedEngine (written a
    chunk at a time, its hash already known) or any bytes-like object."""
    if hasattr(engine, "copy_to"):
        return engine.nbytes, bytes.fromhex(engine.sha256), engine.copy_to
    view = memoryview(engine).cast("B")
    return view.nbytes, hashlib.sha256(view).digest(), lambda out: out.write(view)


def _parse_header(raw: bytes, file_size: int, path: Path) -> _Header:
    if len(raw) < _HEADER.size:
        raise ValueError(f"{path} is {file_size} bytes, shorter than an entry's header")
    magic, version, header_size, key, size, sha = _HEADER.unpack(raw)
    if magic != _MAGIC:
        raise ValueError(f"{path} is not an engine cache entry (magic {magic!r})")
    if version != _FORMAT_VERSION or header_size != _HEADER.size:
        raise ValueError(f"{path} has entry format {version} (header {header_size} bytes); expected "
                         f"{_FORMAT_VERSION} ({_HEADER.size} bytes)")
    if file_size != _HEADER.size + size:
        raise ValueError(f"{path} is {file_size} bytes, its header says {_HEADER.size + size} (truncated?)")
    return _Header(key, size, sha)


def _check_key(header: _Header, key: str, where: Any) -> None:
    if header.key != bytes.fromhex(key):
        raise ValueError(f"{where} holds the engine of key {header.key.hex()[:16]}..., not {key[:16]}...")


def _read_header(fd: int, key: str, path: Path) -> _Header:
    """The entry file's header, checked against its size and `key`."""
    size = os.fstat(fd).st_size
    header = _parse_header(bytes(io.read_exactly(fd, 0, min(size, _HEADER.size), path)), size, path)
    _check_key(header, key, path)
    return header


def _read_hashed(fd: int, size: int, path: Path, part_at: Callable[[int, int], memoryview]) -> Any:
    """SHA-256 of the entry's `size` engine bytes, read a chunk at a time into ``part_at(offset,
    length)`` (one small buffer reused, or the caller's whole buffer)."""
    digest = hashlib.sha256()
    for offset in range(0, size, _VERIFY_CHUNK):
        part = part_at(offset, min(_VERIFY_CHUNK, size - offset))
        io.read_into(fd, _HEADER.size + offset, part, path)
        digest.update(part)
    return digest


def _check_sha256(header: _Header, digest: Any, where: Any) -> None:
    if digest.digest() != header.sha256:
        raise ValueError(f"{where}: the engine's checksum does not match its header (damaged)")


class EngineCache:
    """One cache directory; see the module docstring."""

    prefetch = True  # EngineCacheSession may read entries on a worker thread

    def __init__(self, directory: Union[str, os.PathLike], max_bytes: int,
                 lock_timeout: float = LOCK_TIMEOUT_S) -> None:
        self.directory = Path(os.path.abspath(os.fspath(directory)))
        self.max_bytes = int(max_bytes)
        self.lock_path = self.directory / LOCK_NAME
        self.lock_timeout = float(lock_timeout)

    def __repr__(self) -> str:
        return f"EngineCache({str(self.directory)!r})"

    def entry_path(self, key: str) -> Path:
        return self.directory / f"{key}{SUFFIX}"

    def warn(self, kind: str, text: str, *args: Any) -> None:
        logger.warning(text, *args)
        warn_once(str(self.directory), kind, text % args, stacklevel=5, category=EngineCacheWarning,
                  per="cache directory")

    # -- load -------------------------------------------------------------------------
    def try_load(self, key: str) -> Optional[bytearray]:
        """The engine stored under `key`, checksum verified, or None (then build it)."""
        found = self.try_load_engine(key)
        if found is None:
            return None
        with contextlib.closing(found):
            engine = bytearray(found.nbytes)
            found.readinto(engine)
        return engine

    def try_load_engine(self, key: str) -> Optional["CachedEngine"]:
        """The engine stored under `key`, checksum verified, as a CachedEngine (its entry file
        held open: packing reads it straight into the packed record), or None."""
        def verified(fd: int, path: Path) -> CachedEngine:
            return CachedEngine(fd, self._verify(fd, key, path), path)

        return self._use_entry(key, verified, keeps_fd=True)

    def try_read_engine(self, key: str, consume: Callable[["StreamedEngine"], Any]) -> Any:
        """One pass over the entry of `key`: ``consume(engine)`` gets a StreamedEngine (`nbytes`,
        `sha256` from the header, `readinto`) and reads it with one ``readinto``, which checks the
        SHA-256 as the bytes arrive (no separate verifying read). Returns what `consume` returns, or
        None as `try_load_engine` does (absent, refused, damaged: then nothing `consume` built is
        to be used). Exceptions of `consume` other than OSError and ValueError pass through."""
        def stream(fd: int, path: Path) -> Any:
            engine = StreamedEngine(fd, _read_header(fd, key, path), path)
            result = consume(engine)
            if not engine.checked:
                raise ValueError(f"{path}: the engine was not read whole, so its checksum was not checked")
            return result

        return self._use_entry(key, stream, keeps_fd=False)

    def _use_entry(self, key: str, use: Callable[[int, Path], Any], keeps_fd: bool) -> Any:
        """`use(fd, path)` on the entry file of `key`, opened under the shared lock (closed
        afterwards unless `keeps_fd` and `use` succeeded); None when absent, refused or damaged."""
        path = self.entry_path(key)
        try:
            if not os.path.lexists(path):
                return None
            io.check_directory(self.directory)
            with _locked(self.lock_path, True, self.lock_timeout):
                fd = io.open_cache_for_reading(path, self.max_bytes)
                if fd is None:
                    return None  # evicted since we looked
                try:
                    result = use(fd, path)
                    _touch(fd, path)
                except BaseException:
                    os.close(fd)
                    raise
                if not keeps_fd:
                    os.close(fd)
                return result
        except CacheLockTimeout:
            self.warn("lock timeout", "engine cache: could not lock %s within %.0f s; building the engine",
                       self.lock_path, self.lock_timeout)
        except CacheFileRefused as exc:
            self.warn("refused", "engine cache: not reading %s: %s; building the engine", path, exc)
        except (OSError, ValueError) as exc:
            self.warn("damaged", "engine cache: ignoring %s: %s; building the engine (the next save replaces it)",
                       path, exc)
        return None

    def _verify(self, fd: int, key: str, path: Path) -> _Header:
        """The entry's header, once its key and the SHA-256 of its engine bytes match. The bytes
        stream through one small buffer: the engine is not held in memory here."""
        header = _read_header(fd, key, path)
        chunk = memoryview(bytearray(min(_VERIFY_CHUNK, header.size)))
        _check_sha256(header, _read_hashed(fd, header.size, path, lambda _, length: chunk[:length]), path)
        return header

    # -- save -------------------------------------------------------------------------
    def spare_entry_file(self, expected_bytes: int) -> Optional["SpareEntryFile"]:
        """An unnamed file in the cache directory whose first pages a thread makes when asked
        (`make_pages`: zeros over a header and `expected_bytes`), for a `try_save` to write its
        entry into (see SpareEntryFile); None where unnamed files cannot be made (not Linux, a
        filesystem without O_TMPFILE) or the directory is not the cache's to write in."""
        if not hasattr(os, "O_TMPFILE") or expected_bytes <= 0:
            return None
        try:
            io.make_private_dirs(self.directory)
            io.check_directory(self.directory)
            fd = os.open(self.directory, os.O_TMPFILE | os.O_RDWR | getattr(os, "O_CLOEXEC", 0), 0o600)
        except (OSError, CacheFileRefused) as exc:
            logger.debug("engine cache: no spare entry file in %s (%s)", self.directory, exc)
            return None
        return SpareEntryFile(fd, _HEADER.size + min(int(expected_bytes), self.max_bytes))

    def try_save(self, key: str, engine: Blob, *, now: Optional[float] = None,
                 spare: Optional["SpareEntryFile"] = None) -> bool:
        """Store `engine` under `key`, evicting least recently used other entries to stay under the cap.
        `spare`: a `spare_entry_file` to write the entry into (its pages made already); it is
        used up (closed) either way."""
        try:
            return self._save(key, engine, now, spare)
        finally:
            if spare is not None:
                spare.close()

    def _save(self, key: str, engine: Blob, now: Optional[float], spare: Optional["SpareEntryFile"]) -> bool:
        size, sha256, write_payload = _payload(engine)
        total = _HEADER.size + size
        if total > self.max_bytes:
            self.warn("over the cap", "engine cache: an engine of %d bytes alone exceeds engine_cache_size=%d; "
                       "not stored in %s", size, self.max_bytes, self.directory)
            return False
        path = self.entry_path(key)
        try:
            io.make_private_dirs(self.directory)
            io.check_directory(self.directory)
            if os.path.islink(path):
                raise CacheFileRefused(f"{path} is a symlink (expected a regular file)")
            with _locked(self.lock_path, False, self.lock_timeout):
                self._remove_stale_temp_files()
                self._evict_for(key, total)
                header = _entry_header(bytes.fromhex(key), size, sha256)
                if spare is None or not spare.install(path, header, write_payload, total, now):
                    self._write(path, header, write_payload, now)
            io.fsync_directory(self.directory)
            return True
        except CacheLockTimeout:
            self.warn("lock timeout", "engine cache: could not lock %s within %.0f s; engine not stored",
                       self.lock_path, self.lock_timeout)
        except CacheFileRefused as exc:
            self.warn("refused", "engine cache: not writing %s: %s", path, exc)
        except OSError as exc:
            self.warn("unwritable", "engine cache: cannot write %s (%s); engine not stored", path, exc)
        return False

    def _write(self, path: Path, header: bytes, write_payload: Callable[[Any], None], now: Optional[float]) -> None:
        out, temp = io.create_temp_file(path)
        try:
            with out:
                out.write(header)
                write_payload(out)
                out.flush()
                os.fsync(out.fileno())
        except BaseException:
            io.remove_quietly(temp)
            raise
        _install(temp, path, now)

    def try_remove(self, key: str) -> None:
        """Delete the entry of `key` (one found unusable), under the exclusive lock; never raises."""
        path = self.entry_path(key)
        try:
            with _locked(self.lock_path, False, self.lock_timeout):
                os.unlink(path)
        except (CacheLockTimeout, CacheFileRefused, OSError) as exc:
            logger.info("engine cache: could not remove %s: %s", path, exc)

    def entries(self) -> List[Tuple[str, int, float]]:
        """(key, file size, last use) of every regular entry file, least recently used first."""
        found = []
        try:
            names = os.listdir(self.directory)
        except OSError:
            return []
        for name in names:
            if not _ENTRY_NAME.fullmatch(name):
                continue
            try:
                info = os.lstat(self.directory / name)
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode):
                found.append((name[:-len(SUFFIX)], info.st_size, info.st_mtime))
        return sorted(found, key=lambda entry: (entry[2], entry[0]))

    def _evict_for(self, key: str, size: int) -> None:
        """Remove least recently used entries other than `key`'s until `size` more bytes fit."""
        others = [e for e in self.entries() if e[0] != key]
        used = sum(e[1] for e in others)
        for other_key, other_size, _ in others:
            if used + size <= self.max_bytes:
                break
            try:
                os.unlink(self.entry_path(other_key))
                used -= other_size
                logger.info("engine cache: evicted %s (%d bytes) to stay under %d bytes", other_key[:16],
                            other_size, self.max_bytes)
            except OSError as exc:  # e.g. a reader holds it open on Windows: try the next one
                logger.info("engine cache: could not evict %s: %s", other_key[:16], exc)

    def _remove_stale_temp_files(self) -> None:
        """Temp files of writers that were killed (only under the exclusive lock)."""
        for key, _, _ in self.entries():
            io.remove_stale_temp_files(self.entry_path(key))
        try:
            names = os.listdir(self.directory)
        except OSError:
            return
        for name in names:  # temp files of entries that never got written
            base = name.split(io.TEMP_MARKER, 1)[0]
            if _ENTRY_NAME.fullmatch(base) and io.is_own_temp_name(base, name):
                try:
                    os.unlink(self.directory / name)
                except OSError:
                    pass


def _install(temp: Path, path: Path, now: Optional[float]) -> None:
    """Put the written, synced entry file `temp` at `path` (its last use `now` when given), unless a
    symlink appeared there since our first look; `temp` is removed if that fails."""
    try:
        if now is not None:
            os.utime(temp, (now, now))
        io.install_temp_file(temp, path)
    except BaseException:
        io.remove_quietly(temp)
        raise


class SpareEntryFile:
    """An unnamed (O_TMPFILE) file in the cache directory, its first `nbytes` made by a
    FilePrefault thread while TensorRT-RTX builds (`make_pages`, called by EngineCacheSession.build;
    sized from the graph's weights), so the entry later written into it overwrites pages the file
    has instead of making new ones: on this project's VMs 0.08-0.12 s instead of 1.0-1.6 s for a
    425 MB entry (fsync 0.2 s either way). The zeros take that much of the cache's disk while the
    compile runs, outside the size cap (a failed write just stops them). `install` writes the
    entry under the cache's exclusive lock and only then gives the file a name (a temp name beside
    the entry, linked from /proc/self/fd, then renamed over the entry), so a named temp file still
    exists only while its writer holds the lock and a killed compile leaves nothing behind."""

    def __init__(self, fd: int, nbytes: int) -> None:
        from torch_tensorrt_rtx.dynamo._file_prefault import FilePrefault

        self.fd = fd
        self._prefault: Optional[Any] = FilePrefault(fd, 0, nbytes, start=False)

    def make_pages(self) -> None:
        """Start making the pages (when the compile reaches its first build), if not started yet."""
        if self._prefault is not None:
            self._prefault.begin()

    def install(self, path: Path, header: bytes, write_payload: Callable[[Any], None], total: int,
                now: Optional[float]) -> bool:
        """Write `header` and the payload into the file, make it durable and put it at `path`
        (call under the exclusive lock). False when the file cannot be given a name (no /proc,
        a kernel refusing the link): the caller then writes the entry the usual way."""
        self._stop_prefault()
        with open(self.fd, "r+b", buffering=0, closefd=False) as out:
            out.write(header)
            write_payload(out)
        os.ftruncate(self.fd, total)  # zeros made beyond a smaller entry than expected
        os.fsync(self.fd)
        temp = io.temp_name(path)
        try:
            # linkat(..., AT_SYMLINK_FOLLOW): Python calls it only when given a directory descriptor
            directory = os.open(path.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
            try:
                os.link(f"/proc/self/fd/{self.fd}", temp.name, dst_dir_fd=directory, follow_symlinks=True)
            finally:
                os.close(directory)
        except OSError as exc:
            logger.debug("engine cache: the spare entry file could not be named (%s); writing the entry anew", exc)
            return False
        _install(temp, path, now)
        return True

    def _stop_prefault(self) -> None:
        if self._prefault is not None:
            self._prefault.stop()
            self._prefault = None

    def close(self) -> None:
        """Stop making pages and let the file go (an unnamed file is freed with its last descriptor)."""
        self._stop_prefault()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class _EntryEngine:
    """The engine of an open entry: `nbytes`, `sha256` (hex, the header's), `path`."""

    def __init__(self, header: _Header, path: Path) -> None:
        self.nbytes, self.sha256, self.path = header.size, header.sha256.hex(), path

    def __len__(self) -> int:
        return self.nbytes

    def _whole(self, buffer: Any) -> memoryview:
        """`buffer` as bytes, checked to be exactly `nbytes` long."""
        view = memoryview(buffer).cast("B")
        if view.nbytes != self.nbytes:
            raise ValueError(f"engine buffer has {view.nbytes} bytes, expected {self.nbytes}")
        return view


class CachedEngine(_EntryEngine):
    """A verified entry's engine: `nbytes`, `sha256` (hex), `readinto` (read from the entry file,
    held open, straight into the caller's buffer, e.g. the packed record), `copy_to`, `close`.
    The bytes read are those verified: the descriptor keeps the verified file even when a save
    replaces or eviction removes its path (saves write a new file and rename it; nothing in the
    cache's discipline writes into an existing entry)."""

    def __init__(self, fd: int, header: _Header, path: Path) -> None:
        super().__init__(header, path)
        self._file = open(fd, "rb", buffering=0)  # owns fd: closed by close() or when collected

    def readinto(self, buffer: Any) -> None:
        """Fill `buffer` (writable, exactly `nbytes` long) with the engine."""
        io.read_into(self._file.fileno(), _HEADER.size, self._whole(buffer), self.path)

    def copy_to(self, out: Any) -> None:
        """Write the engine to the file object `out`, a chunk at a time."""
        chunk = memoryview(bytearray(min(_VERIFY_CHUNK, self.nbytes)))
        for offset in range(0, self.nbytes, _VERIFY_CHUNK):
            part = chunk[:min(_VERIFY_CHUNK, self.nbytes - offset)]
            io.read_into(self._file.fileno(), _HEADER.size + offset, part, self.path)
            out.write(part)

    def close(self) -> None:
        self._file.close()


class StreamedEngine(_EntryEngine):
    """An entry's engine not verified yet (see `EngineCache.try_read_engine`): `nbytes`, `sha256`
    (hex, the header's), and `readinto`, which reads it whole into the caller's buffer a chunk at a
    time, hashing each chunk as it lands, and raises ValueError when the SHA-256 does not match."""

    def __init__(self, fd: int, header: _Header, path: Path) -> None:
        super().__init__(header, path)
        self._fd, self._header = fd, header
        self.checked = False

    def readinto(self, buffer: Any) -> None:
        view = self._whole(buffer)
        digest = _read_hashed(self._fd, self.nbytes, self.path, lambda offset, length: view[offset:offset + length])
        _check_sha256(self._header, digest, self.path)
        self.checked = True


def _touch(fd: int, path: Path) -> None:
    """Mark an entry used now (its mtime is its last use); a read-only cache stays as it is."""
    try:
        os.utime(fd if os.utime in os.supports_fd else path)
    except OSError:
        pass


def cache_switches(settings: Any) -> Tuple[Optional[Any], bool, bool]:
    """(the cache or None when it is off, reuse entries?, store entries?) for these settings."""
    off = disabled_by_environment()
    reuse = settings.reuse_cached_engines and not off
    store = settings.cache_built_engines and not off
    if not (reuse or store):
        return None, False, False
    if getattr(settings, "custom_engine_cache", None) is not None:
        from torch_tensorrt_rtx.dynamo._custom_engine_cache import UserEngineCache

        return UserEngineCache(settings.custom_engine_cache), reuse, store
    return EngineCache(settings.engine_cache_dir or default_cache_dir(), settings.engine_cache_size), reuse, store


def start_weight_digests(module: Any, settings: Any) -> Optional[Any]:
    """A WeightDigests already hashing `module`'s parameters and buffers on worker threads (call
    it before torch.export, which then runs meanwhile), or None when the cache is off."""
    if cache_switches(settings)[0] is None or not isinstance(module, torch.nn.Module):
        return None
    from torch_tensorrt_rtx.dynamo._weight_digests import WeightDigests

    digests = WeightDigests()
    digests.submit(tensor for _, tensor in module.named_parameters(remove_duplicate=True))
    digests.submit(tensor for _, tensor in module.named_buffers(remove_duplicate=True))
    return digests


def expected_engine_bytes(module: Any, reduced_precision: Optional[torch.dtype]) -> int:
    """About the bytes of `module`'s engines: its weights (each storage once), fp32 ones at half
    size when the compile reduces precision (BERT-base: 440 MB of weights, a 425 MB engine)."""
    seen, total = set(), 0
    for tensor in itertools.chain(module.parameters(), module.buffers()):
        if tensor.device.type == "meta" or tensor.untyped_storage().data_ptr() in seen:
            continue
        seen.add(tensor.untyped_storage().data_ptr())
        nbytes = tensor.numel() * tensor.element_size()
        total += nbytes // 2 if reduced_precision is not None and tensor.dtype == torch.float32 else nbytes
    return total


def start_spare_entry(module: Any, settings: Any) -> Optional[SpareEntryFile]:
    """A spare entry file of the disk cache for about `module`'s engine (its pages are made
    during the first build: `make_pages`), or None when no engine will be stored there."""
    cache, _, store = cache_switches(settings)
    if not store or not isinstance(cache, EngineCache) or not isinstance(module, torch.nn.Module):
        return None
    return cache.spare_entry_file(expected_engine_bytes(module, settings.reduced_precision))


class EngineCacheSession:
    """The cache as one compile uses it: settings resolved once, each weight hashed once (on
    worker threads: those of `weight_digests` when given, e.g. started before torch.export),
    each partition keyed once. `look_up` starts reading and verifying a partition's entry on a
    worker thread (hashlib and file reads release the GIL), so it overlaps the conversion of the
    partitions that miss; `build` then takes its result."""

    def __init__(self, settings: Any, symbol_ranges: Any, weight_digests: Optional[Any] = None,
                 spare: Optional[SpareEntryFile] = None, at_first_build: Optional[Callable[[], None]] = None) -> None:
        from torch_tensorrt_rtx.dynamo._weight_digests import WeightDigests

        self.settings, self.symbol_ranges = settings, symbol_ranges
        self.spare = spare  # the first engine stored is written into it (start_spare_entry)
        self.at_first_build = at_first_build  # called once, as the first engine build starts
        self.cache, self.reuse, self.store = cache_switches(settings)
        self.weights = weight_digests if weight_digests is not None else WeightDigests()
        self.hits = 0
        self.store_seconds = 0.0  # spent storing built engines (the report's "engine cache store")
        self._keys: Dict[Tuple[int, str], Tuple[Any, Optional[str]]] = {}  # (id(sub), ranges) -> (sub, key)
        self._lookups: Dict[str, Future] = {}  # key -> try_load_engine on a worker thread
        self._reader: Optional[ThreadPoolExecutor] = None

    def close(self) -> None:
        """Stop the workers; close the entries looked up but never used."""
        self.weights.close()
        if self.spare is not None:
            self.spare.close()
            self.spare = None
        for lookup in self._lookups.values():
            lookup.add_done_callback(_close_unused)
        self._lookups.clear()
        if self._reader is not None:
            self._reader.shutdown(wait=False)

    def key(self, sub: Any, input_ranges: Any) -> Optional[str]:
        from torch_tensorrt_rtx.dynamo._engine_cache_key import Uncacheable, engine_key

        if self.cache is None:
            return None
        memo = (id(sub), repr(input_ranges))
        known = self._keys.get(memo)
        if known is not None and known[0] is sub:
            return known[1]
        key = None
        try:
            constants = (operator.attrgetter(n.target)(sub) for n in sub.graph.find_nodes(op="get_attr"))
            self.weights.submit(constants)  # hashed in parallel while the graph's text is built
            key = engine_key(sub, input_ranges, self.symbol_ranges, self.settings, self.weights.digest)
        except Uncacheable as exc:
            logger.info("engine cache: partition not cacheable (%s); building it", exc)
        except Exception:  # noqa: BLE001 - a fault of the cache must never cost the engine
            logger.warning("engine cache: no key for this partition; building it", exc_info=True)
        self._keys[memo] = (sub, key)
        return key

    def look_up(self, sub: Any, input_ranges: Any) -> bool:
        """Start reading and verifying the partition's entry on a worker thread when the cache has
        one. True: `build` will most likely take the engine from the cache (unless the entry turns
        out damaged or unreadable: then `build` builds), so the network need not be converted now."""
        key = self.key(sub, input_ranges)
        if key is None or not self.reuse:
            return False
        if key in self._lookups:
            return True
        if not self.cache.prefetch:  # a custom cache: the user's load runs here, on the compiling thread
            done: Future = Future()
            done.set_result(self.cache.try_load_engine(key))
            self._lookups[key] = done
            return done.result() is not None
        if not os.path.lexists(self.cache.entry_path(key)):
            return False
        if self._reader is None:
            self._reader = ThreadPoolExecutor(1, thread_name_prefix="trtx-engine-cache")
        self._lookups[key] = self._reader.submit(self.cache.try_load_engine, key)
        return True

    def build(self, sub: Any, input_ranges: Any, label: str,
              build: Callable[[], Tuple[Any, float]]) -> Tuple[Any, float]:
        """The engine from the cache if there (a CachedEngine), else `build()`'s SerializedEngine
        (stored afterwards, copied a chunk at a time)."""
        key = self.key(sub, input_ranges)
        if key is not None and self.reuse:
            lookup = self._lookups.pop(key, None)
            found = self.cache.try_load_engine(key) if lookup is None else lookup.result()
            if found is not None:
                self.hits += 1
                logger.info("engine cache: %s reused %s from %r", label, key[:16], self.cache)
                return found, 0.0
        if self.spare is not None and key is not None and self.store:
            self.spare.make_pages()
        if self.at_first_build is not None:
            start_work, self.at_first_build = self.at_first_build, None
            start_work()
        engine, seconds = build()
        if key is not None and self.store:
            start = time.perf_counter()
            spare, self.spare = self.spare, None
            if spare is None:  # a custom cache's try_save takes (key, engine) only
                self.cache.try_save(key, engine)
            else:
                self.cache.try_save(key, engine, spare=spare)
            self.store_seconds += time.perf_counter() - start
        return engine, seconds


def _close_unused(lookup: Future) -> None:
    if not lookup.cancelled() and lookup.exception() is None and lookup.result() is not None:
        lookup.result().close()


def __getattr__(name: str) -> Any:
    """``BaseEngineCache`` where upstream's examples import it from (loaded on first use)."""
    if name == "BaseEngineCache":
        from torch_tensorrt_rtx.dynamo._custom_engine_cache import BaseEngineCache

        return BaseEngineCache
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
