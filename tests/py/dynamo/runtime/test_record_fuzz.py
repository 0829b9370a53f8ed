"""One verdict on every engine record: the Python decoder (EngineRecord.unpack) and the C++
decoder (torch.ops.tensorrt.check_record, the code the C++ runtime builds engines with)
accept and reject exactly the same mutated records."""
from __future__ import annotations

import random
import struct

import pytest
import torch

from torch_tensorrt_rtx.runtime import _native
from torch_tensorrt_rtx.runtime import LAYOUT, EngineRecord, EngineRecordError

pytestmark = pytest.mark.skipif(not _native.runtime_available(),
                                reason="C++ runtime not built: run scripts/build_native.sh")

BAD_UTF8 = [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80", b"\xe2\x82",
            b"\xf0\x9f\x98", b"\xf5\x80\x80\x80", b"\xe0\x80\x80"]
GOOD_UTF8 = [b"\xc3\xa9", b"\xe2\x82\xac", b"\xf0\x9f\x98\x80", b"\xed\x9f\xbf", b"\xf4\x8f\xbf\xbf", b""]


def _pack(fields, count=None, abi=LAYOUT.abi_version):
    out = bytearray(struct.pack("<8sII", LAYOUT.pack_magic, abi, len(fields) if count is None else count))
    for f in fields:
        out += struct.pack("<Q", len(f)) + f
    return bytes(out)


def _base_records():
    return [
        EngineRecord.new(b"\x00\xffengine", name="blk0", input_names=["x"], output_names=["y"]),
        EngineRecord.new(bytes(range(256)), name="blk\u00e9\u20ac", input_names=["a", "b"], output_names=["c"],
                         device="0%8%9%RTX", metadata={"k": [1, 2]}, target_platform="linux_x86_64"),
    ]


def _mutations(rng: random.Random, n: int):
    bases = [r.to_list() for r in _base_records()]
    engine_index = LAYOUT.index("ENGINE")
    for _ in range(n):
        fields = list(rng.choice(bases))
        packed = bytearray(_pack(fields))
        kind = rng.randrange(8)
        if kind == 0:  # flip bits
            for _ in range(rng.randint(1, 3)):
                packed[rng.randrange(len(packed))] ^= 1 << rng.randrange(8)
        elif kind == 1:  # truncate
            del packed[rng.randrange(len(packed)):]
        elif kind == 2:  # trailing bytes
            packed += bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif kind in (3, 4):  # a text (or the engine) field with bad or good UTF-8 spliced in
            i = rng.randrange(len(fields))
            piece = rng.choice(BAD_UTF8 if kind == 3 else GOOD_UTF8)
            pos = rng.randint(0, len(fields[i]))
            fields[i] = fields[i][:pos] + piece + fields[i][pos:]
            packed = bytearray(_pack(fields))
        elif kind == 5:  # wrong field count
            packed = bytearray(_pack(fields, count=len(fields) + rng.choice([-1, 1, 1000])))
        elif kind == 6:  # fields added or removed
            packed = bytearray(_pack(fields + [b"x"] if rng.random() < 0.5 else fields[:-1]))
        else:  # a length prefix changed
            offset = 16 + sum(8 + len(f) for f in fields[:rng.randrange(len(fields))])
            struct.pack_into("<Q", packed, offset, struct.unpack_from("<Q", packed, offset)[0] + rng.choice([-1, 1, 2**40]))
        yield bytes(packed), engine_index


def _python_verdict(data: bytes):
    try:
        EngineRecord.unpack(data)
        return True, ""
    except EngineRecordError as exc:
        return False, str(exc)


def _cxx_verdict(data: bytes):
    tensor = torch.frombuffer(bytearray(data), dtype=torch.uint8) if data else torch.empty(0, dtype=torch.uint8)
    error = str(torch.ops.tensorrt.check_record(tensor))
    return error == "", error


def test_python_and_cxx_decoders_agree_on_mutated_records():
    rng = random.Random(20261130)
    disagreements, accepted, rejected = [], 0, 0
    for data, _ in _mutations(rng, 6000):
        (py_ok, py_err), (cc_ok, cc_err) = _python_verdict(data), _cxx_verdict(data)
        if py_ok != cc_ok:
            disagreements.append((data[:48], py_err, cc_err))
        accepted += py_ok
        rejected += not py_ok
    assert not disagreements, f"{len(disagreements)} different verdicts, e.g. {disagreements[:3]}"
    assert accepted > 300 and rejected > 3000, (accepted, rejected)


@pytest.mark.parametrize("piece", BAD_UTF8)
def test_non_utf8_text_is_rejected_by_both_naming_the_field(piece):
    fields = _base_records()[0].to_list()
    fields[LAYOUT.index("NAME")] = b"blk" + piece
    data = _pack(fields)
    for ok, error in (_python_verdict(data), _cxx_verdict(data)):
        assert not ok and "NAME is not UTF-8" in error, error


def test_trailing_bytes_are_rejected_by_both():
    data = _pack(_base_records()[0].to_list()) + b"\x00"
    for ok, error in (_python_verdict(data), _cxx_verdict(data)):
        assert not ok and "1 trailing bytes" in error, error
