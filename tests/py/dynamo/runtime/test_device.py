"""Which GPUs an engine runs on: derived from the engine record and TensorRT-RTX, in one place
(torch_tensorrt_rtx.runtime.device). GPUs are faked by replacing the device query."""
from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest
import torch

from torch_tensorrt_rtx.runtime import EngineRecord, RTXGPUUnavailableError, TRTModule, device

sys.path.insert(0, str(Path(__file__).parent))
import trt_double  # noqa: E402

trt = pytest.importorskip("tensorrt_rtx")
REPO = Path(__file__).resolve().parents[4]


def _record(targets=None, engine=b"x" * 16):
    return EngineRecord.new(engine, name="blk", input_names=["x"], output_names=["y"],
                            compute_capabilities=targets or ())


@pytest.fixture
def fake_gpu(monkeypatch):
    """fake_gpu((major, minor)) makes the current CUDA device look like that GPU."""
    def install(capability):
        found = f"cuda:0 Fake GPU with compute capability {capability[0]}.{capability[1]}"
        monkeypatch.setattr(device, "_device", lambda: (0, capability, found))
        device.supported_gpu.cache_clear()
    yield install
    device.supported_gpu.cache_clear()


def test_the_library_list_comes_from_tensorrt_rtx():
    names = [n for n in trt.ComputeCapability.__members__ if n.startswith("SM")]
    assert device.library_compute_capabilities() == tuple(sorted(device.sm_to_capability(n) for n in names))
    assert (7, 5) in device.library_compute_capabilities()  # 1.7 knows Turing
    newer = types.SimpleNamespace(ComputeCapability=types.SimpleNamespace(
        __members__={"NONE": 0, "CURRENT": 1, "SM86": 86, "SM130": 130}))
    assert device.portable_compute_capabilities(newer) == ((8, 6), (13, 0))  # no hand-written list
    assert not device.is_supported_compute_capability(8, 9, newer)


@pytest.mark.parametrize("capability,portable", [((7, 5), False), ((8, 0), True), ((8, 6), True),
                                                 ((8, 9), True), ((9, 0), False), ((12, 0), True),
                                                 ((12, 1), True), ((13, 0), True)])
def test_portable_engines(capability, portable):
    assert device.runs_on(capability) is portable


def test_explicit_targets_from_the_record_decide():
    record = _record(["SM75", "sm120"])
    targets = device.engine_compute_capabilities(record)
    assert targets == ((7, 5), (12, 0))
    assert device.runs_on((7, 5), targets) and device.runs_on((12, 0), targets)
    assert not device.runs_on((8, 6), targets)
    assert device.engine_compute_capabilities(_record("portable")) is None
    assert device.engine_compute_capabilities(_record()) is None
    assert device.engine_compute_capabilities(_record("SM86")) == ((8, 6),)


def test_bad_capability_name_is_named():
    with pytest.raises(ValueError, match=r"'GTX1080'.*expected SM followed by digits"):
        device.sm_to_capability("GTX1080")


def test_turing_runs_an_engine_built_for_it_but_not_a_portable_one(fake_gpu):
    fake_gpu((7, 5))
    assert device.require_supported_gpu("m", _record(["SM75"])) == 0
    with pytest.raises(RTXGPUUnavailableError) as info:
        device.require_supported_gpu("TRTModule 'blk'", _record())
    msg = str(info.value)
    for part in ("TRTModule 'blk'", "8.0, 8.6, 8.9, 12.0, 12.1 or newer", "7.5 only for engines built with",
                 "found: cuda:0 Fake GPU with compute capability 7.5", "torch_tensorrt_rtx.verify"):
        assert part in msg, msg


def test_engine_built_for_other_gpus_names_its_targets(fake_gpu):
    fake_gpu((8, 9))
    assert device.supported_gpu().supported  # portable engines would run
    with pytest.raises(RTXGPUUnavailableError) as info:
        device.require_supported_gpu("TRTModule 'blk'", _record(["SM86", "SM120"]))
    msg = str(info.value)
    assert "8.6 or 12.0 (the compute capabilities the engine was built for)" in msg
    assert "compute capability 8.9" in msg and "torch_tensorrt_rtx.verify" in msg


def test_hopper_is_refused(fake_gpu):
    fake_gpu((9, 0))
    status = device.supported_gpu()
    assert not status.supported and status.capability == (9, 0)
    assert "cannot run this engine on" in status.reason


def test_library_verdict_unsupported_cc_becomes_the_clear_error(monkeypatch, fake_gpu):
    fake_gpu((8, 9))  # a GPU the record names: only the library's verdict refuses it
    monkeypatch.setattr(trt_double.Runtime, "get_engine_validity",
                        lambda self, buffer: (trt_double.EngineValidity.INVALID,
                                              int(trt_double.EngineInvalidityDiagnostics.UNSUPPORTED_CC)))
    engine = trt_double.make_engine_bytes({"x": ((1, 4), (2, 4), (8, 4))}, ["y"])
    module = TRTModule(_record(["SM89"], engine), trt_api=trt_double.TrtDouble())
    with pytest.raises(RTXGPUUnavailableError) as info:
        module(torch.ones(2, 4))
    assert "(UNSUPPORTED_CC)" in str(info.value)
    assert "it was built for SM89." in str(info.value)


def test_library_verdict_valid_engine_passes():
    engine = trt_double.make_engine_bytes({"x": ((1, 4), (2, 4), (8, 4))}, ["y"])
    y = TRTModule(_record(None, engine), trt_api=trt_double.TrtDouble())(torch.tensor([[-1.0, 2.0, -3.0, 4.0]]))
    assert y.tolist() == [[0.0, 2.0, 0.0, 4.0]]


def test_no_capability_list_is_written_by_hand_outside_device_py():
    hand_list = re.compile(r"8\.0,? 8\.6|8\.6,? 8\.9|8\.9,? (or |and )?12\.|\(8, ?[06]\), ?\(8, ?[69]\)")
    offenders = []
    for root, pattern in (("py/torch_tensorrt_rtx", "*.py"), ("core", "*.cpp"), ("core", "*.h"),
                          ("examples", "*.py"), ("scripts", "*")):
        for path in (REPO / root).rglob(pattern):
            if path.is_file() and path.name != "device.py":
                for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                    if hand_list.search(line):
                        offenders.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
    assert not offenders, "supported GPUs are decided in runtime/device.py only:\n" + "\n".join(offenders)
