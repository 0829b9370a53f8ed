"""One copy of the engine: TensorRT-RTX streams the serialized engine of a network above
STREAM_ABOVE_BYTES of weights to a temporary file (`SerializedEngine`, hashed on the way), a smaller
one into its host memory (`HostEngine`); packing the engine record copies either straight into the
record's buffer, with the same bytes and SHA-256 either way."""
from __future__ import annotations

import gc
import hashlib
import io
import json
import sys

import pytest
import torch
import torch.nn as nn

import torch_tensorrt_rtx as trtx
from torch_tensorrt_rtx.dynamo.conversion import _engine_builder
from torch_tensorrt_rtx.dynamo.conversion._context import ConversionError
from torch_tensorrt_rtx.dynamo.conversion._engine_builder import HostEngine, SerializedEngine, build_engine
from torch_tensorrt_rtx.dynamo.conversion._interpreter import build_network
from torch_tensorrt_rtx.runtime import EngineRecord
from torch_tensorrt_rtx.runtime.engine_record import engine_offset


def _record(engine):
    return EngineRecord.new(engine, name="blk0", input_names=["x"], output_names=["y"], compute_capabilities=["SM86"])


def test_an_engine_in_a_file_packs_like_the_same_bytes_in_memory():
    data = bytes(range(256)) * 1000 + b"tail"
    engine = SerializedEngine()
    engine.write(data[:1000])
    engine.write(data[1000:])
    assert engine.nbytes == len(data) and engine.sha256 == hashlib.sha256(data).hexdigest()
    packed = _record(engine).pack()
    assert packed == _record(data).pack()
    assert bytes(EngineRecord.unpack(packed).engine) == data
    assert _record(engine).to_list() == _record(data).to_list()


def test_large_chunks_are_hashed_beside_the_file_write_and_timed(monkeypatch):
    monkeypatch.delattr(_engine_builder.os, "pread", raising=False)  # the path where the hash cannot trail the writes
    monkeypatch.setattr(_engine_builder, "_HASH_BESIDE_BYTES", 1000)  # chunks of 1000 bytes or more: a thread
    data = bytes(range(256)) * 40 + b"x"
    engine = SerializedEngine()
    assert engine._trailing is None
    for start in range(0, len(data), 3000):  # 3000-byte chunks on the hash thread, the last one inline
        assert engine.write(data[start:start + 3000]) == len(data[start:start + 3000])
    assert engine.nbytes == len(data) and engine.tobytes() == data
    assert engine.sha256 == hashlib.sha256(data).hexdigest() and engine.write_seconds > 0
    engine.close()


def test_a_host_engine_closed_while_its_hash_runs_waits_for_it(monkeypatch):
    network_def = _small_network()
    engine, _ = build_engine(network_def, label="m", progress=False)
    assert isinstance(engine, HostEngine)
    engine.close()  # joins the hash thread first: releasing the view under it would raise BufferError
    again, _ = build_engine(network_def, label="m2", progress=False)
    data = again.tobytes()
    again.close()
    assert again.sha256 == hashlib.sha256(data).hexdigest()  # still known after close


def test_a_short_buffer_is_refused_with_both_sizes():
    engine = SerializedEngine()
    engine.write(b"abcd")
    try:
        engine.readinto(bytearray(3))
    except ValueError as exc:
        assert "3 bytes, expected 4" in str(exc)
    else:
        raise AssertionError("readinto accepted a buffer of the wrong size")


class Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(8, 4)

    def forward(self, x):
        return torch.relu(self.linear(x))


def test_the_built_engine_is_streamed_and_its_record_holds_it():
    compiled = trtx.compile(Small().eval(), [torch.randn(2, 8)], min_block_size=1, progress=False)
    buffers = [b for name, b in compiled.named_buffers() if name.endswith("_engine")]
    assert len(buffers) == 1
    record = EngineRecord.from_tensor(buffers[0])
    report = compiled.compile_report.engines[0]
    assert memoryview(record.engine).nbytes == report.engine_bytes
    (call,) = [n for n in compiled.graph.nodes if n.target is torch.ops.tensorrt_rtx.execute_engine.default]
    assert json.loads(call.args[2])["sha256"] == hashlib.sha256(record.engine).hexdigest()


def _small_network():
    from torch_tensorrt_rtx.dynamo._export import export_aten
    from torch_tensorrt_rtx.dynamo._settings import CompilationSettings
    from torch_tensorrt_rtx.dynamo.lowering import lower
    from torch_tensorrt_rtx.dynamo.partitioning import partition

    x = torch.randn(2, 8)
    gm = lower(export_aten(Small().eval(), [trtx.Input.from_tensor(x)]).graph_module,
               CompilationSettings().reduced_precision)
    (sub,) = partition(gm, CompilationSettings(min_block_size=1)).submodules.values()
    return build_network(sub, [{}])


def test_build_engine_streams_a_network_above_the_bound_to_a_hashed_file(monkeypatch):
    monkeypatch.setattr(_engine_builder, "STREAM_ABOVE_BYTES", -1)
    engine, seconds = build_engine(_small_network(), label="t", progress=False)
    assert isinstance(engine, SerializedEngine)
    data = engine.tobytes()
    assert seconds > 0 and len(data) == engine.nbytes > 1000
    assert engine.sha256 == hashlib.sha256(data).hexdigest()
    engine.close()


def test_the_weight_bound_chooses_the_path(monkeypatch):
    network_def = _small_network()
    weights = _engine_builder.network_weight_bytes(network_def.network)
    assert weights == (8 * 4 + 4) * 4, weights  # nn.Linear(8, 4) in float32: weight and bias
    monkeypatch.setattr(_engine_builder, "STREAM_ABOVE_BYTES", weights)
    below, _ = build_engine(network_def, label="at", progress=False)
    monkeypatch.setattr(_engine_builder, "STREAM_ABOVE_BYTES", weights - 1)
    above, _ = build_engine(network_def, label="above", progress=False)
    assert isinstance(below, HostEngine) and isinstance(above, SerializedEngine), (below, above)
    below.close()
    above.close()


def test_both_paths_give_the_same_engine_bytes_hash_and_record(monkeypatch):
    network_def = _small_network()
    in_memory, _ = build_engine(network_def, label="m", progress=False)
    monkeypatch.setattr(_engine_builder, "STREAM_ABOVE_BYTES", -1)
    streamed, _ = build_engine(network_def, label="s", progress=False)
    assert isinstance(in_memory, HostEngine) and isinstance(streamed, SerializedEngine)
    assert in_memory.copies_from_memory and not streamed.copies_from_memory  # record pages populated for the first
    data = streamed.tobytes()
    assert in_memory.tobytes() == data and in_memory.nbytes == streamed.nbytes == len(data)
    assert in_memory.sha256 == streamed.sha256 == hashlib.sha256(data).hexdigest()
    assert _record(in_memory).pack() == _record(streamed).pack() == _record(data).pack()
    copied = io.BytesIO()
    in_memory.copy_to(copied)
    assert copied.getvalue() == data
    in_memory.close()
    streamed.close()


def test_a_build_failure_reads_the_same_on_both_paths(monkeypatch):
    network_def = _small_network()
    network = network_def.network
    network.unmark_output(network.get_output(0))  # a network without outputs does not build
    messages = []
    for bound in (1 << 40, -1):  # in memory, streamed
        monkeypatch.setattr(_engine_builder, "STREAM_ABOVE_BYTES", bound)
        with pytest.raises(ConversionError, match="TensorRT-RTX failed to build engine broken: ") as failure:
            build_engine(network_def, label="broken", progress=False)
        messages.append(str(failure.value))
    # TensorRT-RTX's own message names the call it failed in: buildSerializedNetwork[ToStream]
    assert all("Network must have at least one output" in m for m in messages), messages


def test_an_engine_that_cannot_be_written_is_a_build_failure_naming_the_file(monkeypatch):
    def full_disk(self, chunk):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_engine_builder, "STREAM_ABOVE_BYTES", -1)
    monkeypatch.setattr(_engine_builder.SerializedEngine, "write", full_disk)
    compiled = trtx.compile(Small().eval(), [torch.randn(2, 8)], min_block_size=1, progress=False)
    report = compiled.compile_report
    assert not report.engines, report.format()
    reasons = " ".join(report.failed_nodes.values())
    assert "temporary file" in reasons and "No space left on device" in reasons, reasons


def test_the_heap_trimmer_trims_only_when_the_resident_size_grew_a_step(monkeypatch):
    import threading

    readings = iter([100, 105, 120, 112, 115, 130, 125])  # floor 100; 120 >= 110: trim (then 112); 130 >= 122: trim
    done = threading.Event()
    trims = []

    def resident():
        try:
            return next(readings)
        except StopIteration:
            done.set()
            return 125

    monkeypatch.setattr(_engine_builder, "_resident_bytes", resident)
    monkeypatch.setattr(_engine_builder, "_MALLOC_TRIM", lambda pad: trims.append(pad))
    with _engine_builder.HeapTrimmer(step_bytes=10, poll_seconds=0.001) as trimmer:
        assert done.wait(10), "the trimmer thread never polled"
    assert trimmer.trims == 2 and trims == [0, 0]


def test_save_writes_tensors_from_their_memory_and_torch_loads_the_file(tmp_path):
    import tracemalloc

    from torch.export.pt2_archive import _package

    class Big(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("blob_engine", torch.arange(32 << 20, dtype=torch.int64).to(torch.uint8))
            self.linear = nn.Linear(4, 4)

        def forward(self, x):
            return self.linear(x) + self.blob_engine[:4].float()

    program = torch.export.export(Big(), (torch.randn(2, 4),))
    torch_functions = (_package._get_raw_tensor_bytes, _package.PT2ArchiveWriter.write_bytes)
    tracemalloc.start()
    try:
        (tmp_path / "ours").mkdir()
        trtx.save(program, tmp_path / "ours" / "big.pt2")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < (8 << 20), f"save allocated {peak >> 20} MB in Python: a copy of the 32 MB buffer"
    assert (_package._get_raw_tensor_bytes, _package.PT2ArchiveWriter.write_bytes) == torch_functions
    loaded = torch.export.load(tmp_path / "ours" / "big.pt2")
    for name, tensor in program.state_dict.items():
        assert torch.equal(loaded.state_dict[name], tensor), name
    torch.export.save(program, tmp_path / "big.pt2")
    assert (tmp_path / "ours" / "big.pt2").read_bytes() == (tmp_path / "big.pt2").read_bytes(), "not torch's own file"


def test_only_the_saving_thread_writes_in_place():
    import threading

    from torch.export.pt2_archive import _package

    from torch_tensorrt_rtx._archive_in_place import tensor_bytes_in_place

    tensor = torch.arange(64, dtype=torch.uint8)
    other = []
    with tensor_bytes_in_place():
        mine = _package._get_raw_tensor_bytes(tensor)
        worker = threading.Thread(target=lambda: other.append(_package._get_raw_tensor_bytes(tensor)))
        worker.start()
        worker.join()
    assert not isinstance(mine, bytes) and mine.storage.data_ptr() == tensor.data_ptr()
    assert other == [bytes(range(64))], "another thread's save must keep torch's own copy"


def test_the_engine_offset_is_where_a_packed_record_holds_the_engine():
    data = b"engine bytes" * 10
    for name in ("blk0", "_run_on_trt_12", ""):
        packed = EngineRecord.new(data, name=name, input_names=["x"], output_names=["y"]).pack()
        start = engine_offset(name)
        assert bytes(packed[start:start + len(data)]) == data
        assert int.from_bytes(packed[start - 8:start], "little") == len(data)  # the engine's length prefix


def _streamed(data, record_offset):
    engine = SerializedEngine(record_offset)
    for start in range(0, len(data), 5000):
        engine.write(data[start:start + 5000])
    return engine


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_a_streamed_engine_becomes_its_record_without_a_copy(monkeypatch):
    data = bytes(range(256)) * 100
    engine = _streamed(data, engine_offset("blk0"))

    def no_copy(self, buffer):
        raise AssertionError("the engine was copied into its record")

    monkeypatch.setattr(SerializedEngine, "readinto", no_copy)
    record = _record(engine).to_tensor()
    engine.close()  # the unnamed file lives on in the mapping
    gc.collect()
    assert bytes(record.numpy()) == bytes(_record(data).pack())
    assert EngineRecord.from_tensor(record).engine == data
    assert "(deleted)" in _mapping_of(record.data_ptr()), "the record is not a mapping of the (unnamed) file"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_a_file_is_mapped_as_one_record_only():
    # A mapping sees later writes to the file on pages it did not write itself: a second record
    # (another header in the same room) is a copy, and the first keeps its bytes.
    data = bytes(range(256)) * 40
    engine = _streamed(data, engine_offset("blk0"))
    first = _record(engine).to_tensor()
    other = EngineRecord.new(engine, name="blk1", input_names=["a"], output_names=["b"]).to_tensor()
    assert engine.mapped and "(deleted)" not in _mapping_of(other.data_ptr())
    engine.close()
    assert bytes(first.numpy()) == bytes(_record(data).pack())
    assert EngineRecord.from_tensor(other).name == "blk1" and EngineRecord.from_tensor(other).engine == data


def _mapping_of(address):
    """The /proc/self/maps line of the mapping holding `address` (Linux)."""
    with open("/proc/self/maps") as maps:
        for line in maps:
            low, high = (int(x, 16) for x in line.split()[0].split("-"))
            if low <= address < high:
                return line
    raise AssertionError(f"address {address:#x} is in no mapping")


def test_writing_to_a_mapped_record_never_reaches_the_engine_file():
    data = b"\x01" * 4096
    engine = _streamed(data, engine_offset("blk0"))
    record = _record(engine).to_tensor()
    record[engine_offset("blk0")] = 7  # copy-on-write: this page becomes the record's own
    assert engine.tobytes() == data and record[engine_offset("blk0")] == 7
    engine.close()


def test_an_engine_without_room_for_the_header_is_copied_into_its_record():
    data = bytes(range(256)) * 20
    for room in (0, engine_offset("blk0") + 1):  # no room, room for another name
        engine = _streamed(data, room)
        assert engine.map_record(b"x" * engine_offset("blk0"), b"") is None
        record = _record(engine).to_tensor()
        engine.close()
        assert bytes(record.numpy()) == bytes(_record(data).pack())


def test_a_streamed_compile_maps_its_record_and_saves_and_loads_it(monkeypatch, tmp_path):
    monkeypatch.setattr(_engine_builder, "STREAM_ABOVE_BYTES", -1)
    compiled = trtx.compile(Small().eval(), [torch.randn(2, 8)], min_block_size=1, progress=False)
    (record,) = [b for name, b in compiled.named_buffers() if name.endswith("_engine")]
    engine = EngineRecord.from_tensor(record).engine
    (call,) = [n for n in compiled.graph.nodes if n.target is torch.ops.tensorrt_rtx.execute_engine.default]
    assert json.loads(call.args[2])["sha256"] == hashlib.sha256(engine).hexdigest()
    path = tmp_path / "small.pt2"
    trtx.save(compiled, str(path), inputs=[torch.randn(2, 8)])
    loaded = trtx.load(str(path))
    (again,) = [b for name, b in loaded.named_buffers() if name.endswith("_engine")]
    assert torch.equal(again, record)


@pytest.mark.parametrize("expected", [100, 3 * 5000, 1 << 20])  # less, about, more than the engine
def test_pages_made_ahead_of_the_engine_never_change_its_bytes_or_record(expected):
    data = bytes(range(256)) * 59
    engine = SerializedEngine(engine_offset("blk0"), expected_bytes=expected)
    prefault = engine._prefault
    prefault.join(timeout=10)  # made in full (a test-sized file) before the first chunk
    assert prefault.written == expected
    for start in range(0, len(data), 5000):
        engine.write(data[start:start + 5000])
    assert engine.tobytes() == data and engine.sha256 == hashlib.sha256(data).hexdigest()
    record = _record(engine).to_tensor()
    engine.close()
    assert bytes(record.numpy()) == bytes(_record(data).pack())  # the zeros beyond a smaller engine are cut


def test_the_first_chunk_stops_the_prefault_before_it_is_written(monkeypatch):
    monkeypatch.setattr(_engine_builder._Prefault, "_STEP", 4096)
    data = b"\xff" * 20000
    engine = SerializedEngine(16, expected_bytes=256 << 20)  # far more than it can make before the chunk
    engine.write(data)
    assert engine._prefault is None and engine.tobytes() == data
    engine.close()


def test_a_streamed_build_makes_the_engine_pages_ahead(monkeypatch):
    made = []
    real = _engine_builder._Prefault.__init__

    def spy(self, fd, offset, nbytes):
        made.append((offset, nbytes))
        real(self, fd, offset, nbytes)

    monkeypatch.setattr(_engine_builder._Prefault, "__init__", spy)
    monkeypatch.setattr(_engine_builder, "STREAM_ABOVE_BYTES", -1)
    network_def = _small_network()
    engine, _ = build_engine(network_def, label="t", progress=False, record_offset=99)
    assert made == [(99, _engine_builder.network_weight_bytes(network_def.network))]
    assert engine.tobytes()[:4] != bytes(4)
    engine.close()


def test_no_pages_are_made_ahead_for_an_engine_built_without_its_weights(monkeypatch):
    made = []
    monkeypatch.setattr(_engine_builder, "_Prefault", lambda *args: made.append(args))
    monkeypatch.setattr(_engine_builder, "STREAM_ABOVE_BYTES", -1)
    monkeypatch.setattr(_engine_builder, "refit_flags", lambda settings: [])  # STRIP_PLAN needs a GPU to build
    from torch_tensorrt_rtx.dynamo._settings import CompilationSettings

    engine, _ = build_engine(_small_network(), label="t", progress=False,
                             settings=CompilationSettings(strip_engine_weights=True))
    assert made == [] and engine.nbytes > 0
    engine.close()
