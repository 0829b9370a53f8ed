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


def _jit_blob(engine, shape, cache_blobs=()):
    """Run one lazy-specialized inference at `shape` (none if `shape` is None) in a fresh
    context whose runtime cache first deserializes `cache_blobs` in order; returns the
    serialized cache afterwards."""
    import tensorrt_rtx as trt

    config = engine.create_runtime_config()
    cache = config.create_runtime_cache()
    for blob in cache_blobs:
        assert cache.deserialize(blob)
    config.set_runtime_cache(cache)
    config.dynamic_shapes_kernel_specialization_strategy = \
        trt.DynamicShapesKernelSpecializationStrategy.LAZY
    context = engine.create_execution_context(config)
    if shape is None:
        return bytes(cache.serialize())
    x = torch.randn(*shape, device="cuda")
    y = torch.empty_like(x)
    context.set_input_shape("x", tuple(shape))
    context.set_tensor_address("x", x.data_ptr())
    context.set_tensor_address("y", y.data_ptr())
    assert context.execute_async_v3(torch.cuda.current_stream().cuda_stream)
    torch.cuda.current_stream().synchronize()
    return bytes(cache.serialize())


def test_probe_does_runtime_cache_deserialize_merge_or_replace(tiny_engine_bytes, capsys):
    """The runtime cache container never relies on the answer; this finds it out on a real GPU."""
    import tensorrt_rtx as trt

    engine = trt.Runtime(trt.Logger(trt.Logger.WARNING)).deserialize_cuda_engine(tiny_engine_bytes)
    first = _jit_blob(engine, (2, 4))
    second = _jit_blob(engine, (7, 4))
    both = _jit_blob(engine, None, cache_blobs=(first, second))
    if both == second:
        answer = "REPLACE: deserialize discards what the cache held before"
    elif len(both) > max(len(first), len(second)):
        answer = "MERGE: deserialize adds to what the cache held before"
    else:
        answer = f"UNCLEAR: sizes first={len(first)} second={len(second)} after both={len(both)}"
    with capsys.disabled():
        print(f"\nIRuntimeCache.deserialize into a non-empty cache: {answer}")
    assert not answer.startswith("UNCLEAR"), answer
