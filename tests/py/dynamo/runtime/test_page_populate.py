"""page_populate: a big fresh buffer's pages mapped in one call before packing; same bytes either way."""
import sys

import pytest
import torch

from torch_tensorrt_rtx.runtime import page_populate
from torch_tensorrt_rtx.runtime.engine_record import EngineRecord


def _record(nbytes):
    engine = bytes(range(256)) * (nbytes // 256)
    return EngineRecord.new(engine, name="e", input_names=["x"], output_names=["y"])


def test_a_big_record_packs_to_the_same_bytes_with_its_pages_populated(monkeypatch):
    calls = []
    real = page_populate.populate_for_writing
    monkeypatch.setattr("torch_tensorrt_rtx.runtime.engine_record.populate_for_writing",
                        lambda t: calls.append(t.numel()) or real(t))
    record = _record(4 << 20)
    tensor = record.to_tensor()
    assert calls == [tensor.numel()]
    assert bytes(tensor.numpy()) == bytes(record.pack())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="madvise(MADV_POPULATE_WRITE) is Linux's")
def test_populated_pages_keep_what_is_written_into_them():
    tensor = torch.empty(4 << 20, dtype=torch.uint8)
    populated = page_populate.populate_for_writing(tensor)
    assert populated or page_populate._unsupported  # a kernel before 5.14 says EINVAL once
    tensor.fill_(7)
    assert int(tensor.sum()) == 7 * (4 << 20)


def test_small_or_non_cpu_buffers_are_left_alone(monkeypatch):
    monkeypatch.setattr(page_populate, "_MADVISE", lambda *a: pytest.fail("madvise called"))
    assert page_populate.populate_for_writing(torch.empty(1000, dtype=torch.uint8)) is False
    assert page_populate.populate_for_writing(torch.empty(4 << 20, dtype=torch.uint8, device="meta")) is False


def test_a_refusing_kernel_is_asked_once(monkeypatch):
    calls = []
    monkeypatch.setattr(page_populate, "_MADVISE", lambda *a: calls.append(a) or -1)
    monkeypatch.setattr(page_populate, "_unsupported", False)
    big = torch.empty(2 << 20, dtype=torch.uint8)
    assert page_populate.populate_for_writing(big) is False
    assert page_populate.populate_for_writing(big) is False
    assert len(calls) == 1


class _Reader:
    """An engine that reads itself into the record (as a streamed engine's file does)."""

    def __init__(self, data, from_memory):
        self.data, self.nbytes = data, len(data)
        if from_memory:
            self.copies_from_memory = True

    def readinto(self, buffer):
        memoryview(buffer)[:] = self.data


@pytest.mark.parametrize("from_memory", [True, False])
def test_only_an_engine_copied_from_memory_gets_its_pages_populated(monkeypatch, from_memory):
    calls = []
    monkeypatch.setattr("torch_tensorrt_rtx.runtime.engine_record.populate_for_writing", calls.append)
    data = bytes(range(256)) * (8 << 12)
    record = EngineRecord.new(_Reader(data, from_memory), name="e", input_names=["x"], output_names=["y"])
    tensor = record.to_tensor()
    assert len(calls) == (1 if from_memory else 0)  # a read from a file is faster into pages it faults in
    assert bytes(tensor.numpy()) == bytes(_record(len(data)).pack())
