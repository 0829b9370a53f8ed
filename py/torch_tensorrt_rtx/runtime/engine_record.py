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
  the builder streamed to a file, reads itself straight into it); ``to_list`` returns the engine as ``bytes`` (one copy only if it
  was a view).
- A record with the wrong ABI version, the wrong number of fields or a truncated buffer
  raises ``EngineRecordError`` naming what was expected and what was found. Garbage
  engine bytes are caught when the engine is deserialized (see ``check_engine_bytes``).
- Runtime modes (cache path, strategies) are never part of a record.
"""
from __future__ import annotations

import base64
import dataclasses
import json
import logging
import struct
from typing import Any, Sequence, Union

from torch_tensorrt_rtx.runtime import bounded_json
from torch_tensorrt_rtx.runtime.definitions import ABI_FIELD, ENGINE_FIELD, LAYOUT

logger = logging.getLogger(__name__)
MAX_METADATA_CHARS = 1 << 24

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
    device: str | None = None
    engine: Buffer = dataclasses.field(default=b"", repr=False)
    input_binding_names: str | None = None
    output_binding_names: str | None = None
    hw_compatible: str | None = None
    serialized_metadata: str | None = None
    target_platform: str | None = None
    engine_flavor: str | None = None
    requires_output_allocator: str | None = None

    @classmethod
    def new(cls, engine: Buffer, *, name: str, input_names: Sequence[str],
            output_names: Sequence[str], device: str | None = None,
            hw_compatible: bool = False, metadata: dict[str, Any] | None = None,
            target_platform: str | None = None, engine_flavor: str = "tensorrt_rtx",
            requires_output_allocator: bool = False) -> "EngineRecord":
        """Build a record from typed values (the compiler's entry point)."""
        sep = LAYOUT.separator
        for n in list(input_names) + list(output_names):
            if sep in n:
                raise EngineRecordError(f"binding name {n!r} contains the separator {sep!r}")
        return cls(
            engine=engine, name=name, device=device,
            input_binding_names=sep.join(input_names),
            output_binding_names=sep.join(output_names),
            hw_compatible="1" if hw_compatible else "0",
            serialized_metadata=None if metadata is None else base64.b64encode(
                json.dumps(metadata, sort_keys=True).encode()).decode("ascii"),
            target_platform=target_platform, engine_flavor=engine_flavor,
            requires_output_allocator="1" if requires_output_allocator else "0",
        )

    # -- typed views of text fields -------------------------------------------------
    @property
    def input_names(self) -> list[str]:
        return _split(self.input_binding_names)

    @property
    def output_names(self) -> list[str]:
        return _split(self.output_binding_names)

    @property
    def metadata(self) -> dict[str, Any] | None:
        raw = self.serialized_metadata
        return None if raw is None else bounded_json.loads(base64.b64decode(raw), "engine record metadata",
                                                           MAX_METADATA_CHARS)

    # -- list form ------------------------------------------------------------------
    def to_list(self) -> list[bytes]:
        """The fixed-length list of ``bytes`` (one per layout field, in layout order)."""
        eng = self.engine if isinstance(self.engine, bytes) else _readable(self.engine).tobytes()
        return [eng if f == ENGINE_FIELD else b
                for f, b in zip(LAYOUT.fields, self._encoded_fields())]

    @classmethod
    def from_list(cls, fields: Sequence[Buffer]) -> "EngineRecord":
        """Decode the list form; the engine entry is kept as given (no copy)."""
        if len(fields) != LAYOUT.num_fields:
            raise EngineRecordError(
                f"engine record has the wrong length: expected {LAYOUT.num_fields} fields "
                f"({', '.join(LAYOUT.fields)}), found {len(fields)}")
        abi_raw = bytes(fields[LAYOUT.index(ABI_FIELD)])
        if abi_raw != str(LAYOUT.abi_version).encode():
            raise EngineRecordError(
                f"engine record has the wrong ABI version: expected {LAYOUT.abi_version}, "
                f"found {abi_raw[:32].decode('utf-8', 'replace')!r}")
        values: dict[str, Any] = {}
        for field, raw in zip(LAYOUT.fields, fields):
            if field == ABI_FIELD:
                continue
            if field == ENGINE_FIELD:
                values[_attr(field)] = raw
                continue
            try:
                text = bytes(raw).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise EngineRecordError(
                    f"engine record field {field} is not UTF-8 text (expected text, found "
                    f"{bytes(raw)[:16]!r}...): {exc}") from None
            values[_attr(field)] = None if text == LAYOUT.sentinel else text
        return cls(**values)

    # -- packed form ----------------------------------------------------------------
    def pack(self) -> bytearray:
        """One contiguous buffer: header, then length-prefixed fields (engine copied once)."""
        parts = [_readable(self.engine) if f == ENGINE_FIELD else memoryview(text)
                 for f, text in zip(LAYOUT.fields, self._encoded_fields())]
        total = _PACK_HEADER.size + sum(_PACK_LENGTH.size + p.nbytes for p in parts)
        out = bytearray(total)
        _PACK_HEADER.pack_into(out, 0, PACK_MAGIC, LAYOUT.abi_version, LAYOUT.num_fields)
        pos = _PACK_HEADER.size
        with memoryview(out) as view:
            for part in parts:
                _PACK_LENGTH.pack_into(out, pos, part.nbytes)
                pos += _PACK_LENGTH.size
                if isinstance(part, memoryview):
                    view[pos:pos + part.nbytes] = part
                else:
                    part.readinto(view[pos:pos + part.nbytes])
                pos += part.nbytes
        return out

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
        if abi != LAYOUT.abi_version:
            raise EngineRecordError(
                f"engine record has the wrong ABI version: expected {LAYOUT.abi_version}, found {abi}")
        if count != LAYOUT.num_fields:
            raise EngineRecordError(
                f"engine record has the wrong length: expected {LAYOUT.num_fields} fields, found {count}")
        pos = _PACK_HEADER.size
        fields: list[memoryview] = []
        for field in LAYOUT.fields:
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
                f"{LAYOUT.fields[-1]} (expected exactly {pos} bytes)")
        return cls.from_list(fields)

    def to_tensor(self):
        """``pack()`` as a 1-D uint8 CPU tensor (shares the packed buffer, no extra copy)."""
        import torch  # local: keep this module importable without torch

        return torch.frombuffer(self.pack(), dtype=torch.uint8)

    @classmethod
    def from_tensor(cls, tensor) -> "EngineRecord":
        """Decode a uint8 CPU tensor produced by ``to_tensor`` (engine is a view of it)."""
        return cls.unpack(tensor.contiguous().numpy())


def _readable(engine: Any):
    """The engine as a byte memoryview, or as is when it reads itself into a buffer (an engine
    the builder streamed to a file: `nbytes` and `readinto(buffer)`), so packing copies it once."""
    if hasattr(engine, "readinto") and hasattr(engine, "nbytes"):
        return engine
    return memoryview(engine).cast("B")


def _split(joined: str | None) -> list[str]:
    return [] if not joined else joined.split(LAYOUT.separator)


def check_engine_bytes(engine: Buffer, trt_runtime: Any, trt_api: Any, name: str = "?") -> None:
    """Cheap sanity check of serialized engine bytes, usable without a GPU.

    Asks ``trt_runtime.get_engine_validity`` and raises ``EngineRecordError`` only when it
    reports a malformed engine (other diagnostics, e.g. no GPU, are left to deserialization).
    """
    view = memoryview(engine)
    if view.nbytes == 0:
        raise EngineRecordError(f"engine {name!r}: engine bytes are empty (expected a serialized engine)")
    validity = getattr(trt_runtime, "get_engine_validity", None)
    if validity is None:
        return
    _, diagnostics = validity(view)
    malformed = int(trt_api.EngineInvalidityDiagnostics.MALFORMED_ENGINE)
    if int(diagnostics) & malformed:
        raise EngineRecordError(
            f"engine {name!r}: engine bytes are not a serialized TensorRT-RTX engine "
            f"({view.nbytes} bytes starting {bytes(view[:8])!r}); expected the output of "
            f"IBuilder.build_serialized_network")
