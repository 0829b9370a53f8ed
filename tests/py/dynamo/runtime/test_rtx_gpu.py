"""The same behaviours on a real RTX GPU (skipped with a reason where there is none)."""
from __future__ import annotations

import pytest
import torch

from torch_tensorrt_rtx import runtime
from torch_tensorrt_rtx.runtime import EngineRecord, EngineRecordError, InputShapeError, TRTModule

pytestmark = pytest.mark.rtx_gpu


def _module(engine: bytes) -> TRTModule:
    return TRTModule(EngineRecord.new(engine, name="tiny", input_names=["x"], output_names=["y"]))


def test_forward_matches_torch(tiny_engine_bytes):
    x = torch.randn(3, 4, device="cuda")
    y = _module(tiny_engine_bytes)(x)
    torch.cuda.current_stream().synchronize()
    torch.testing.assert_close(y, torch.relu(x))


def test_real_runtime_cache_round_trip_and_strategy_switch(tiny_engine_bytes, tmp_path):
    path = tmp_path / "c.bin"
    mod = _module(tiny_engine_bytes)
    x = torch.randn(5, 4, device="cuda")
    with runtime.settings(cache_path=path):
        mod(x)
        with runtime.settings(kernel_strategy="eager"):
            torch.testing.assert_close(mod(x), torch.relu(x))
    assert path.exists() and path.stat().st_size > 0
    again = _module(tiny_engine_bytes)
    with runtime.settings(cache_path=path, kernel_strategy="none"):
        torch.testing.assert_close(again(x), torch.relu(x))


def test_shape_outside_profile_is_rejected(tiny_engine_bytes):
    with pytest.raises(InputShapeError, match=r"dimension 0 is 9, allowed range is \[1, 8\]"):
        _module(tiny_engine_bytes)(torch.ones(9, 4, device="cuda"))


def test_garbage_engine_rejected_by_real_deserializer():
    with pytest.raises(EngineRecordError):
        _module(b"\x00" * 4096)(torch.ones(2, 4, device="cuda"))
