"""The facts both runtimes share, parsed from the text files beside this module.

- ``engine_record_layout.txt``: the engine record (ABI version, pack magic, separator,
  sentinel, fields in order).
- ``runtime_strategies.txt``: the valid names of each runtime strategy.
- ``cache_protocol.txt``: the runtime cache file protocol's constants (lock suffix,
  timeout, poll interval, default location).
- ``engine_op.txt``: the name and schema of the engine op saved programs call.

The C++ runtime generates its headers from the same files at build time
(core/definitions/gen_definitions_headers.py imports this module by path), so this module
uses the standard library only and must stay importable on its own.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, NamedTuple, Tuple

LAYOUT_FILE = Path(__file__).with_name("engine_record_layout.txt")
STRATEGIES_FILE = Path(__file__).with_name("runtime_strategies.txt")
CACHE_PROTOCOL_FILE = Path(__file__).with_name("cache_protocol.txt")
ENGINE_OP_FILE = Path(__file__).with_name("engine_op.txt")

# The only field that holds binary data; every other field is UTF-8 text.
ENGINE_FIELD = "ENGINE"
ABI_FIELD = "ABI_VERSION"
PACK_MAGIC_LENGTH = 8


class DefinitionError(ValueError):
    """A definitions file that does not follow its syntax."""


class Layout(NamedTuple):
    abi_version: int
    pack_magic: bytes
    separator: str
    sentinel: str
    fields: Tuple[str, ...]
    descriptions: Tuple[str, ...]

    def index(self, field: str) -> int:
        return self.fields.index(field)

    @property
    def num_fields(self) -> int:
        return len(self.fields)


class Strategy(NamedTuple):
    setting: str  # the keyword, e.g. "kernel_strategy"
    trt_enum: str  # the tensorrt_rtx enum class, e.g. "CudaGraphStrategy"
    names: Tuple[str, ...]  # valid names; the first is the default


class CacheProtocol(NamedTuple):
    lock_suffix: str  # the lock file of cache P is P + lock_suffix
    lock_timeout_ms: int
    lock_poll_interval_ms: int
    default_cache_dir: str  # under $XDG_CACHE_HOME or ~/.cache (%LOCALAPPDATA% on Windows)
    default_cache_file: str
    temp_marker: str  # temp files are "<cache name><marker><random>"
    container_magic: str  # 8 ASCII bytes opening a cache container
    container_version: int
    max_entries_count: int
    default_max_bytes: int  # the size cap, unless max_bytes_env says otherwise
    max_bytes_env: str
    touch_interval_s: int  # an unchanged entry is rewritten to refresh its last use this late


_NUMBER_SUFFIXES = ("_ms", "_s", "_bytes", "_count", "_version")


class EngineOp(NamedTuple):
    namespace: str  # e.g. "tensorrt_rtx"
    schema: str  # torch schema without the namespace, e.g. "execute_engine(Tensor[] ...) -> Tensor[]"

    @property
    def name(self) -> str:  # "execute_engine"
        return self.schema.partition("(")[0]

    @property
    def qualified_name(self) -> str:  # "tensorrt_rtx::execute_engine"
        return f"{self.namespace}::{self.name}"


def _directives(text: str):
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line and not line.startswith("#"):
            key, _, rest = line.partition(" ")
            yield lineno, key, rest.strip()


def parse_layout(text: str, source: str = "<layout>") -> Layout:
    """Parse ``abi_version N``, ``pack_magic T``, ``separator T``, ``sentinel T``, ``field NAME desc``."""
    scalars: Dict[str, str] = {}
    fields: list = []
    descriptions: list = []
    for lineno, key, rest in _directives(text):
        if key in ("abi_version", "pack_magic", "separator", "sentinel"):
            scalars[key] = rest
        elif key == "field":
            name, _, desc = rest.partition(" ")
            if not name or name in fields:
                raise DefinitionError(f"{source}:{lineno}: bad or duplicate field {name!r}")
            fields.append(name)
            descriptions.append(desc.strip())
        else:
            raise DefinitionError(f"{source}:{lineno}: unknown directive {key!r}")
    missing = [k for k in ("abi_version", "pack_magic", "separator", "sentinel") if not scalars.get(k)]
    if missing or not fields:
        raise DefinitionError(
            f"{source}: needs abi_version, pack_magic, separator, sentinel and at least one field"
            f" (missing: {', '.join(missing) or 'fields'})")
    magic = scalars["pack_magic"].encode("ascii")
    if len(magic) != PACK_MAGIC_LENGTH:
        raise DefinitionError(f"{source}: pack_magic must be {PACK_MAGIC_LENGTH} ASCII bytes, found {magic!r}")
    for required in (ABI_FIELD, ENGINE_FIELD):
        if required not in fields:
            raise DefinitionError(f"{source}: missing required field {required}")
    return Layout(int(scalars["abi_version"]), magic, scalars["separator"], scalars["sentinel"],
                  tuple(fields), tuple(descriptions))


def parse_strategies(text: str, source: str = "<strategies>") -> Dict[str, Strategy]:
    """Parse ``strategy SETTING TENSORRT_ENUM NAME...`` lines, keyed by setting."""
    strategies: Dict[str, Strategy] = {}
    for lineno, key, rest in _directives(text):
        words = rest.split()
        if key != "strategy" or len(words) < 3:
            raise DefinitionError(
                f"{source}:{lineno}: expected 'strategy SETTING TENSORRT_ENUM NAME...', found {key} {rest}")
        setting, trt_enum, names = words[0], words[1], tuple(words[2:])
        if setting in strategies or len(set(names)) != len(names):
            raise DefinitionError(f"{source}:{lineno}: duplicate strategy or name in {setting!r}")
        strategies[setting] = Strategy(setting, trt_enum, names)
    if not strategies:
        raise DefinitionError(f"{source}: defines no strategy")
    return strategies


def _entries_once(text: str, source: str, fields: Tuple[str, ...], expected: str) -> Dict[str, str]:
    """``NAME VALUE`` lines, every name one of ``fields`` and each given exactly once."""
    values: Dict[str, str] = {}
    for lineno, key, rest in _directives(text):
        if key not in fields or not rest or key in values:
            raise DefinitionError(f"{source}:{lineno}: unknown, empty or repeated entry {key!r}; "
                                  f"expected {expected}")
        values[key] = rest
    missing = [name for name in fields if name not in values]
    if missing:
        raise DefinitionError(f"{source}: missing {', '.join(missing)}")
    return values


def parse_cache_protocol(text: str, source: str = "<cache protocol>") -> CacheProtocol:
    """Parse ``NAME VALUE`` lines, one for each CacheProtocol field."""
    values = _entries_once(text, source, CacheProtocol._fields,
                           f"each of {', '.join(CacheProtocol._fields)} once")
    try:
        protocol = CacheProtocol(**{name: int(value) if name.endswith(_NUMBER_SUFFIXES) else value
                                    for name, value in values.items()})
    except ValueError as exc:
        raise DefinitionError(f"{source}: the entries named *{'/*'.join(_NUMBER_SUFFIXES)} must be "
                              f"whole numbers ({exc})") from None
    if len(protocol.container_magic.encode("ascii")) != PACK_MAGIC_LENGTH:
        raise DefinitionError(f"{source}: container_magic must be {PACK_MAGIC_LENGTH} ASCII bytes, "
                              f"found {protocol.container_magic!r}")
    return protocol


def parse_engine_op(text: str, source: str = "<engine op>") -> EngineOp:
    """Parse ``namespace NAME`` and ``schema NAME(ARGS) -> RETURNS`` (each exactly once)."""
    values = _entries_once(text, source, EngineOp._fields,
                           "'namespace NAME' and 'schema NAME(ARGS) -> RETURNS' once each")
    op = EngineOp(**values)
    if not op.namespace.isidentifier() or not op.name.isidentifier() or "->" not in op.schema:
        raise DefinitionError(f"{source}: expected an identifier namespace and a schema "
                              f"'NAME(ARGS) -> RETURNS', found {op.namespace!r} / {op.schema!r}")
    return op


LAYOUT = parse_layout(LAYOUT_FILE.read_text(encoding="utf-8"), str(LAYOUT_FILE))
STRATEGIES = parse_strategies(STRATEGIES_FILE.read_text(encoding="utf-8"), str(STRATEGIES_FILE))
CACHE_PROTOCOL = parse_cache_protocol(CACHE_PROTOCOL_FILE.read_text(encoding="utf-8"), str(CACHE_PROTOCOL_FILE))
ENGINE_OP = parse_engine_op(ENGINE_OP_FILE.read_text(encoding="utf-8"), str(ENGINE_OP_FILE))
