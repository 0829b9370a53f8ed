"""Shared fixtures for the runtime tests (no GPU needed except tests marked rtx_gpu)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from torch_tensorrt_rtx.runtime import supported_gpu

sys.path.insert(0, str(Path(__file__).parent))


def pytest_collection_modifyitems(config, items):
    status = supported_gpu()
    if status.supported:
        return
    skip = pytest.mark.skip(reason=f"needs an RTX GPU TensorRT-RTX supports: {status.reason}")
    for item in items:
        if "rtx_gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _stand_in_gpu(request, monkeypatch):
    """The tensorrt_rtx test double's stand-in GPU (trt_double.stand_in_device), so TRTModule's
    GPU checks run in every test; tests marked rtx_gpu or real_device see the real device query.
    Through monkeypatch, so tests that fake another GPU the same way unwind in order."""
    if request.node.get_closest_marker("rtx_gpu") or request.node.get_closest_marker("real_device"):
        yield
        return
    from torch_tensorrt_rtx.runtime import device
    from trt_double import stand_in_device

    monkeypatch.setattr(device, "_device", stand_in_device())
    device.supported_gpu.cache_clear()
    yield
    device.supported_gpu.cache_clear()


@pytest.fixture(autouse=True)
def _private_cache_home(tmp_path, monkeypatch):
    # Never let a test touch the real ~/.cache.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg_cache"))


@pytest.fixture
def api(monkeypatch):
    """The engine op's Python kernel runs every engine through a TRTModule on one TrtDouble."""
    from torch_tensorrt_rtx import runtime
    from torch_tensorrt_rtx.dynamo import _engine_op
    from trt_double import TrtDouble

    api = TrtDouble()
    monkeypatch.setattr(_engine_op, "_new_python_module",
                        lambda record, name: runtime.TRTModule(record, name, trt_api=api))
    return api


@pytest.fixture(scope="session")
def tiny_engine_bytes() -> bytes:
    """A real TensorRT-RTX engine (relu(x @ I), x: [1..8, 4]) built CPU-only."""
    trt = pytest.importorskip("tensorrt_rtx")
    logger = trt.Logger(trt.Logger.ERROR)
    builder = trt.Builder(logger)
    net = builder.create_network(0)
    x = net.add_input("x", trt.float32, (-1, 4))
    w = net.add_constant((4, 4), trt.Weights(np.eye(4, dtype=np.float32)))
    mm = net.add_matrix_multiply(x, trt.MatrixOperation.NONE, w.get_output(0),
                                 trt.MatrixOperation.NONE)
    relu = net.add_activation(mm.get_output(0), trt.ActivationType.RELU)
    relu.get_output(0).name = "y"
    net.mark_output(relu.get_output(0))
    config = builder.create_builder_config()
    profile = builder.create_optimization_profile()
    profile.set_shape("x", (1, 4), (2, 4), (8, 4))
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(net, config)
    assert serialized is not None, "CPU-only engine build failed"
    return bytes(serialized)
