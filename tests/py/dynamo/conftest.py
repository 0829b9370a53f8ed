"""Fixtures for the compiler tests (no GPU needed). Helpers live in modules, such as
tests/py/dynamo/conversion/harness.py."""
from __future__ import annotations

import pytest
import torch

import torch_tensorrt_rtx as trtx

from examples.models import MLP


@pytest.fixture(scope="session")
def static_mlp():
    """examples.models.MLP compiled once per session at the static shape (2, 16), every op in one
    engine, default settings (portable). Tests only read it: call it, inspect its records."""
    torch.manual_seed(0)
    return trtx.compile(MLP().eval(), [torch.randn(2, 16)], min_block_size=1, progress=False)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def fresh_dynamo():
    """torch.compile tests: no compiled frame or recompile budget leaks between tests."""
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


@pytest.fixture
def builds(monkeypatch):
    """How many engines TensorRT-RTX built in the test (engine-cache hits do not count)."""
    from torch_tensorrt_rtx.dynamo import _compiler

    count = []
    real = _compiler.build_engine

    def counting(*args, **kwargs):
        count.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(_compiler, "build_engine", counting)
    return count
