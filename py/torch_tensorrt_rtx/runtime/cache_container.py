"""The runtime cache container: one file holding every engine's runtime cache.

The byte layout is defined once, in ``definitions.toml`` (header, index, data); this
module and ``core/runtime/cache_container.cpp`` implement it, and one conformance suite
checks that both produce and accept the same bytes. Pure functions on bytes, no I/O::

    header = parse_header(first_16_bytes, file_size)      # -> Header or raises ContainerError
    index = parse_index(index_bytes, header, file_size)   # -> list[Entry]
    kept = entries_to_keep(index, own_key, own_size, max_bytes)
    prefix = encode_prefix([(e.key, e.last_use, e.size) for e in kept] + [(key, now, n)])

A verdict names what a file is: ``"empty"`` (0 bytes: no entries), ``"container"``,
``"foreign"`` (not ours: never overwritten), ``"version"`` (ours, another format version:
never overwritten), ``"corrupt"`` (ours, inconsistent: not loaded, replaced by the next save).
"""
from __future__ import annotations

import struct
from typing import Iterable, List, NamedTuple, Sequence, Tuple

from torch_tensorrt_rtx.runtime.definitions import CACHE_PROTOCOL

MAGIC = CACHE_PROTOCOL.container_magic.encode("ascii")
VERSION = CACHE_PROTOCOL.container_version
MAX_ENTRIES = CACHE_PROTOCOL.max_entries_count
KEY_SIZE = 32  # SHA-256 of the serialized engine
_HEADER = struct.Struct("<8sII")
_INDEX_ENTRY = struct.Struct("<32sQQ")
HEADER_SIZE = _HEADER.size  # 16
INDEX_ENTRY_SIZE = _INDEX_ENTRY.size  # 48

VERDICTS = ("empty", "container", "foreign", "version", "corrupt")


class ContainerError(ValueError):
    """The bytes are not a usable container; ``verdict`` says which kind of unusable."""

    def __init__(self, verdict: str, reason: str) -> None:
        super().__init__(reason)
        self.verdict = verdict


class Header(NamedTuple):
    count: int


class Entry(NamedTuple):
    key: bytes
    last_use: int
    size: int
    offset: int  # where the entry's bytes start in the file


def parse_header(first: bytes, file_size: int) -> Header:
    """Classify a file from its first HEADER_SIZE bytes (fewer if the file is shorter)."""
    if file_size == 0:
        return Header(0)
    if file_size < HEADER_SIZE or len(first) < HEADER_SIZE or first[:len(MAGIC)] != MAGIC:
        raise ContainerError("foreign", f"not a runtime cache container (expected the magic "
                                        f"{MAGIC.decode()!r} in the first {len(MAGIC)} bytes)")
    _, version, count = _HEADER.unpack_from(first)
    if version != VERSION:
        raise ContainerError("version", f"container format version {version}, this runtime "
                                        f"reads version {VERSION}")
    if count > MAX_ENTRIES:
        raise ContainerError("corrupt", f"{count} entries, more than the limit {MAX_ENTRIES}")
    if HEADER_SIZE + count * INDEX_ENTRY_SIZE > file_size:
        raise ContainerError("corrupt", f"an index of {count} entries does not fit in "
                                        f"{file_size} bytes")
    return Header(count)


def parse_index(data: bytes, header: Header, file_size: int) -> List[Entry]:
    """The entries of the index that follows the header; ``data`` is exactly the index."""
    if len(data) != header.count * INDEX_ENTRY_SIZE:
        raise ContainerError("corrupt", f"index truncated: {len(data)} bytes for "
                                        f"{header.count} entries")
    entries: List[Entry] = []
    seen = set()
    offset = HEADER_SIZE + len(data)
    for i in range(header.count):
        key, last_use, size = _INDEX_ENTRY.unpack_from(data, i * INDEX_ENTRY_SIZE)
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
    """Verdict and entries of a whole file in memory (for tests and tools)."""
    try:
        header = parse_header(bytes(data[:HEADER_SIZE]), len(data))
        if len(data) == 0:
            return "empty", []
        end = HEADER_SIZE + header.count * INDEX_ENTRY_SIZE
        return "container", parse_index(bytes(data[HEADER_SIZE:end]), header, len(data))
    except ContainerError as exc:
        return exc.verdict, []


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


def encode_prefix(index: Sequence[Tuple[bytes, int, int]]) -> bytes:
    """Header and index for entries ``(key, last_use, size)``; their bytes follow in order."""
    parts = [_HEADER.pack(MAGIC, VERSION, len(index))]
    for key, last_use, size in index:
        if len(key) != KEY_SIZE or size <= 0:
            raise ValueError(f"bad container entry: key of {len(key)} bytes (expected "
                             f"{KEY_SIZE}), size {size} (expected > 0)")
        parts.append(_INDEX_ENTRY.pack(bytes(key), int(last_use), int(size)))
    return b"".join(parts)


def encode(entries: Sequence[Tuple[bytes, int, bytes]]) -> bytes:
    """A whole container in memory from ``(key, last_use, data)`` (tests and tools)."""
    prefix = encode_prefix([(k, t, len(d)) for k, t, d in entries])
    return prefix + b"".join(bytes(d) for _, _, d in entries)
