"""The engine record: everything needed to rebuild one TensorRT(-RTX) engine from disk.

The layout (field names, order, ABI version, pack magic, separator, sentinel) is defined
once, in ``definitions.toml`` next to this file (``[engine_record]``), read by ``definitions``.
The C++ runtime generates its header from the same file. ``EngineRecord`` spells the fields
out as attributes (a test holds them equal to the layout); nothing hardcodes a field index:
code names fields (``record.engine``, ``LAYOUT.index("ENGINE")``).

Usage::

    rec = EngineRecord.new(serialized_engine, name="blk0",
                           input_names=["x"], output_names=["y"])
    fields = rec.to_list()              # fixed-length list of bytes (C++ Engine ctor)
    same = EngineRecord.from_list(fields)
    blob = rec.pack()                   # one contiguous buffer, e.g. a uint8 tensor
    view = EngineRecord.unpack(blob)    # view.engine is a memoryview into ``blob``

Contract:
- Every field is UTF-8 text except ENGINE, which is raw bytes. Optional fields hold
  ``None`` in Python and the layout's sentinel on the wire.
- ``unpack``/``from_list`` never copy the engine bytes; ``pack`` copies them once (into
  the output buffer; an engine object with ``nbytes`` and ``readinto(buffer)``, such as one
  the builder streamed to a file, reads itself straight into it); ``to_tensor`` does not copy
  an engine that offers ``map_record`` (one streamed to a file with room for the header in
  front, ``engine_offset``): the file becomes the record; ``to_list`` returns the engine as
  ``bytes`` (one copy only if it was a view).
- A record with the wrong ABI version, the wrong number of fields or a truncated buffer
  raises ``EngineRecordError`` naming what was expected and what was found. Garbage
  engine bytes are caught before the engine is deserialized (``device.check_engine``).
- Records of the layout's previous ABI version (``LAYOUT.previous_abi_version``) decode too,
  into the current fields (``_upgrade_previous``; the C++ decoder applies the same rule), so
  saved programs keep loading. ``pack``/``to_list`` always write the current version.
- ``COMPUTE_CAPABILITIES`` is ``LAYOUT.portable`` or SM names ("SM86") joined by the separator;
  anything else is refused when decoding, by both decoders.
- Runtime modes (cache path, strategies) are never part of a record.
"""
from __future__ import annotations

import base64
import dataclasses
import logging
import re
import struct
from typing import Any, Optional, Sequence, Union

from torch_tensorrt_rtx.runtime.definitions import ABI_FIELD, ENGINE_FIELD, LAYOUT
from torch_tensorrt_rtx.runtime.page_populate import populate_for_writing

logger = logging.getLogger(__name__)
COMPUTE_CAPABILITIES_FIELD = "COMPUTE_CAPABILITIES"
_SM_NAME = re.compile(r"SM[0-9]{2,3}")

Buffer = Union[bytes, bytearray, memoryview]

# pack() format: the layout's pack_magic, u32 ABI version, u32 field count, then per
# field a u64 length and the bytes (all little-endian). The field bytes are exactly those
# of to_list().
PACK_MAGIC = LAYOUT.pack_magic
_PACK_HEADER = struct.Struct(f"<{len(PACK_MAGIC)}sII")
_PACK_LENGTH = struct.Struct("<Q")


class EngineRecordError(ValueError):
    """An engine record that cannot be used: wrong ABI, wrong length, truncated, garbage."""


ABI_VERSION = LAYOUT.abi_version


def _attr(field: str) -> str:
    return field.lower()


@dataclasses.dataclass(eq=False)
class EngineRecord:
    """One engine and what is needed to run it: the layout's fields, lowercased and in layout
    order, except ABI_VERSION (always the layout's; checked on decode). A test checks that
    these attributes are exactly the layout's fields.

    Text fields are ``str`` or ``None`` (absent, the sentinel on the wire); ``engine`` is
    ``bytes``/``memoryview`` and is never copied by decoding.
    """

    name: str | None = None
    engine: Buffer = dataclasses.field(default=b"", repr=False)
    input_binding_names: str | None = None
    output_binding_names: str | None = None
    compute_capabilities: str = LAYOUT.portable
    engine_flavor: str | None = None

    @classmethod
    def new(cls, engine: Buffer, *, name: str, input_names: Sequence[str],
            output_names: Sequence[str], compute_capabilities: Sequence[str] = (),
            engine_flavor: str = "tensorrt_rtx") -> "EngineRecord":
        """Build a record from typed values (the compiler's entry point).
        ``compute_capabilities``: the SM names the engine was built for; () or "portable" =
        a portable build."""
        sep = LAYOUT.separator
        for n in list(input_names) + list(output_names):
            if sep in n:
                raise EngineRecordError(f"binding name {n!r} contains the separator {sep!r}")
        if isinstance(compute_capabilities, str):
            compute_capabilities = [compute_capabilities]
        targets = [str(c).upper() for c in compute_capabilities if str(c).lower() != LAYOUT.portable]
        return cls(
            engine=engine, name=name,
            input_binding_names=sep.join(input_names),
            output_binding_names=sep.join(output_names),
            compute_capabilities=_checked_capabilities(sep.join(targets) if targets else LAYOUT.portable),
            engine_flavor=engine_flavor,
        )

    # -- typed views of text fields -------------------------------------------------
    @property
    def input_names(self) -> list[str]:
        return _split(self.input_binding_names)

    @property
    def output_names(self) -> list[str]:
        return _split(self.output_binding_names)

    @property
    def target_capabilities(self) -> Optional[list[str]]:
        """The SM names the engine was built for ("SM86"); None for a portable engine."""
        caps = self.compute_capabilities
        return None if caps == LAYOUT.portable else caps.split(LAYOUT.separator)

    # -- list form ------------------------------------------------------------------
    def to_list(self) -> list[bytes]:
        """The fixed-length list of ``bytes`` (one per layout field, in layout order)."""
        eng = self.engine if isinstance(self.engine, bytes) else _readable(self.engine).tobytes()
        return [eng if f == ENGINE_FIELD else b
                for f, b in zip(LAYOUT.fields, self._encoded_fields())]

    @classmethod
    def from_list(cls, fields: Sequence[Buffer]) -> "EngineRecord":
        """Decode the list form (this ABI version or the previous one); the engine entry is
        kept as given (no copy)."""
        abi = bytes(fields[0])[:32] if len(fields) else b""
        names = _field_names(abi.decode("utf-8", "replace"), len(fields))
        values: dict[str, Any] = {}
        for field, raw in zip(names, fields):
            if field == ENGINE_FIELD:
                values[field] = raw
                continue
            try:
                text = bytes(raw).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise EngineRecordError(
                    f"engine record field {field} is not UTF-8 text (expected text, found "
                    f"{bytes(raw)[:16]!r}...): {exc}") from None
            values[field] = None if text == LAYOUT.sentinel else text
        if names is LAYOUT.previous_fields:
            values = _upgrade_previous(values)
        values[COMPUTE_CAPABILITIES_FIELD] = _checked_capabilities(values[COMPUTE_CAPABILITIES_FIELD])
        return cls(**{_attr(f): values[f] for f in LAYOUT.fields if f != ABI_FIELD})

    # -- packed form ----------------------------------------------------------------
    def pack(self) -> bytearray:
        """One contiguous buffer: header, then length-prefixed fields (engine copied once)."""
        parts = self._parts()
        out = bytearray(_packed_size(parts))
        _pack_into(out, parts)
        return out

    def _parts(self) -> list:
        return [_readable(self.engine) if f == ENGINE_FIELD else memoryview(text)
                for f, text in zip(LAYOUT.fields, self._encoded_fields())]

    def _encoded_fields(self) -> list[bytes]:
        """Every field's wire bytes, except ENGINE (left empty: callers use ``self.engine``)."""
        out = []
        for field in LAYOUT.fields:
            if field == ABI_FIELD:
                out.append(str(LAYOUT.abi_version).encode())
            elif field == ENGINE_FIELD:
                out.append(b"")
            else:
                value = getattr(self, _attr(field))
                out.append((LAYOUT.sentinel if value is None else str(value)).encode("utf-8"))
        return out

    @classmethod
    def unpack(cls, buffer: Buffer) -> "EngineRecord":
        """Decode ``pack()`` output. ``engine`` is a memoryview into ``buffer`` (no copy)."""
        view = memoryview(buffer).cast("B")
        if view.nbytes < _PACK_HEADER.size:
            raise EngineRecordError(
                f"packed engine record is truncated: expected at least {_PACK_HEADER.size} "
                f"header bytes, found {view.nbytes}")
        magic, abi, count = _PACK_HEADER.unpack_from(view, 0)
        if magic != PACK_MAGIC:
            raise EngineRecordError(
                f"not a packed engine record: expected magic {PACK_MAGIC!r}, found {bytes(magic)!r}")
        names = _field_names(str(abi), count)
        pos = _PACK_HEADER.size
        fields: list[memoryview] = []
        for field in names:
            if pos + _PACK_LENGTH.size > view.nbytes:
                raise EngineRecordError(
                    f"packed engine record is truncated at field {field}: expected a length "
                    f"prefix at byte {pos}, buffer has {view.nbytes} bytes")
            (n,) = _PACK_LENGTH.unpack_from(view, pos)
            pos += _PACK_LENGTH.size
            if pos + n > view.nbytes:
                raise EngineRecordError(
                    f"packed engine record is truncated at field {field}: expected {n} bytes, "
                    f"found {view.nbytes - pos}")
            fields.append(view[pos:pos + n])
            pos += n
        if pos != view.nbytes:
            raise EngineRecordError(
                f"packed engine record has {view.nbytes - pos} trailing bytes after field "
                f"{names[-1]} (expected exactly {pos} bytes)")
        return cls.from_list(fields)

    def to_tensor(self):
        """``pack()`` as a 1-D uint8 CPU tensor (packed straight into it, no extra copy)."""
        import torch  # local: keep this module importable without torch

        parts = self._parts()
        mapped = _mapped_record(parts)
        if mapped is not None:
            return torch.frombuffer(mapped, dtype=torch.uint8)  # keeps the mapping alive
        # Not zero-filled first (bytearray(n) writes every byte of a 300 MB engine twice): every
        # byte is written by _pack_into.
        out = torch.empty(_packed_size(parts), dtype=torch.uint8)
        if all(_copied_from_memory(part) for part in parts):
            populate_for_writing(out)  # its pages mapped in one call, not one fault per page
        _pack_into(out.numpy(), parts)
        return out

    @classmethod
    def from_tensor(cls, tensor) -> "EngineRecord":
        """Decode a uint8 CPU tensor produced by ``to_tensor`` (engine is a view of it)."""
        return cls.unpack(tensor.contiguous().numpy())


def engine_offset(name: str) -> int:
    """Where the engine's bytes start in the packed record of an engine named `name`: the header
    and the fields before ENGINE depend on the name alone. The builder leaves that much room in
    front of an engine it streams to a file, so the file can become the record (`_mapped_record`)."""
    prefix, _ = _around_engine(EngineRecord(name=name)._parts())
    return len(prefix)


def _around_engine(parts: list) -> tuple:
    """(the packed record's bytes before the engine's, those after it) for `parts` (see _parts)."""
    index = LAYOUT.fields.index(ENGINE_FIELD)
    before = bytearray(_PACK_HEADER.pack(PACK_MAGIC, LAYOUT.abi_version, LAYOUT.num_fields))
    for part in parts[:index]:
        before += _PACK_LENGTH.pack(part.nbytes) + part
    before += _PACK_LENGTH.pack(parts[index].nbytes)
    after = bytearray()
    for part in parts[index + 1:]:
        after += _PACK_LENGTH.pack(part.nbytes) + part
    return bytes(before), bytes(after)


def _mapped_record(parts: list) -> Optional[Any]:
    """The packed record as a writable, copy-on-write mapping of the file the engine was streamed
    to, when the engine offers one (`map_record(before, after)`: it writes the bytes around the
    engine into the room it left and maps the file; None when it cannot): no copy of the engine."""
    engine = parts[LAYOUT.fields.index(ENGINE_FIELD)]
    map_record = getattr(engine, "map_record", None)
    if map_record is None:
        return None
    return map_record(*_around_engine(parts))


def _packed_size(parts: list) -> int:
    return _PACK_HEADER.size + sum(_PACK_LENGTH.size + p.nbytes for p in parts)


def _pack_into(out: Any, parts: list) -> None:
    """Write the header and the length-prefixed `parts` into the writable buffer `out`: the bytes
    around the engine as `_around_engine` spells them, the engine copied (or read) between them."""
    before, after = _around_engine(parts)
    engine = parts[LAYOUT.fields.index(ENGINE_FIELD)]
    end = len(before) + engine.nbytes
    with memoryview(out) as view:
        view[:len(before)] = before
        if isinstance(engine, memoryview):
            view[len(before):end] = engine
        else:
            engine.readinto(view[len(before):end])
        view[end:end + len(after)] = after


def _copied_from_memory(part: Any) -> bool:
    """Whether packing copies `part` from memory (a memoryview, or an engine object that says
    `copies_from_memory`) rather than reading it from a file. Populating the record's pages first
    pays for a copy from memory (98 MB: 0.080 -> 0.054 s, 334 MB: 0.56 -> 0.28 s, medians of 5)
    but not for a read from a file, which the kernel does faster into pages it faults in itself
    (334 MB: 0.20 -> 0.25 s)."""
    return isinstance(part, memoryview) or bool(getattr(part, "copies_from_memory", False))


def _readable(engine: Any):
    """The engine as a byte memoryview, or as is when it reads itself into a buffer (an engine
    the builder streamed to a file: `nbytes` and `readinto(buffer)`), so packing copies it once."""
    if hasattr(engine, "readinto") and hasattr(engine, "nbytes"):
        return engine
    return memoryview(engine).cast("B")


def _split(joined: str | None) -> list[str]:
    return [] if not joined else joined.split(LAYOUT.separator)


def _field_names(abi: str, count: int) -> Sequence[str]:
    """The field names of a record of ABI version ``abi`` (text) with ``count`` fields."""
    known = {str(LAYOUT.abi_version): LAYOUT.fields, str(LAYOUT.previous_abi_version): LAYOUT.previous_fields}
    names = known.get(abi)
    if names is None:
        raise EngineRecordError(
            f"engine record has the wrong ABI version: expected {LAYOUT.abi_version} (or "
            f"{LAYOUT.previous_abi_version}), found {abi!r}")
    if count != len(names):
        raise EngineRecordError(
            f"engine record of ABI version {abi} has the wrong length: expected {len(names)} "
            f"fields ({', '.join(names)}), found {count}")
    return names


def _checked_capabilities(text: Optional[str]) -> str:
    """A COMPUTE_CAPABILITIES value: the portable word or separator-joined SM names."""
    if text == LAYOUT.portable or (text and all(_SM_NAME.fullmatch(n) for n in text.split(LAYOUT.separator))):
        return text
    raise EngineRecordError(
        f"engine record field {COMPUTE_CAPABILITIES_FIELD} is {str(text)[:64]!r}; expected "
        f"{LAYOUT.portable!r} or SM names like 'SM86' joined by {LAYOUT.separator!r}")


# The previous ABI version kept the compiler's compute capabilities inside SERIALIZED_METADATA:
# base64 of JSON written with sorted keys, so "compute_capabilities" opens it when present.
_PREVIOUS_CAPS_PREFIX = b'{"compute_capabilities": '
_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_PREVIOUS_CAPS_VALUE = re.compile(rb'"([A-Za-z0-9]{1,16})"|\[("[A-Za-z0-9]{1,16}"(?:, "[A-Za-z0-9]{1,16}")*)\]')


def _upgrade_previous(values: dict[str, Any]) -> dict[str, Any]:
    """A previous-version record's fields as the current version's (C++: UpgradePrevious)."""
    out = {f: values.get(f) for f in LAYOUT.fields if f != COMPUTE_CAPABILITIES_FIELD}
    out[COMPUTE_CAPABILITIES_FIELD] = _previous_capabilities(values.get("SERIALIZED_METADATA"))
    return out


def _previous_capabilities(metadata: Optional[str]) -> str:
    if metadata is None:
        return LAYOUT.portable
    if not _BASE64.fullmatch(metadata):  # standard base64 with padding only (as the C++ decoder)
        raise EngineRecordError(f"engine record of ABI version {LAYOUT.previous_abi_version}: "
                                f"SERIALIZED_METADATA is not base64 (found {metadata[:32]!r})")
    decoded = base64.b64decode(metadata)
    if not decoded.startswith(_PREVIOUS_CAPS_PREFIX):
        return LAYOUT.portable
    match = _PREVIOUS_CAPS_VALUE.match(decoded, len(_PREVIOUS_CAPS_PREFIX))
    if match is None:
        raise EngineRecordError(
            f"engine record of ABI version {LAYOUT.previous_abi_version}: the compute_capabilities "
            f"in SERIALIZED_METADATA are not a name or a list of names (found "
            f"{decoded[len(_PREVIOUS_CAPS_PREFIX):][:32]!r})")
    if match.group(1) is not None:
        names = [match.group(1).decode("ascii")]
    else:
        names = [n.strip(b'"').decode("ascii") for n in match.group(2).split(b", ")]
    return LAYOUT.separator.join(n if n == LAYOUT.portable else n.upper() for n in names)
