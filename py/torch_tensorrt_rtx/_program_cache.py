"""The program cache: a compile whose fast key (`_program_key`) was seen before loads the compiled
program from the engine cache's directory instead of exporting, lowering and packaging again.

    programs = ProgramCache.open(module, settings, weight_digests)   # None when it does not apply
    pending = programs.pending_key(module, specs, kwarg_specs, settings)  # None: no fast key, compile normally
    hit = programs.load(pending.result(), recompile)                  # when pending.may_hit: a module, or None
    programs.store(pending.result(), compiled, pending.marker)         # after a normal compile

An entry is an ``EngineCache`` entry (same directory, lock, SHA-256 header, LRU cap and hostile-file
rules) whose payload is ``TRTXPRG1``, the length of a JSON text (the CompileReport, and each engine
record's fields but its engine), that JSON and
the ``.pt2`` archive ``torch_tensorrt_rtx.save`` writes for the compiled module, with every engine
record's engine left empty: the engines are the engine cache's own entries (the report names each
one's key and SHA-256), so they are neither written nor stored twice. Its key is the fast key, the
SHA-256 of a text that no engine key can share (it starts with ``program schema=``). A hit is
``load(...).module()`` of that archive (without torch's user-frame lookup, see ``_no_user_frames``),
each record packed meanwhile on a worker thread from its stored fields and its engine's entry (read
straight into the record and verified in that same pass), its fields checked against the archive's,
with the stored report marked ``program_cache_hit``. When an engine's
entry is gone (evicted) or holds another build, the compile takes the normal path. An entry that cannot be loaded gives an ``EngineCacheWarning`` naming it, is
removed, and the compile takes the normal path (which stores it again).

It applies to ``torch_tensorrt_rtx.compile`` of an ``nn.Module`` with the disk engine cache on (the
same switches: ``reuse_cached_engines`` to load, ``cache_built_engines`` to store,
``$TORCH_TENSORRT_RTX_ENGINE_CACHE=0``), and also ``$TORCH_TENSORRT_RTX_PROGRAM_CACHE=0`` switches it
off alone. Not for ExportedProgram inputs (their graph is already traced: nothing to skip), refittable
or weightless engines (their weights are program buffers that refit at run time), a
``custom_engine_cache``, ``dryrun`` or ``debug`` (whose artifacts come from the pipeline).
"""
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import hashlib
import io
import json
import logging
import os
import struct
import tempfile
import time
import warnings
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, Optional, Tuple

import torch

from torch_tensorrt_rtx.dynamo._engine_cache import EngineCache, cache_switches, disabled_by_environment
from torch_tensorrt_rtx.dynamo._summary import CompileReport, EngineSummary, warn_about

logger = logging.getLogger(__name__)

OFF_SWITCH_ENV = "TORCH_TENSORRT_RTX_PROGRAM_CACHE"  # "0", "off", "false" or "no": no program cache
_MAGIC = b"TRTXPRG1"
_LENGTH = struct.Struct("<Q")
_CHUNK = 8 << 20
_SUSPENDED = contextvars.ContextVar("torch_tensorrt_rtx_program_cache_suspended", default=False)


def _entry_json(report: CompileReport, records: Dict[str, torch.Tensor]) -> bytes:
    """The report and each engine record's fields but its engine ({buffer name: {field: text}}),
    which let the engines be packed while the archive loads."""
    fields = dataclasses.asdict(report)
    precision = report.reduced_precision
    fields["reduced_precision"] = None if precision is None else str(precision).replace("torch.", "")
    return json.dumps({"report": fields, "records": {name: _record_fields(tensor) for name, tensor in records.items()}},
                      sort_keys=True).encode()


def _record_fields(packed: torch.Tensor) -> Dict[str, Optional[str]]:
    from torch_tensorrt_rtx.runtime import EngineRecord

    fields = dataclasses.asdict(dataclasses.replace(EngineRecord.from_tensor(packed), engine=b""))
    del fields["engine"]
    return fields


def _entry_from_json(data: bytes) -> Tuple[CompileReport, Dict[str, Dict[str, Optional[str]]]]:
    entry = json.loads(data)
    records = entry["records"]
    if not isinstance(records, dict) or not all(
            isinstance(r, dict) and all(isinstance(k, str) and isinstance(v, (str, type(None))) for k, v in r.items())
            for r in records.values()):
        raise ValueError("the stored engine records are not {buffer name: {field: text or null}}")
    return _report_from_json(entry["report"]), records


def _report_from_json(fields: Dict[str, Any]) -> CompileReport:
    engines = [EngineSummary(**engine) for engine in fields.pop("engines")]
    precision = fields.pop("reduced_precision")
    dtype = None if precision is None else getattr(torch, precision, None)
    if precision is not None and not isinstance(dtype, torch.dtype):
        raise ValueError(f"the stored report names an unknown precision {precision!r}")
    return CompileReport(engines=engines, reduced_precision=dtype, **fields)


class _Payload:
    """An entry's payload, hashed and then written a chunk at a time from the saved .pt2 file
    (what ``EngineCache.try_save`` takes: ``nbytes``, ``sha256``, ``copy_to``)."""

    def __init__(self, report: bytes, archive_path: str) -> None:
        self.prefix = _MAGIC + _LENGTH.pack(len(report)) + report
        self.archive_path = archive_path
        self.nbytes = len(self.prefix) + os.path.getsize(archive_path)
        digest = hashlib.sha256()
        for chunk in self._chunks():
            digest.update(chunk)
        self.sha256 = digest.hexdigest()

    def _chunks(self):
        yield self.prefix
        with open(self.archive_path, "rb") as archive:
            while True:
                chunk = archive.read(_CHUNK)
                if not chunk:
                    return
                yield chunk

    def copy_to(self, out: Any) -> None:
        for chunk in self._chunks():
            out.write(chunk)


def _read_whole(entry: Any) -> bytearray:
    """An entry's payload (small: the engines are not in it), read into memory."""
    payload = bytearray(entry.nbytes)
    entry.readinto(payload)
    return payload


def _split(payload: bytearray) -> tuple:
    """(report JSON, .pt2 bytes) of an entry's payload; ValueError when it is not a program's."""
    view = memoryview(payload)
    if bytes(view[:len(_MAGIC)]) != _MAGIC:
        raise ValueError(f"its payload is not a compiled program (magic {bytes(view[:len(_MAGIC)])!r})")
    start = len(_MAGIC) + _LENGTH.size
    if len(view) < start:
        raise ValueError("its payload is truncated")
    (length,) = _LENGTH.unpack(view[len(_MAGIC):start])
    if start + length > len(view):
        raise ValueError(f"its report length {length} runs past the payload's end")
    return bytes(view[start:start + length]), view[start + length:]


class ProgramCache:
    """The program cache of one compile; see the module docstring."""

    def __init__(self, cache: EngineCache, reuse: bool, store: bool, weight_digests: Any) -> None:
        self.cache, self.reuse, self.store_built = cache, reuse, store
        self.weight_digests = weight_digests
        self.seconds: Dict[str, float] = {}

    @classmethod
    def open(cls, module: Any, settings: Any, weight_digests: Any) -> Optional["ProgramCache"]:
        from torch_tensorrt_rtx.dynamo.conversion._engine_builder import refittable

        if _SUSPENDED.get() or disabled_by_environment(name=OFF_SWITCH_ENV):
            return None
        cache, reuse, store = cache_switches(settings)
        if not isinstance(cache, EngineCache) or weight_digests is None or not isinstance(module, torch.nn.Module):
            return None
        if refittable(settings) or settings.dryrun or settings.debug:
            return None
        return cls(cache, reuse, store, weight_digests)

    def pending_key(self, module: torch.nn.Module, specs: Any, kwarg_specs: Any, settings: Any) -> Optional[Any]:
        """The fast key of this compile, traced now or during the build (_program_key_pending.py);
        None when there is none or none is needed."""
        from torch_tensorrt_rtx._program_key_pending import PendingKey

        try:
            return PendingKey.open(self.cache, self.reuse, self.store_built, module, specs, kwarg_specs, settings,
                                   self.weight_digests)
        except Exception:  # noqa: BLE001 - a fault of the cache must never cost the compile
            logger.warning("program cache: no fast key for %s; compiling it", type(module).__name__, exc_info=True)
        return None

    def key_seconds(self, pending: Any) -> None:
        """The fast key's cost to the compile (its trace, when it ran beside the build, not counted)."""
        self.seconds["program cache key"] = pending.seconds

    def load(self, key: str, recompile: Callable[[], Any]) -> Optional[torch.nn.Module]:
        """The compiled module stored under `key`, or None (then compile). `recompile()` compiles
        the module normally: `verify` calls it to get the engines' networks."""
        if not self.reuse:
            return None
        start = time.perf_counter()
        payload = self.cache.try_read_engine(key, _read_whole)  # read and verified in one pass
        if payload is None:
            return None
        try:
            entry_json, archive = _split(payload)
            report, records = _entry_from_json(entry_json)
            with _EngineReader(self.cache, report, records) as engines:  # verified on a worker thread meanwhile
                module = _load_archive(archive)
                engines.put_into(module)
        except _EngineGone as exc:  # the entry is fine; the compile rebuilds the engine and stores it again
            logger.info("program cache: %s; compiling the module", exc)
            return None
        except Exception as exc:  # noqa: BLE001 - any failure: drop the entry, compile normally
            self.cache.warn("unloadable program", "program cache: dropping %s: %s: %s; compiling the module",
                            self.cache.entry_path(key), type(exc).__name__, exc)
            self.cache.try_remove(key)
            return None
        seconds = time.perf_counter() - start
        _as_hit(report, self.seconds.get("program cache key", 0.0), seconds)
        module.compile_report = report
        from torch_tensorrt_rtx.dynamo.verification import engine_sources

        setattr(module, engine_sources.ON_DEMAND_ATTR, recompile)
        logger.info("program cache: reused %s from %r in %.2f s\n%s", key[:16], self.cache, seconds, report.format())
        warn_about(report, stacklevel=3)
        return module

    def store(self, key: str, compiled: torch.nn.Module, marker: str) -> None:
        """Save `compiled` (as ``torch_tensorrt_rtx.save`` does, each engine left out: it is in the
        engine cache already) into the entry of `key`, with the `marker` entry that tells a later
        compile to look for it (_program_key_pending.py)."""
        if not self.store_built:
            return
        from torch_tensorrt_rtx._compile import save

        start = time.perf_counter()
        stored = False
        report = compiled.compile_report
        records = _engine_buffers(compiled, report)
        if records is None:
            logger.info("program cache: not stored (an engine has no engine cache entry)")
            return
        try:
            with tempfile.TemporaryDirectory(prefix="trtx-program-") as scratch, warnings.catch_warnings(), \
                    _without_engines(compiled, records):
                warnings.simplefilter("ignore")  # the user did not ask for this save: its notices are not theirs
                path = os.path.join(scratch, "program.pt2")
                save(compiled, path)
                payload = _Payload(_entry_json(report, records), path)
                stored = self.cache.try_save(key, payload)
                if stored:
                    from torch_tensorrt_rtx._program_key_pending import MARKER_PAYLOAD

                    self.cache.try_save(marker, MARKER_PAYLOAD)
        except Exception as exc:  # noqa: BLE001 - the compile succeeded; only the entry is lost
            logger.warning("program cache: could not store the compiled program (%s: %s)", type(exc).__name__, exc)
        seconds = time.perf_counter() - start
        report.phase_seconds["program cache store"] = seconds
        if stored:
            logger.info("program cache: stored %s (%d bytes) in %r in %.2f s", key[:16], payload.nbytes, self.cache,
                        seconds)


def _engine_buffers(compiled: torch.nn.Module, report: CompileReport) -> Optional[Dict[str, torch.Tensor]]:
    """{buffer name: packed record} of every engine, or None when one has no engine cache key."""
    if any(engine.engine_cache_key is None for engine in report.engines):
        return None
    return {f"{engine.name}_engine": compiled.get_buffer(f"{engine.name}_engine") for engine in report.engines}


@contextlib.contextmanager
def _without_engines(module: torch.nn.Module, records: Dict[str, torch.Tensor]):
    """Each record buffer of `module` replaced by the same record with an empty engine, meanwhile."""
    from torch_tensorrt_rtx.runtime import EngineRecord

    try:
        for name, tensor in records.items():
            empty = dataclasses.replace(EngineRecord.from_tensor(tensor), engine=b"")
            setattr(module, name, empty.to_tensor())
        yield
    finally:
        for name, tensor in records.items():
            setattr(module, name, tensor)


class _EngineGone(Exception):
    """An engine of the stored program is no longer in the engine cache (or is another build)."""


class _EngineReader:
    """Packs the stored program's engine records on a worker thread while the archive loads: each
    record is built from its stored fields, the engine read from its engine cache entry straight
    into the packed record and verified in the same pass (hashlib and file reads release the GIL).
    `put_into` then checks each record's fields against the loaded program's empty record and
    puts the packed record in its place."""

    def __init__(self, cache: EngineCache, report: CompileReport, records: Dict[str, Dict[str, Optional[str]]]) -> None:
        self.cache, self.report, self.records = cache, report, records
        self.reader = ThreadPoolExecutor(1, thread_name_prefix="trtx-program-cache")
        self.packed = {e.name: self.reader.submit(self._pack, e) for e in report.engines}

    def __enter__(self) -> "_EngineReader":
        return self

    def __exit__(self, *exc: Any) -> None:
        for packing in self.packed.values():  # not needed any more (a failure): skip those not started
            packing.cancel()
        self.reader.shutdown(wait=True)

    def _pack(self, engine: EngineSummary) -> Optional[torch.Tensor]:
        from torch_tensorrt_rtx.runtime import EngineRecord

        fields = self.records.get(f"{engine.name}_engine")
        if fields is None:
            raise ValueError(f"the entry has no record fields for engine {engine.name}")

        def pack(found: Any) -> torch.Tensor:
            if found.sha256 != engine.sha256:
                raise _EngineGone(f"engine {engine.name}'s entry holds another build (SHA-256 "
                                  f"{found.sha256[:12]}, the program was compiled with {engine.sha256[:12]})")
            return EngineRecord(**fields, engine=found).to_tensor()  # read and verified into the record

        return self.cache.try_read_engine(engine.engine_cache_key, pack)

    def put_into(self, module: torch.nn.Module) -> None:
        for engine in self.report.engines:
            name = f"{engine.name}_engine"
            packed = self.packed.pop(engine.name).result()
            if packed is None:
                raise _EngineGone(f"engine {engine.name} ({engine.engine_cache_key[:16]}...) is not in {self.cache!r} "
                                  "(or its entry is unreadable)")
            if _record_fields(module.get_buffer(name)) != self.records[name]:
                raise ValueError(f"the stored fields of engine record {name} differ from the archive's")
            setattr(module, name, packed)


def _load_archive(archive: memoryview) -> torch.nn.Module:
    from torch_tensorrt_rtx._loaded_program import as_loaded_program
    from torch_tensorrt_rtx.dynamo import _engine_op  # noqa: F401  (registers the op before loading)

    from torch_tensorrt_rtx.dynamo._no_user_frames import no_user_frame_lookups

    with no_user_frame_lookups():  # torch's debugging aid would import dynamo and inductor (~0.4 s)
        program = torch.export.load(io.BytesIO(archive))
    return as_loaded_program(program).module()


def _as_hit(report: CompileReport, key_seconds: float, load_seconds: float) -> None:
    """The stored report as this compile's: every engine taken from the cache, this compile's times."""
    report.program_cache_hit = True
    report.engine_cache_hits = len(report.engines)
    for engine in report.engines:
        engine.build_seconds = 0.0
    report.phase_seconds = {"program cache key": key_seconds, "program cache load": load_seconds}
    report.total_seconds = key_seconds + load_seconds


def recompile_later(module: torch.nn.Module, compile_normally: Callable[[torch.nn.Module], Any]
                    ) -> Callable[[], Dict[str, Any]]:
    """What `verify` calls on a hit: the engine sources of a normal compile of `module` (held
    weakly: {} once it is gone), whose engines come from the engine cache with the same bytes."""
    ref = weakref.ref(module)

    def sources() -> Dict[str, Any]:
        original = ref()
        if original is None:
            return {}
        logger.info("verify: compiling %s again for its engines' networks (the program came from the program "
                    "cache)", type(original).__name__)
        suspended = _SUSPENDED.set(True)  # a normal compile, not this same hit again
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the compile's notices were given at the hit
                return getattr(compile_normally(original), "_engine_sources", {})
        finally:
            _SUSPENDED.reset(suspended)

    return sources
