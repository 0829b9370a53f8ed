"""The runtime cache container: one file holding every engine's runtime cache.

The byte layout is defined once, in ``definitions.toml`` (header, index, data); this
module and ``core/runtime/cache_container.cpp`` implement it, and one conformance suite
checks that both produce and accept the same bytes. Pure functions on bytes, no I/O::

    header = parse_header(first_16_bytes, file_size)       # -> Header or raises ContainerError
    index = parse_index(data[16:16 + index_bytes(header, file_size)], header, file_size)
    index.entries, index.damage                             # intact entries, "" or why not strict
    kept = entries_to_keep(index.entries, own_key, own_size, max_bytes)
    prefix = encode_prefix([(e.key, e.last_use, e.size, crc) for e, crc in ...] + [(key, now, n, crc)])

A verdict names what a file is: ``"empty"`` (0 bytes: no entries), ``"container"``,
``"foreign"`` (not ours: never overwritten), ``"version"`` (ours, a format version this
runtime does not read: never overwritten), ``"corrupt"`` (ours, damaged: only the entries
whose index record and bytes are intact are used, and the next save keeps exactly those).

Version 2 (written) gives every entry its offset and two CRC-32s, one of its bytes and one
of its index record, so one damaged byte costs at most one entry. Version 1 (still read, and
migrated by the next save) has neither: any inconsistency makes the whole file corrupt.
"""
from __future__ import annotations

import struct
import zlib
from typing import Iterable, List, NamedTuple, Optional, Sequence, Tuple

from torch_tensorrt_rtx.runtime.definitions import CACHE_PROTOCOL

MAGIC = CACHE_PROTOCOL.container_magic.encode("ascii")
VERSION = CACHE_PROTOCOL.container_version
OLDEST_VERSION = CACHE_PROTOCOL.oldest_container_version
MAX_ENTRIES = CACHE_PROTOCOL.max_entries_count
KEY_SIZE = 32  # SHA-256 of the serialized engine
_HEADER = struct.Struct("<8sII")
_RECORD_V1 = struct.Struct("<32sQQ")  # key, last use, size
_RECORD = struct.Struct("<32sQQQI")  # key, last use, offset, size, CRC-32 of the data; then the record's CRC-32
HEADER_SIZE = _HEADER.size  # 16
INDEX_ENTRY_SIZE = _RECORD.size + 4  # 64
_INDEX_ENTRY_SIZE_V1 = _RECORD_V1.size  # 48


def checksum(data, previous: int = 0) -> int:
    """CRC-32 (zlib's, IEEE 802.3) of ``data``, continuing from ``previous``."""
    return zlib.crc32(data, previous)


class ContainerError(ValueError):
    """The bytes are not a usable container; ``verdict`` says which kind of unusable."""

    def __init__(self, verdict: str, reason: str) -> None:
        super().__init__(reason)
        self.verdict = verdict


class Header(NamedTuple):
    version: int
    count: int


class Entry(NamedTuple):
    key: bytes
    last_use: int
    size: int
    offset: int  # where the entry's bytes start in the file
    checksum: Optional[int] = None  # CRC-32 of the bytes (None in a version-1 file)


class Index(NamedTuple):
    entries: List[Entry]  # the intact ones, in index order
    damage: str  # "" for a consistent container, else the first problem found


def parse_header(first: bytes, file_size: int) -> Header:
    """Classify a file from its first HEADER_SIZE bytes (fewer if the file is shorter)."""
    if file_size == 0:
        return Header(VERSION, 0)
    if file_size < HEADER_SIZE or len(first) < HEADER_SIZE or first[:len(MAGIC)] != MAGIC:
        raise ContainerError("foreign", f"not a runtime cache container (expected the magic "
                                        f"{MAGIC.decode()!r} in the first {len(MAGIC)} bytes)")
    _, version, count = _HEADER.unpack_from(first)
    if not OLDEST_VERSION <= version <= VERSION:
        raise ContainerError("version", f"container format version {version}, this runtime "
                                        f"reads versions {OLDEST_VERSION} to {VERSION}")
    if version == 1:
        if count > MAX_ENTRIES:
            raise ContainerError("corrupt", f"{count} entries, more than the limit {MAX_ENTRIES}")
        if HEADER_SIZE + count * _INDEX_ENTRY_SIZE_V1 > file_size:
            raise ContainerError("corrupt", f"an index of {count} entries does not fit in "
                                            f"{file_size} bytes")
    return Header(version, count)


def index_bytes(header: Header, file_size: int) -> int:
    """How many bytes after the header a reader passes to ``parse_index``. Version 2 ignores
    the count here (it may be the damaged byte): up to MAX_ENTRIES records that fit."""
    if header.version == 1:
        return header.count * _INDEX_ENTRY_SIZE_V1
    records = min(MAX_ENTRIES, max(0, file_size - HEADER_SIZE) // INDEX_ENTRY_SIZE)
    return records * INDEX_ENTRY_SIZE


def parse_index(data: bytes, header: Header, file_size: int) -> Index:
    """The intact entries of the index in ``data`` (``index_bytes`` after the header)."""
    if header.version == 1:
        return Index(_parse_index_v1(data, header.count, file_size), "")
    entries: List[Entry] = []
    seen, problems = set(), []
    index_end = HEADER_SIZE + len(data)  # shrinks to the first entry's bytes once one is known
    i = 0
    while HEADER_SIZE + (i + 1) * INDEX_ENTRY_SIZE <= index_end:
        record = data[i * INDEX_ENTRY_SIZE:(i + 1) * INDEX_ENTRY_SIZE]
        key, last_use, offset, size, data_crc = _RECORD.unpack_from(record)
        record_end = HEADER_SIZE + (i + 1) * INDEX_ENTRY_SIZE
        if checksum(record[:_RECORD.size]) != int.from_bytes(record[_RECORD.size:], "little"):
            problems.append(f"index record {i} is damaged (checksum mismatch)")
        elif size == 0 or key in seen:
            problems.append(f"entry {i} is empty or repeats a key")
        elif offset < record_end or offset + size > file_size:
            problems.append(f"entry {i} ({size} bytes at {offset}) runs past the end of the file "
                            f"({file_size} bytes) or into the index")
        else:
            seen.add(key)
            entries.append(Entry(key, last_use, size, offset, data_crc))
            index_end = min(index_end, offset)
        i += 1
    if not problems:
        problems.append(_layout_problem(entries, header.count, file_size))
    return Index(entries, problems[0])


def _layout_problem(entries: Sequence[Entry], count: int, file_size: int) -> str:
    """Why intact records do not form the container a writer writes ("" if they do)."""
    if count != len(entries):
        return f"the header counts {count} entries, the index holds {len(entries)}"
    offset = HEADER_SIZE + count * INDEX_ENTRY_SIZE
    for i, entry in enumerate(entries):
        if entry.offset != offset:
            return f"entry {i} starts at {entry.offset}, expected {offset}"
        offset += entry.size
    if offset != file_size:
        return f"{file_size - offset} bytes after the last entry"
    return ""


def _parse_index_v1(data: bytes, count: int, file_size: int) -> List[Entry]:
    if len(data) != count * _INDEX_ENTRY_SIZE_V1:
        raise ContainerError("corrupt", f"index truncated: {len(data)} bytes for {count} entries")
    entries: List[Entry] = []
    seen = set()
    offset = HEADER_SIZE + len(data)
    for i in range(count):
        key, last_use, size = _RECORD_V1.unpack_from(data, i * _INDEX_ENTRY_SIZE_V1)
        if size == 0 or key in seen:
            raise ContainerError("corrupt", f"entry {i} is empty or repeats a key")
        if offset + size > file_size:
            raise ContainerError("corrupt", f"entry {i} ({size} bytes at {offset}) runs past "
                                            f"the end of the file ({file_size} bytes)")
        seen.add(key)
        entries.append(Entry(key, last_use, size, offset))
        offset += size
    if offset != file_size:
        raise ContainerError("corrupt", f"{file_size - offset} bytes after the last entry")
    return entries


def decode(data: bytes) -> Tuple[str, List[Entry]]:
    """Verdict and intact entries of a whole file in memory (tests and tools); the entries'
    bytes are checked against their checksums too."""
    try:
        header = parse_header(bytes(data[:HEADER_SIZE]), len(data))
        if len(data) == 0:
            return "empty", []
        end = HEADER_SIZE + index_bytes(header, len(data))
        index = parse_index(bytes(data[HEADER_SIZE:end]), header, len(data))
    except ContainerError as exc:
        return exc.verdict, []
    intact = [e for e in index.entries if e.checksum is None or
              checksum(data[e.offset:e.offset + e.size]) == e.checksum]
    return ("corrupt" if index.damage or len(intact) < len(index.entries) else "container"), intact


def file_size_of(sizes: Iterable[int]) -> int:
    sizes = list(sizes)
    return HEADER_SIZE + INDEX_ENTRY_SIZE * len(sizes) + sum(sizes)


def entries_to_keep(entries: Sequence[Entry], own_key: bytes, own_size: int,
                    max_bytes: int) -> List[Entry]:
    """The other engines' entries that stay beside a new entry of ``own_size`` bytes.

    Least recently used first out (ties: the earlier index position goes first) until
    the file fits in ``max_bytes`` and the index in MAX_ENTRIES; file order is kept.
    """
    others = [e for e in entries if e.key != own_key]
    total = file_size_of([e.size for e in others] + [own_size])
    evict = set()
    for position, entry in sorted(enumerate(others), key=lambda p: (p[1].last_use, p[0])):
        if total <= max_bytes and len(others) - len(evict) + 1 <= MAX_ENTRIES:
            break
        evict.add(position)
        total -= entry.size + INDEX_ENTRY_SIZE
    return [e for i, e in enumerate(others) if i not in evict]


def encode_prefix(index: Sequence[Tuple[bytes, int, int, int]]) -> bytes:
    """Header and index for entries ``(key, last_use, size, checksum)``; their bytes follow
    in order. ValueError for a key that is not 32 bytes, a size of 0, a value outside its
    field, or more than MAX_ENTRIES entries."""
    if len(index) > MAX_ENTRIES:
        raise ValueError(f"bad container: {len(index)} entries, more than the limit {MAX_ENTRIES}")
    parts = [_HEADER.pack(MAGIC, VERSION, len(index))]
    offset = HEADER_SIZE + len(index) * INDEX_ENTRY_SIZE
    for key, last_use, size, crc in index:
        if len(key) != KEY_SIZE or not 0 < size < 1 << 64 or not 0 <= last_use < 1 << 64 or \
                not 0 <= crc < 1 << 32:
            raise ValueError(f"bad container entry: key of {len(key)} bytes (expected {KEY_SIZE}), "
                             f"size {size} (expected > 0)")
        record = _RECORD.pack(bytes(key), int(last_use), offset, int(size), int(crc))
        parts.append(record + checksum(record).to_bytes(4, "little"))
        offset += size
    return b"".join(parts)


def encode(entries: Sequence[Tuple[bytes, int, bytes]]) -> bytes:
    """A whole container in memory from ``(key, last_use, data)`` (tests and tools)."""
    prefix = encode_prefix([(k, t, len(d), checksum(d)) for k, t, d in entries])
    return prefix + b"".join(bytes(d) for _, _, d in entries)


def encode_v1(entries: Sequence[Tuple[bytes, int, bytes]]) -> bytes:
    """A version-1 container, as the runtime wrote before checksums (tests of migration)."""
    parts = [_HEADER.pack(MAGIC, 1, len(entries))]
    parts += [_RECORD_V1.pack(k, t, len(d)) for k, t, d in entries]
    return b"".join(parts) + b"".join(bytes(d) for _, _, d in entries)
