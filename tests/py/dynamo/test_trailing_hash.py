"""The SHA-256 of a file's bytes, hashed behind the writer from the page cache (TrailingFileHash):
the same digest as hashlib over the same bytes, whatever the chunk sizes and the start offset; a
mapping that cannot be made falls back to reads; a file shorter than advanced is an error; no
thread is left once the bytes are hashed."""
from __future__ import annotations

import hashlib
import mmap
import os
import tempfile
import threading

import pytest

from torch_tensorrt_rtx.dynamo.conversion import _trailing_hash
from torch_tensorrt_rtx.dynamo.conversion._trailing_hash import TrailingFileHash

pytestmark = pytest.mark.skipif(not hasattr(os, "pread"), reason="POSIX only (the engine file's hash trails its writes there)")


def _write_and_hash(data: bytes, chunk: int, start: int) -> str:
    with tempfile.TemporaryFile(buffering=0) as f:
        hashing = TrailingFileHash(f.fileno(), start)
        for pos in range(0, len(data), chunk):
            piece = data[pos:pos + chunk]
            os.pwrite(f.fileno(), piece, start + pos)
            hashing.advance(start + pos + len(piece))
        return hashing.finish()


@pytest.mark.parametrize("chunk,start", [(1, 0), (4095, 41), (70_000, 0), (3 << 20, 4096 + 7), (1 << 30, 57)])
def test_the_digest_is_sha256_of_the_bytes_written_after_start(monkeypatch, chunk, start):
    monkeypatch.setattr(TrailingFileHash, "WINDOW", 1 << 20)  # several windows, unaligned ones too
    data = os.urandom((5 << 20) + 123) if chunk > 1 else os.urandom(3000)
    assert _write_and_hash(data, chunk, start) == hashlib.sha256(data).hexdigest()


def test_without_a_mapping_the_bytes_are_read(monkeypatch):
    def no_map(*args, **kwargs):
        raise OSError(19, "No such device")

    monkeypatch.setattr(_trailing_hash.mmap, "mmap", no_map)
    data = os.urandom(100_000)
    assert _write_and_hash(data, 30_000, 41) == hashlib.sha256(data).hexdigest()


def test_a_file_shorter_than_advanced_is_an_error_naming_the_byte():
    with tempfile.TemporaryFile(buffering=0) as f:
        f.write(b"x" * 100)
        hashing = TrailingFileHash(f.fileno(), 0)
        hashing.advance(150)
        with pytest.raises(OSError, match="50 bytes short at byte 100"):
            hashing.finish()


def test_finish_is_idempotent_and_no_thread_stays():
    with tempfile.TemporaryFile(buffering=0) as f:
        hashing = TrailingFileHash(f.fileno(), 0)
        f.write(b"abc")
        hashing.advance(3)
        hashing.close()
        assert hashing.finish() == hashing.finish() == hashlib.sha256(b"abc").hexdigest()
    assert not [t for t in threading.enumerate() if t.name == "trtx-engine-hash"]


def test_a_mapping_window_is_aligned_to_the_allocation_granularity(monkeypatch):
    offsets = []
    real = mmap.mmap

    def spy(fd, length, **kwargs):
        offsets.append(kwargs["offset"])
        return real(fd, length, **kwargs)

    monkeypatch.setattr(_trailing_hash.mmap, "mmap", spy)
    data = os.urandom(200_000)
    assert _write_and_hash(data, 64_000, 12_345) == hashlib.sha256(data).hexdigest()
    assert offsets and all(o % mmap.ALLOCATIONGRANULARITY == 0 for o in offsets)
