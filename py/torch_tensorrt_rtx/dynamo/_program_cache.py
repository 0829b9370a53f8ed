"""The engine cache's program level: the decomposed graph of an exported program, so a recompile
skips ``run_decompositions`` (a whole retrace, the largest share of a compile once the engines
come from the cache).

    decompose = DecompositionCache.for_settings(settings)      # None when the cache is off
    program = decompose(program, table)                        # instead of program.run_decompositions(table)

- Key: the program *before* decompositions in the canonical form of ``_engine_cache_key`` (its
  graph with nodes by position, which state each input is, the outputs, the calling convention,
  the symbols' ranges; no weight values, which decompositions never read), the torch.fx
  symbolic-shape configuration, and the versions of ``_engine_cache_key.versions`` (torch, this
  package's sources, which hold the decomposition table, ...). torch.export's own serializer is
  not used for the key: it costs about as much as a third of a decomposition. A program without
  a canonical form, one that calls a custom op (whose decomposition may be the user's changing
  Python), or one torch cannot serialize, is decomposed as usual, not cached.
- Value: the decomposed program serialized the same way, without weights, plus the constants
  decompositions added (``torch.load(weights_only=True)``, never a pickle of code). On a hit the
  program is deserialized over the live program's weights and constants.
- Stored in the engine cache's directory, under its lock, size cap, LRU and checks; the same
  switches (``cache_built_engines``, ``reuse_cached_engines``, the environment's off switch).
  The engines themselves are still found by their own keys (weights included) afterwards.
- Only for ``torch_tensorrt_rtx.compile``: the torch.compile backend decides which dims to
  specialize from the guards a decomposition records, which a deserialized program lacks.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import io
import json
import logging
import struct
import types
import typing
from typing import Annotated, Any, Callable, List, Optional, Tuple

import torch

from torch_tensorrt_rtx.dynamo._engine_cache import EngineCache, cache_switches

logger = logging.getLogger(__name__)

_LENGTH = struct.Struct("<Q")
# Ops whose decompositions come with torch (its version is in the key). A custom op's may be the
# user's own Python, which can change under the same name: such programs are not cached.
_TORCH_NAMESPACES = ("aten", "prims")


def _serialized_graph(program: torch.export.ExportedProgram) -> bytes:
    from torch._export.serde.serialize import serialize

    return serialize(program, serialize_state_dict=False, serialize_constants=False,
                     serialize_example_inputs=False).exported_program


def _program_key(program: torch.export.ExportedProgram) -> str:
    """The canonical graph of the program (nodes by position, ops, arguments, traced values), which
    state each input is (kind and name, in order), what the outputs are, the calling convention
    of every module call, the size symbols' ranges, the symbolic-shape configuration, versions."""
    from torch_tensorrt_rtx.dynamo._engine_cache_key import Uncacheable, canonical_graph, versions

    signature = program.graph_signature
    inputs = [(spec.kind.name, spec.target, getattr(spec, "persistent", None)) for spec in signature.input_specs]
    outputs = [(spec.kind.name, spec.target) for spec in signature.output_specs]
    calls = [(entry.fqn, str(entry.signature.in_spec) if entry.signature else None,
              str(entry.signature.out_spec) if entry.signature else None) for entry in program.module_call_graph]
    ranges = sorted((str(symbol), str(r.lower), str(r.upper)) for symbol, r in program.range_constraints.items())
    shape_config = sorted(torch.fx.experimental._config.get_config_copy().items())
    for node in program.graph.nodes:
        namespace = getattr(node.target, "namespace", "aten") if node.op == "call_function" else "aten"
        if namespace not in _TORCH_NAMESPACES:  # its decomposition is user code the key cannot see
            raise Uncacheable(f"a call of {node.target}, an op of namespace {namespace!r}")
    graph, _ = canonical_graph(program.graph_module)
    text = "\n".join(["decomposed program", versions(), repr(shape_config), repr(inputs), repr(outputs),
                      repr(calls), repr(ranges), graph])
    return hashlib.sha256(text.encode()).hexdigest()


def _pack(decomposed: torch.export.ExportedProgram, original: torch.export.ExportedProgram) -> bytes:
    graph = _serialized_graph(decomposed)
    added = {name: value for name, value in decomposed.constants.items() if name not in original.constants}
    if any(not isinstance(v, torch.Tensor) for v in added.values()):
        raise TypeError("decompositions added a constant that is not a tensor")
    buffer = io.BytesIO()
    torch.save({name: value.detach().cpu() for name, value in added.items()}, buffer)
    return _LENGTH.pack(len(graph)) + graph + buffer.getvalue()


@functools.lru_cache(maxsize=None)
def _schema_type(cls: Any) -> Any:
    """A type annotation of torch.export's schema, with names and forward references resolved."""
    from torch._export.serde import schema

    if isinstance(cls, str):
        return getattr(schema, cls, cls)
    if isinstance(cls, typing.ForwardRef):
        return _schema_type(cls.__forward_arg__)
    return cls


@functools.lru_cache(maxsize=None)
def _field_types(cls: type) -> Tuple[Tuple[str, Any], ...]:
    from torch._export.serde import schema

    hints = typing.get_type_hints(cls, globalns=vars(schema))
    return tuple((f.name, hints[f.name]) for f in dataclasses.fields(cls))


def schema_from_json(cls: Any, data: Any) -> Any:
    """torch.export's schema objects from parsed JSON, as torch's ``_dict_to_dataclass`` builds them,
    but each annotation is inspected once, into a reader (torch inspects it again for every value,
    which made reading a cached program cost as much as a third of decomposing it)."""
    return _reader(cls)(data)


def _identity(data: Any) -> Any:
    return data


@functools.lru_cache(maxsize=None)
def _reader(annotation: Any) -> Callable[[Any], Any]:
    """A function from JSON data to the value of `annotation`. Readers of nested types are looked
    up on first use, so recursive schema types (a graph inside an argument) do not recurse here."""
    from torch._export.serde.union import _Union

    cls = _schema_type(annotation)
    origin, args = typing.get_origin(cls), typing.get_args(cls)
    if origin is Annotated:
        return _reader(args[0])
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        (inner,) = [arg for arg in args if arg is not type(None)]
        return lambda data: None if data is None else _reader(inner)(data)
    if isinstance(cls, type) and issubclass(cls, _Union):
        fields = dict(_field_types(cls))
        return lambda data: cls.create(**{name: _reader(fields[name])(value) for name, value in data.items()})
    if dataclasses.is_dataclass(cls):
        readers: List[Tuple[str, Callable[[Any], Any]]] = []

        def read_dataclass(data: Any) -> Any:
            if not readers:
                readers.extend((name, _reader(hint)) for name, hint in _field_types(cls))
            return cls(**{name: read(data[name]) for name, read in readers if name in data})
        return read_dataclass
    if origin is list:
        return lambda data: [_reader(args[0])(item) for item in data] if data else data
    if origin is dict:
        return lambda data: {key: _reader(args[1])(value) for key, value in data.items()}
    if cls is float:
        return float
    return _identity


class _SympyParsingOnce:
    """The ``sympy`` module as torch's deserializer sees it while a cached program is read, except
    that ``sympify`` of a text parses each (text, names in scope) once. The deserializer parses a
    size expression's text for every tensor that has it (``parse_expr``: about 45% of reading
    GPT-2's graph); sympy expressions are immutable, so the same result can be handed out again."""

    def __init__(self, real: Any) -> None:
        self._real, self._parsed = real, {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def sympify(self, value: Any, *args: Any, locals: Any = None, **kwargs: Any) -> Any:  # noqa: A002
        if not isinstance(value, str) or args or kwargs or not isinstance(locals, dict):
            return self._real.sympify(value, *args, locals=locals, **kwargs)
        key = (value, tuple(sorted(locals.items(), key=lambda item: item[0])))
        parsed = self._parsed.get(key)
        if parsed is None:
            parsed = self._parsed[key] = self._real.sympify(value, locals=locals)
        return parsed


@contextlib.contextmanager
def _parsing_sizes_once():
    from torch._export.serde import serialize as serde

    real = getattr(serde, "sympy", None)
    if real is None or not hasattr(real, "sympify"):  # another torch: read as it reads
        yield
        return
    serde.sympy = _SympyParsingOnce(real)
    try:
        yield
    finally:
        serde.sympy = real


def _unpack(data: bytearray, original: torch.export.ExportedProgram) -> torch.export.ExportedProgram:
    from torch._export.serde import schema
    from torch._export.serde.serialize import ExportedProgramDeserializer

    (length,) = _LENGTH.unpack_from(data)
    graph = bytes(data[_LENGTH.size:_LENGTH.size + length])
    added = torch.load(io.BytesIO(bytes(data[_LENGTH.size + length:])), weights_only=True)
    constants = {**original.constants, **added}
    serialized = schema_from_json(schema.ExportedProgram, json.loads(graph))
    with _parsing_sizes_once():
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
                    self.cache.warn("unusable program", "engine cache: cannot use the decomposed program %s "
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
