"""``custom_engine_cache=``: an engine cache the user stores (upstream's ``BaseEngineCache`` protocol).

    class RAMEngineCache(BaseEngineCache):
        def __init__(self): self.blobs = {}
        def save(self, hash, blob): self.blobs[hash] = blob
        def load(self, hash): return self.blobs.get(hash)

    trtx.compile(model, inputs, custom_engine_cache=RAMEngineCache())

The compiler calls ``load(key)`` before it builds a partition's engine and ``save(key, blob)`` after
it built one (when ``reuse_cached_engines`` / ``cache_built_engines`` are on). ``key`` is this
package's engine key (64 hex digits: ``_engine_cache_key.engine_key``), not upstream's ``get_hash``.
A blob is byte for byte what the disk cache writes to ``<key>.trtxcache``: a fixed header (magic
``TRTXENGC``, format version, key, engine size, SHA-256 of the engine) and the serialized engine,
unchanged. No input names, settings or pickles travel in it: the key covers everything that decides
the engine. Blobs are therefore not interchangeable with upstream's pickled blobs (or theirs with ours).

What ``load`` returns is untrusted: anything but None or an empty blob must be a blob of this key
whose SHA-256 matches, else an ``EngineCacheWarning`` says why and the engine is built (and saved
again). An exception from the user's ``load``/``save`` is the same: a warning, then the compile goes
on. ``engine_cache_dir`` and ``engine_cache_size`` are not used with a custom cache; the environment
switch ``$TORCH_TENSORRT_RTX_ENGINE_CACHE=0`` turns it off too.
"""
from __future__ import annotations

import hashlib
import io
import itertools
import logging
from abc import ABC, abstractmethod
from typing import Any, Optional

from torch_tensorrt_rtx.dynamo._engine_cache import (
    _HEADER,
    EngineCacheWarning,
    _check_key,
    _check_sha256,
    _entry_header,
    _parse_header,
    _payload,
)
from torch_tensorrt_rtx.dynamo.conversion._engine_builder import _EngineBlob
from torch_tensorrt_rtx.runtime.runtime_cache_file import warn_once

logger = logging.getLogger(__name__)
_COMPILES = itertools.count(1)  # each compile's warnings are its own ("once" means once per compile)


class BaseEngineCache(ABC):
    """Subclass it and implement ``save(hash, blob)`` and ``load(hash) -> blob or None`` (upstream's
    abstract methods, same names and arguments). See the module docstring for what a blob is."""

    @abstractmethod
    def save(self, hash: str, blob: bytes, *args: Any, **kwargs: Any) -> None:
        """Keep `blob` under `hash`."""

    @abstractmethod
    def load(self, hash: str, *args: Any, **kwargs: Any) -> Optional[bytes]:
        """The blob saved under `hash`, or None."""

    @staticmethod
    def pack(hash: str, engine: Any) -> bytes:
        """The blob of a serialized engine (bytes-like, or an engine with ``nbytes``/``readinto``)."""
        return pack(hash, engine)

    @staticmethod
    def unpack(blob: Any, hash: str) -> bytes:
        """The serialized engine in a blob of `hash`, verified; ValueError saying why when it is not."""
        return unpack(blob, hash).tobytes()

    @staticmethod
    def get_hash(*args: Any, **kwargs: Any) -> str:
        raise NotImplementedError(
            "torch_tensorrt_rtx computes an engine's key itself (graph, weights, input ranges, settings, "
            "versions: dynamo/_engine_cache_key.py) and passes it to save/load; upstream's "
            "get_hash(gm, input_specs, settings) has no equivalent here")


class MemoryEngine(_EngineBlob):
    """A verified engine held in memory (what a custom cache's blob holds)."""

    def __init__(self, data: bytes, sha256: str) -> None:
        self._data, self.nbytes, self.sha256 = data, len(data), sha256

    def readinto(self, buffer: Any) -> None:
        self._target(buffer)[:] = self._data

    def copy_to(self, out: Any) -> None:
        out.write(self._data)

    def tobytes(self) -> bytes:
        return self._data

    def close(self) -> None:
        pass


def pack(key: str, engine: Any) -> bytes:
    """The blob the disk cache would write for `engine` (its `_payload`: size, SHA-256, bytes)."""
    size, sha256, write_payload = _payload(engine)
    blob = io.BytesIO()
    blob.write(_entry_header(bytes.fromhex(key), size, sha256))
    write_payload(blob)
    return blob.getvalue()


def unpack(blob: Any, key: str) -> MemoryEngine:
    label = f"the blob of {key[:16]}..."
    try:
        view = memoryview(blob).cast("B")
    except TypeError:
        raise ValueError(f"{label} is a {type(blob).__name__}, expected bytes") from None
    header = _parse_header(bytes(view[:_HEADER.size]), view.nbytes, label)
    _check_key(header, key, label)
    data = bytes(view[_HEADER.size:])  # a copy: the caller's buffer may change after this check
    digest = hashlib.sha256(data)
    _check_sha256(header, digest, label)
    return MemoryEngine(data, digest.hexdigest())


class UserEngineCache:
    """The user's BaseEngineCache as the compile's EngineCacheSession uses a cache: load and save
    by key, never raising for the user's faults or bad blobs (a warning, then a build)."""

    prefetch = False  # the user's load runs on the compiling thread, not on a reader thread

    def __init__(self, user: Any) -> None:
        self.user = user
        self.scope = f"{type(user).__qualname__} (compile {next(_COMPILES)})"

    def __repr__(self) -> str:
        return f"custom_engine_cache {type(self.user).__name__}"

    def warn(self, kind: str, text: str, *args: Any) -> None:
        logger.warning(text, *args)
        warn_once(self.scope, kind, text % args, stacklevel=5,
                  category=EngineCacheWarning, per="custom engine cache")

    def try_load_engine(self, key: str) -> Optional[MemoryEngine]:
        try:
            blob = self.user.load(key)
        except Exception as exc:  # noqa: BLE001 - the user's fault never costs the compile
            self.warn("load raised", "%r: load(%s...) raised %s: %s; building the engine", self, key[:16],
                      type(exc).__name__, exc)
            return None
        if blob is None or (isinstance(blob, (bytes, bytearray, memoryview)) and len(blob) == 0):
            return None
        try:
            return unpack(blob, key)
        except ValueError as exc:
            self.warn("bad blob", "%r: ignoring what load(%s...) returned: %s; building the engine (and saving it)",
                      self, key[:16], exc)
            return None

    def try_save(self, key: str, engine: Any) -> bool:
        try:
            self.user.save(key, pack(key, engine))
            return True
        except Exception as exc:  # noqa: BLE001
            self.warn("save raised", "%r: save(%s...) raised %s: %s; engine not stored", self, key[:16],
                      type(exc).__name__, exc)
            return False


def check_custom_cache(cache: Any) -> None:
    """A custom_engine_cache value: None or an object with callable save and load."""
    if cache is not None and not (callable(getattr(cache, "save", None)) and callable(getattr(cache, "load", None))):
        raise ValueError(f"custom_engine_cache must be a torch_tensorrt_rtx.dynamo._engine_cache.BaseEngineCache "
                         f"(save(hash, blob) and load(hash)) or None, got {type(cache).__name__}")
