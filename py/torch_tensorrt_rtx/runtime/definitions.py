"""The facts both runtimes share, read from ``definitions.toml`` beside this module.

- ``LAYOUT``: the engine record (ABI version, pack magic, separator, sentinel, fields, and the
  previous version's fields, which decoders still read).
- ``STRATEGIES``: the valid names of each runtime strategy, keyed by setting.
- ``CACHE_PROTOCOL``: the runtime cache file protocol's constants.
- ``ENGINE_OP``: the name and schema of the engine op saved programs call.

The file is TOML, read with the standard library (``tomllib``, Python >= 3.11; its origin
``tomli`` on 3.10); this module only checks it: every table has exactly its keys, with values
of the right type. The C++ runtime generates its headers from the same file at build time
(core/definitions/gen_definitions_headers.py imports this module by path), so this module
imports nothing else and must stay importable on its own.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Dict, Mapping, NamedTuple, Tuple

if sys.version_info >= (3, 11):
    import tomllib
else:  # tomllib's origin, a dependency on Python 3.10 only (Bazel's python3 on Debian 12 is 3.11)
    try:
        import tomli as tomllib
    except ModuleNotFoundError:
        raise ImportError(f"{sys.executable} (Python {sys.version.split()[0]}) cannot read "
                          f"definitions.toml: expected Python >= 3.11 or the tomli package") from None

DEFINITIONS_FILE = Path(__file__).with_name("definitions.toml")

# The only field that holds binary data; every other field is UTF-8 text.
ENGINE_FIELD = "ENGINE"
ABI_FIELD = "ABI_VERSION"
PACK_MAGIC_LENGTH = 8


class DefinitionError(ValueError):
    """A definitions file whose tables do not have the keys and types expected."""


class Layout(NamedTuple):
    abi_version: int
    pack_magic: bytes
    separator: str
    sentinel: str
    fields: Tuple[str, ...]
    descriptions: Tuple[str, ...]
    portable: str  # COMPUTE_CAPABILITIES of a portable engine
    previous_abi_version: int  # the layout before this one, still decoded
    previous_fields: Tuple[str, ...]

    def index(self, field: str) -> int:
        return self.fields.index(field)

    @property
    def num_fields(self) -> int:
        return len(self.fields)


class Strategy(NamedTuple):
    setting: str  # the keyword, e.g. "kernel_strategy"
    trt_enum: str  # the tensorrt_rtx enum class, e.g. "CudaGraphStrategy"
    names: Tuple[str, ...]  # valid names; the first is the default
    trt_setter: str  # IRuntimeConfig property, or method when it starts with "set_"


class CacheProtocol(NamedTuple):
    lock_suffix: str  # the lock file of cache P is P + lock_suffix
    lock_timeout_ms: int
    lock_poll_interval_ms: int
    default_cache_dir: str  # under $XDG_CACHE_HOME or ~/.cache (%LOCALAPPDATA% on Windows)
    default_cache_file: str
    temp_marker: str  # temp files are "<cache name><marker><random>"
    container_magic: str  # 8 ASCII bytes opening a cache container
    container_version: int  # the version a save writes
    oldest_container_version: int  # the oldest version still read (and migrated by a save)
    max_entries_count: int
    default_max_bytes: int  # the size cap, unless max_bytes_env says otherwise
    max_bytes_env: str
    touch_interval_s: int  # an unchanged entry is rewritten to refresh its last use this late


class EngineOp(NamedTuple):
    namespace: str  # e.g. "tensorrt_rtx"
    schema: str  # torch schema without the namespace, e.g. "execute_engine(Tensor[] ...) -> Tensor[]"

    @property
    def name(self) -> str:  # "execute_engine"
        return self.schema.partition("(")[0]

    @property
    def qualified_name(self) -> str:  # "tensorrt_rtx::execute_engine"
        return f"{self.namespace}::{self.name}"


class Definitions(NamedTuple):
    layout: Layout
    strategies: Dict[str, Strategy]
    cache_protocol: CacheProtocol
    engine_op: EngineOp


# The keys of each table and their types (bool is not accepted where int is expected).
_LAYOUT_KEYS = {"abi_version": int, "pack_magic": str, "separator": str, "sentinel": str, "portable": str,
                "fields": list, "previous_abi_version": int, "previous_fields": list}
_STRATEGY_KEYS = {"trt_enum": str, "names": list, "trt_setter": str}
_ROOT_KEYS = {"engine_record": dict, "strategies": dict, "cache_protocol": dict, "engine_op": dict}
_TOML_TYPE_NAMES = {dict: "table", list: "array", str: "string", int: "integer"}


def _table(table: Any, keys: Mapping[str, type], where: str) -> Dict[str, Any]:
    """``table`` with exactly ``keys``, each value of its type, else DefinitionError."""
    if not isinstance(table, dict):
        raise DefinitionError(f"{where}: expected a table, found {table!r}")
    unknown, missing = sorted(set(table) - set(keys)), [k for k in keys if k not in table]
    if unknown or missing:
        raise DefinitionError(f"{where}: unknown keys {unknown}, missing keys {missing}; "
                              f"expected exactly {', '.join(keys)}")
    for key, typ in keys.items():
        value = table[key]
        if not isinstance(value, typ) or isinstance(value, bool) or value in ("", [], {}):
            raise DefinitionError(f"{where}.{key}: expected a non-empty {_TOML_TYPE_NAMES[typ]}, "
                                  f"found {value!r}")
    return table


def _names(values: list, where: str) -> Tuple[str, ...]:
    if not all(isinstance(v, str) and v.isidentifier() for v in values) or len(set(values)) != len(values):
        raise DefinitionError(f"{where}: expected distinct identifiers, found {values!r}")
    return tuple(values)


def _ascii8(text: str, where: str) -> bytes:
    magic = text.encode("ascii", "replace")
    if len(magic) != PACK_MAGIC_LENGTH or not text.isascii():
        raise DefinitionError(f"{where}: expected {PACK_MAGIC_LENGTH} ASCII bytes, found {text!r}")
    return magic


def layout_from(table: Any, where: str = "engine_record") -> Layout:
    t = _table(table, _LAYOUT_KEYS, where)
    pairs = t["fields"]
    if not all(isinstance(p, list) and len(p) == 2 and all(isinstance(s, str) for s in p) for p in pairs):
        raise DefinitionError(f"{where}.fields: expected [NAME, description] pairs of strings, found {pairs!r}")
    fields = _names([name for name, _ in pairs], f"{where}.fields")
    previous = _names(t["previous_fields"], f"{where}.previous_fields")
    if fields[0] != ABI_FIELD or previous[0] != ABI_FIELD:
        raise DefinitionError(f"{where}: fields and previous_fields must both open with {ABI_FIELD} (a "
                              f"record names its own version); found {fields[0]} and {previous[0]}")
    for required in (ABI_FIELD, ENGINE_FIELD):
        if required not in fields or required not in previous:
            raise DefinitionError(f"{where}: fields and previous_fields must both hold {required}; "
                                  f"found {list(fields)} and {list(previous)}")
    if t["previous_abi_version"] >= t["abi_version"]:
        raise DefinitionError(f"{where}.previous_abi_version: expected less than abi_version "
                              f"{t['abi_version']}, found {t['previous_abi_version']}")
    return Layout(t["abi_version"], _ascii8(t["pack_magic"], f"{where}.pack_magic"), t["separator"],
                  t["sentinel"], fields, tuple(desc for _, desc in pairs), t["portable"],
                  t["previous_abi_version"], previous)


def strategies_from(table: Any, where: str = "strategies") -> Dict[str, Strategy]:
    if not isinstance(table, dict) or not table:
        raise DefinitionError(f"{where}: expected a table of settings, found {table!r}")
    strategies = {}
    for setting, entry in table.items():
        t = _table(entry, _STRATEGY_KEYS, f"{where}.{setting}")
        strategies[setting] = Strategy(setting, t["trt_enum"], _names(t["names"], f"{where}.{setting}.names"),
                                       t["trt_setter"])
    return strategies


def cache_protocol_from(table: Any, where: str = "cache_protocol") -> CacheProtocol:
    types = {name: int if name.endswith(("_ms", "_s", "_bytes", "_count", "_version")) else str
             for name in CacheProtocol._fields}
    protocol = CacheProtocol(**_table(table, types, where))
    _ascii8(protocol.container_magic, f"{where}.container_magic")
    return protocol


def engine_op_from(table: Any, where: str = "engine_op") -> EngineOp:
    op = EngineOp(**_table(table, {"namespace": str, "schema": str}, where))
    if not op.namespace.isidentifier() or not op.name.isidentifier() or "->" not in op.schema:
        raise DefinitionError(f"{where}: expected an identifier namespace and a schema "
                              f"'NAME(ARGS) -> RETURNS', found {op.namespace!r} / {op.schema!r}")
    return op


def definitions_from(data: Any, source: str = "<definitions>") -> Definitions:
    """Check the parsed TOML ``data`` (a dict) and return its four parts."""
    t = _table(data, _ROOT_KEYS, source)
    return Definitions(layout_from(t["engine_record"], f"{source}: engine_record"),
                       strategies_from(t["strategies"], f"{source}: strategies"),
                       cache_protocol_from(t["cache_protocol"], f"{source}: cache_protocol"),
                       engine_op_from(t["engine_op"], f"{source}: engine_op"))


def load(path: Path = DEFINITIONS_FILE) -> Definitions:
    with open(path, "rb") as f:
        try:
            data = tomllib.load(f)
        except tomllib.TOMLDecodeError as exc:
            raise DefinitionError(f"{path}: not valid TOML ({exc})") from None
    return definitions_from(data, str(path))


LAYOUT, STRATEGIES, CACHE_PROTOCOL, ENGINE_OP = load()
