"""One verdict on every engine record: the Python decoder (EngineRecord.unpack) and the C++
decoder (the test-only op ttrx_test.check_record, which runs the code the C++ runtime builds
engines with, in a child process: scripted_child.py) accept and reject exactly the same mutated
records, of the current ABI version and of the previous one."""
from __future__ import annotations

import base64
import random
import struct

from torch_tensorrt_rtx.runtime import LAYOUT, EngineRecord, EngineRecordError

from scripted_child import cxx_record_verdicts

BAD_UTF8 = [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80", b"\xe2\x82",
            b"\xf0\x9f\x98", b"\xf5\x80\x80\x80", b"\xe0\x80\x80"]
GOOD_UTF8 = [b"\xc3\xa9", b"\xe2\x82\xac", b"\xf0\x9f\x98\x80", b"\xed\x9f\xbf", b"\xf4\x8f\xbf\xbf", b""]


def _pack(fields, count=None):
    abi = int(fields[0]) if fields and fields[0].isdigit() and len(fields[0]) < 9 else LAYOUT.abi_version
    out = bytearray(struct.pack("<8sII", LAYOUT.pack_magic, abi, len(fields) if count is None else count))
    for f in fields:
        out += struct.pack("<Q", len(f)) + f
    return bytes(out)


def _base_records():
    return [
        EngineRecord.new(b"\x00\xffengine", name="blk0", input_names=["x"], output_names=["y"]),
        EngineRecord.new(bytes(range(256)), name="blk\u00e9\u20ac", input_names=["a", "b"], output_names=["c"],
                         compute_capabilities=["SM86", "SM120"]),
    ]


def _metadata(text: bytes) -> bytes:
    return base64.b64encode(text)


def previous_list(metadata: bytes, engine: bytes = b"\x00\xffengine") -> list:
    """A record of the previous ABI version, as its list of fields."""
    values = {"ABI_VERSION": str(LAYOUT.previous_abi_version).encode(), "NAME": b"blk0", "DEVICE": b"0%8%9%RTX",
              "ENGINE": engine, "INPUT_BINDING_NAMES": b"x", "OUTPUT_BINDING_NAMES": b"y", "HW_COMPATIBLE": b"0",
              "SERIALIZED_METADATA": metadata, "TARGET_PLATFORM": b"linux_x86_64",
              "ENGINE_FLAVOR": b"tensorrt_rtx", "REQUIRES_OUTPUT_ALLOCATOR": b"0"}
    return [values[f] for f in LAYOUT.previous_fields]


PREVIOUS_METADATA = [
    _metadata(b'{"compute_capabilities": ["SM86", "sm89"], "fx_nodes": []}'),
    _metadata(b'{"compute_capabilities": "portable", "name": "blk0"}'),
    _metadata(b'{"k": [1, 2]}'),
    LAYOUT.sentinel.encode(),
]


def _mutations(rng: random.Random, n: int):
    bases = [r.to_list() for r in _base_records()] + [previous_list(m) for m in PREVIOUS_METADATA]
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


def _both(records: list) -> list:
    """[(python ok, python error, c++ ok, c++ error)] for each packed record."""
    cxx = cxx_record_verdicts(records)
    return [(*_python_verdict(data), error == "", error) for data, error in zip(records, cxx)]


def test_python_and_cxx_decoders_agree_on_mutated_records():
    rng = random.Random(20261130)
    records = [data for data, _ in _mutations(rng, 6000)]
    disagreements, accepted = [], 0
    for data, (py_ok, py_err, cc_ok, cc_err) in zip(records, _both(records)):
        if py_ok != cc_ok:
            disagreements.append((data[:48], py_err, cc_err))
        accepted += py_ok
    assert not disagreements, f"{len(disagreements)} different verdicts, e.g. {disagreements[:3]}"
    assert accepted > 300 and len(records) - accepted > 3000, accepted


def test_both_decoders_upgrade_previous_records_alike():
    bad_metadata = [b"not base64!", _metadata(b'{"compute_capabilities": 3}'),
                    _metadata(b'{"compute_capabilities": []}'), _metadata(b'{"compute_capabilities": ["SM86",'),
                    b"QQ=", b"Q===", _metadata(b'{"compute_capabilities": "' + b"S" * 17 + b'"}')]
    records = [_pack(previous_list(m)) for m in PREVIOUS_METADATA + bad_metadata]
    verdicts = _both(records)
    assert [(py_ok, cc_ok) for py_ok, _, cc_ok, _ in verdicts] == [(True, True)] * 4 + [(False, False)] * 7
    upgraded = [EngineRecord.unpack(r).compute_capabilities for r in records[:4]]
    assert upgraded == ["SM86%SM89", "portable", "portable", "portable"]


def test_non_utf8_text_and_trailing_bytes_are_rejected_by_both_naming_what():
    records, expected = [], []
    for piece in BAD_UTF8:
        fields = _base_records()[0].to_list()
        fields[LAYOUT.index("NAME")] = b"blk" + piece
        records.append(_pack(fields))
        expected.append("NAME is not UTF-8")
    records.append(_pack(_base_records()[0].to_list()) + b"\x00")
    expected.append("1 trailing bytes")
    for (py_ok, py_err, cc_ok, cc_err), want in zip(_both(records), expected):
        for ok, error in ((py_ok, py_err), (cc_ok, cc_err)):
            assert not ok and want in error, error
