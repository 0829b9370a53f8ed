"""The engine cache's program level: the decomposed graph of an exported program, so a recompile
skips ``run_decompositions`` (a whole retrace, the largest share of a compile once the engines
come from the cache).

    decompose = DecompositionCache.for_settings(settings)      # None when the cache is off
    program = decompose(program, table)                        # instead of program.run_decompositions(table)

- Key: SHA-256 of torch.export's own serialization of the program *before* decompositions (its
  graph, signature, range constraints and calling convention; no weights, which decompositions
  never read), the torch.fx symbolic-shape configuration, and the versions of
  ``_engine_cache_key.versions`` (torch, this package's sources, which hold the decomposition
  table, ...). A program torch cannot serialize is decomposed as usual, not cached.
- Value: the decomposed program serialized the same way, without weights, plus the constants
  decompositions added (``torch.load(weights_only=True)``, never a pickle of code). On a hit the
  program is deserialized over the live program's weights and constants.
- Stored in the engine cache's directory, under its lock, size cap, LRU and checks; the same
  switches (``cache_built_engines``, ``reuse_cached_engines``, the environment's off switch).
  The engines themselves are still found by their own keys (weights included) afterwards.
"""
from __future__ import annotations

import hashlib
import io
import logging
import struct
from typing import Any, Callable, Optional

import torch

from torch_tensorrt_rtx.dynamo._engine_cache import EngineCache, cache_switches

logger = logging.getLogger(__name__)

_LENGTH = struct.Struct("<Q")


def _serialized_graph(program: torch.export.ExportedProgram) -> bytes:
    from torch._export.serde.serialize import serialize

    return serialize(program, serialize_state_dict=False, serialize_constants=False,
                     serialize_example_inputs=False).exported_program


def _program_key(program: torch.export.ExportedProgram) -> str:
    from torch_tensorrt_rtx.dynamo._engine_cache_key import versions

    shape_config = sorted(torch.fx.experimental._config.get_config_copy().items())
    digest = hashlib.sha256(f"decomposed program|{versions()}|{shape_config!r}|".encode())
    digest.update(_serialized_graph(program))
    return digest.hexdigest()


def _pack(decomposed: torch.export.ExportedProgram, original: torch.export.ExportedProgram) -> bytes:
    graph = _serialized_graph(decomposed)
    added = {name: value for name, value in decomposed.constants.items() if name not in original.constants}
    if any(not isinstance(v, torch.Tensor) for v in added.values()):
        raise TypeError("decompositions added a constant that is not a tensor")
    buffer = io.BytesIO()
    torch.save({name: value.detach().cpu() for name, value in added.items()}, buffer)
    return _LENGTH.pack(len(graph)) + graph + buffer.getvalue()


def _unpack(data: bytearray, original: torch.export.ExportedProgram) -> torch.export.ExportedProgram:
    from torch._export.serde import schema
    from torch._export.serde.serialize import ExportedProgramDeserializer, _bytes_to_dataclass

    (length,) = _LENGTH.unpack_from(data)
    graph = bytes(data[_LENGTH.size:_LENGTH.size + length])
    added = torch.load(io.BytesIO(bytes(data[_LENGTH.size + length:])), weights_only=True)
    constants = {**original.constants, **added}
    serialized = _bytes_to_dataclass(schema.ExportedProgram, graph)
    program = ExportedProgramDeserializer().deserialize(serialized, dict(original.state_dict), constants,
                                                        original.example_inputs)
    missing = [s.target for s in program.graph_signature.input_specs
               if s.target is not None and s.target not in program.state_dict and s.target not in constants]
    if missing:
        raise ValueError(f"the cached program reads state the exported program lacks: {missing[:3]}")
    return program


class DecompositionCache:
    """``run_decompositions`` through the cache; called as ``decompose(program, table)``."""

    def __init__(self, cache: EngineCache, reuse: bool, store: bool) -> None:
        self.cache, self.reuse, self.store = cache, reuse, store
        self.hit = False

    @classmethod
    def for_settings(cls, settings: Any) -> Optional["DecompositionCache"]:
        cache, reuse, store = cache_switches(settings)
        return cls(cache, reuse, store) if cache is not None else None

    def __call__(self, program: torch.export.ExportedProgram, table: Any) -> torch.export.ExportedProgram:
        try:
            key = _program_key(program)
        except Exception as exc:  # noqa: BLE001 - torch cannot serialize this program: decompose as usual
            logger.info("engine cache: program not cacheable (%s: %s)", type(exc).__name__, exc)
            return program.run_decompositions(table)
        if self.reuse:
            data = self.cache.try_load(key)
            if data is not None:
                try:
                    decomposed = _unpack(data, program)
                    self.hit = True
                    logger.info("engine cache: decomposed program %s reused", key[:16])
                    return decomposed
                except Exception as exc:  # noqa: BLE001 - an unusable entry means decomposing again
                    self.cache._warn("unusable program", "engine cache: cannot use the decomposed program %s "
                                     "(%s: %s); decomposing again", key[:16], type(exc).__name__, exc)
        decomposed = program.run_decompositions(table)
        if self.store:
            try:
                packed = _pack(decomposed, program)
            except Exception as exc:  # noqa: BLE001 - not serializable: just not cached
                logger.info("engine cache: decomposed program not cacheable (%s: %s)", type(exc).__name__, exc)
                return decomposed
            self.cache.try_save(key, packed)
        return decomposed


def decompose_with(settings: Any) -> Callable[[Any, Any], Any]:
    """What export_aten calls instead of ``run_decompositions``: through the cache when it is on."""
    cache = DecompositionCache.for_settings(settings)
    return cache if cache is not None else (lambda program, table: program.run_decompositions(table))
