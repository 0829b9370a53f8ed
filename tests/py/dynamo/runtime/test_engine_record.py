"""Engine record: fields equal to the layout, list and packed round trips, and every error path."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from torch_tensorrt_rtx.runtime import LAYOUT, EngineRecord, EngineRecordError, RTXGPUUnavailableError
from torch_tensorrt_rtx.runtime.device import check_engine


def _record(engine) -> EngineRecord:
    return EngineRecord.new(engine, name="blk0", input_names=["x"], output_names=["y"],
                            compute_capabilities=["SM89", "sm120"])


def test_record_attributes_are_the_layout_fields():
    # EngineRecord spells its fields out; they must be the layout's, in order, ABI_VERSION aside.
    attributes = [field.name for field in dataclasses.fields(EngineRecord)]
    assert attributes == [f.lower() for f in LAYOUT.fields if f != "ABI_VERSION"]
    assert LAYOUT.sentinel == "<unset>" and LAYOUT.separator == "%"


def test_list_round_trip_with_real_engine(tiny_engine_bytes):
    rec = _record(tiny_engine_bytes)
    fields = rec.to_list()
    assert len(fields) == LAYOUT.num_fields and all(isinstance(f, bytes) for f in fields)
    assert fields[LAYOUT.index("ENGINE")] == tiny_engine_bytes
    assert fields[LAYOUT.index("COMPUTE_CAPABILITIES")] == b"SM89%SM120"
    back = EngineRecord.from_list(fields)
    assert bytes(back.engine) == tiny_engine_bytes
    assert back.input_names == ["x"] and back.output_names == ["y"]
    assert back.target_capabilities == ["SM89", "SM120"]
    assert back.engine_flavor == "tensorrt_rtx"


def test_absent_optional_field_uses_sentinel_and_default_build_is_portable():
    rec = EngineRecord(engine=b"e", name=None)
    fields = rec.to_list()
    assert fields[LAYOUT.index("NAME")] == LAYOUT.sentinel.encode()
    assert fields[LAYOUT.index("COMPUTE_CAPABILITIES")] == LAYOUT.portable.encode()
    back = EngineRecord.from_list(fields)
    assert back.name is None and back.target_capabilities is None


@pytest.mark.parametrize("bad", [b"", b"sm86", b"SM8", b"SM1234", b"SM86%", b"GPU", b"<unset>"])
def test_compute_capabilities_are_portable_or_sm_names(bad):
    fields = _record(b"e").to_list()
    fields[LAYOUT.index("COMPUTE_CAPABILITIES")] = bad
    with pytest.raises(EngineRecordError, match="COMPUTE_CAPABILITIES is"):
        EngineRecord.from_list(fields)


def test_pack_round_trip_does_not_copy_the_engine(tiny_engine_bytes):
    packed = _record(tiny_engine_bytes).pack()
    back = EngineRecord.unpack(packed)
    assert isinstance(back.engine, memoryview) and bytes(back.engine) == tiny_engine_bytes
    assert back.engine.obj is packed  # a view of the input buffer, not a copy
    offset = bytes(packed).find(tiny_engine_bytes)
    packed[offset] ^= 0xFF  # mutating the buffer shows through the unpacked record
    assert bytes(back.engine[:1]) == bytes([tiny_engine_bytes[0] ^ 0xFF])


def test_non_utf8_text_field_is_an_engine_record_error():
    fields = _record(b"e").to_list()
    fields[LAYOUT.index("NAME")] = b"\xff\xfe"
    with pytest.raises(EngineRecordError, match="NAME is not UTF-8"):
        EngineRecord.from_list(fields)


def test_tensor_round_trip_shares_memory(tiny_engine_bytes):
    t = _record(tiny_engine_bytes).to_tensor()
    assert t.dtype == torch.uint8 and t.dim() == 1
    back = EngineRecord.from_tensor(t)
    assert bytes(back.engine) == tiny_engine_bytes
    eng_offset = bytes(t.numpy()).find(tiny_engine_bytes)
    t[eng_offset] += 1
    assert bytes(back.engine) != tiny_engine_bytes  # proves it is a view of the tensor


def test_wrong_abi_names_expected_and_found():
    fields = _record(b"e").to_list()
    fields[LAYOUT.index("ABI_VERSION")] = b"7"
    expected = rf"expected {LAYOUT.abi_version} \(or {LAYOUT.previous_abi_version}\)"
    with pytest.raises(EngineRecordError, match=f"{expected}, found '7'"):
        EngineRecord.from_list(fields)
    packed = _record(b"e").pack()
    packed[8] = 9  # u32 ABI in the header
    with pytest.raises(EngineRecordError, match=f"{expected}, found '9'"):
        EngineRecord.unpack(packed)


def test_wrong_length_names_expected_and_found():
    fields = _record(b"e").to_list()
    with pytest.raises(EngineRecordError,
                       match=f"expected {LAYOUT.num_fields} fields.*found {LAYOUT.num_fields - 1}"):
        EngineRecord.from_list(fields[:-1])
    with pytest.raises(EngineRecordError, match=f"found {LAYOUT.num_fields + 1}"):
        EngineRecord.from_list(fields + [b"extra"])


@pytest.mark.parametrize("cut", [3, 20, -1])
def test_truncated_packed_record(cut):
    packed = bytes(_record(b"engine-bytes" * 10).pack())
    with pytest.raises(EngineRecordError, match="truncated"):
        EngineRecord.unpack(packed[:cut])


def test_trailing_bytes_and_bad_magic_are_rejected():
    packed = bytes(_record(b"e").pack())
    with pytest.raises(EngineRecordError, match="trailing"):
        EngineRecord.unpack(packed + b"x")
    with pytest.raises(EngineRecordError, match="magic"):
        EngineRecord.unpack(b"NOTAREC!" + packed[8:])


def test_separator_in_binding_name_is_rejected():
    with pytest.raises(EngineRecordError, match="separator"):
        EngineRecord.new(b"e", name="n", input_names=["a%b"], output_names=["y"])


def test_garbage_engine_bytes_detected_by_real_tensorrt_rtx_on_cpu(tiny_engine_bytes):
    trt = pytest.importorskip("tensorrt_rtx")
    runtime = trt.Runtime(trt.Logger(trt.Logger.ERROR))
    record = _record(tiny_engine_bytes)
    try:
        check_engine("engine 'ok'", runtime, tiny_engine_bytes, trt, record)  # a real engine passes
    except RTXGPUUnavailableError:
        pass  # or is refused for this machine's GPU (UNSUPPORTED_CC), which is no malformed engine
    with pytest.raises(EngineRecordError, match="'junk'.*not a serialized TensorRT-RTX engine .512 bytes"):
        check_engine("engine 'junk'", runtime, b"\x00garbage" * 64, trt, record)
    with pytest.raises(EngineRecordError, match=r"'empty'.*\(0 bytes\)"):
        check_engine("engine 'empty'", runtime, b"", trt, record)


def test_new_rejects_fields_not_in_the_layout():
    with pytest.raises(TypeError, match="no_such_field"):
        EngineRecord.new(b"e", name="n", input_names=[], output_names=[], no_such_field="x")
