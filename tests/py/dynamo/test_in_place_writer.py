"""TensorRT-RTX's streamed engine chunks reach the writer in place (a memoryview of TensorRT-RTX's own
buffer, no `bytes` copy by the Python binding) inside the writer's `with` block, and through the
binding's copy outside it or wherever the in-place route cannot be verified; the engine's bytes are
the same either way."""
from __future__ import annotations

import ctypes
import hashlib
import sys

import pytest
import tensorrt_rtx as trt

from torch_tensorrt_rtx.dynamo.conversion import _in_place_writer, _vtable
from torch_tensorrt_rtx.dynamo.conversion._in_place_writer import InPlaceStreamWriter

from .test_engine_streaming import _small_network

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the in-place route is Linux-only")


class Collect(InPlaceStreamWriter):
    """Keeps each chunk's bytes and type; `keep` also keeps the chunk object itself."""

    def __init__(self, keep: bool = False) -> None:
        super().__init__()
        self.data = bytearray()
        self.kinds = []
        self.kept = []
        self.keep = keep

    def write_chunk(self, data) -> int:
        self.kinds.append(type(data))
        self.data += data
        if self.keep:
            self.kept.append(data)
        return len(data)


def _write_through_binding(writer: trt.IStreamWriter, payload: bytes) -> int:
    """The binding's own IStreamWriter.write: a C++ virtual call on the writer's object, as
    TensorRT-RTX makes during a build."""
    buffer = ctypes.create_string_buffer(payload, len(payload))
    new_capsule = ctypes.PYFUNCTYPE(ctypes.py_object, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p)(
        ("PyCapsule_New", ctypes.pythonapi))
    return trt.IStreamWriter.write(writer, new_capsule(ctypes.addressof(buffer), None, None), len(payload))


def _build(writer: InPlaceStreamWriter, network_def=None) -> bytes:
    network_def = network_def or _small_network()
    config = network_def.builder.create_builder_config()
    assert network_def.builder.build_serialized_network_to_stream(network_def.network, config, writer)
    return bytes(writer.data)


@linux_only
def test_inside_the_block_chunks_arrive_in_place_and_outside_through_the_copy():
    writer = Collect()
    with writer:
        assert writer.in_place
        assert _write_through_binding(writer, b"in place") == 8
    assert _write_through_binding(writer, b"copied") == 6  # the object's own virtual table is back
    assert writer.kinds == [memoryview, bytes] and bytes(writer.data) == b"in placecopied"


@linux_only
def test_a_streamed_build_gives_the_same_engine_in_place_as_through_the_copy():
    network_def = _small_network()
    copied = Collect()
    through_copy = _build(copied, network_def)
    in_place = Collect()
    with in_place:
        engine = _build(in_place, network_def)
    assert set(copied.kinds) == {bytes} and set(in_place.kinds) == {memoryview}, (copied.kinds, in_place.kinds)
    assert len(engine) > 1000 and hashlib.sha256(engine).digest() == hashlib.sha256(through_copy).digest()


@linux_only
def test_a_chunk_kept_after_its_call_cannot_be_read():
    writer = Collect(keep=True)
    with writer:
        _write_through_binding(writer, b"chunk")
    with pytest.raises(ValueError, match="released"):
        bytes(writer.kept[0])  # TensorRT-RTX reuses its buffer: a kept view must not read it


def test_where_the_virtual_table_cannot_be_verified_the_binding_copies(monkeypatch, caplog):
    monkeypatch.setattr(_in_place_writer, "_binding_file", lambda: "/nonexistent/tensorrt_rtx.so")
    monkeypatch.setattr(_vtable, "_VERIFIED", {})  # as in a process where no writer was verified yet
    writer = Collect()
    with caplog.at_level("DEBUG", logger=_in_place_writer.__name__), writer:
        assert not writer.in_place
        engine = _build(writer)
    assert set(writer.kinds) == {bytes} and len(engine) > 1000
    assert "binding's copy" in caplog.text


@linux_only
def test_a_virtual_table_entry_that_does_not_route_the_probe_restores_the_object(monkeypatch, caplog):
    # Replacing the entry before `write` (a destructor, never called inside the block) leaves the
    # probe's virtual call on the binding's write: the check must notice and put the table back.
    monkeypatch.setattr(_in_place_writer, "_WRITE_ENTRY", _in_place_writer._WRITE_ENTRY - 1)
    writer = Collect()
    with caplog.at_level("DEBUG", logger=_in_place_writer.__name__), writer:
        assert not writer.in_place
        assert _write_through_binding(writer, b"after") == 5
    assert "probe chunk did not arrive in place" in caplog.text
    assert writer.kinds == [bytes] and bytes(writer.data) == b"after", "the probe itself must not be written"


def test_a_writer_without_write_chunk_names_the_method():
    class Incomplete(InPlaceStreamWriter):
        pass

    with pytest.raises(NotImplementedError, match=r"Incomplete must implement write_chunk\(data\) -> int"):
        Incomplete().write(b"x")


def test_the_off_switch_keeps_the_binding_copy(monkeypatch, caplog):
    monkeypatch.setenv(_in_place_writer.OFF_SWITCH_ENV, "0")
    writer = Collect()
    with caplog.at_level("DEBUG", logger=_in_place_writer.__name__), writer:
        assert not writer.in_place
        assert _write_through_binding(writer, b"copied") == 6
    assert writer.kinds == [bytes] and f"{_in_place_writer.OFF_SWITCH_ENV} is off" in caplog.text
