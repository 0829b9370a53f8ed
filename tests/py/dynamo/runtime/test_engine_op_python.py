"""The engine op on the Python runtime (the C++ library absent or without TensorRT): saved
programs own their engines, settings scopes and per-engine overrides apply. Uses the
tensorrt_rtx test double."""
from __future__ import annotations

import gc
import weakref

import pytest
import torch

import torch_tensorrt_rtx as trtx
from torch_tensorrt_rtx import runtime
from torch_tensorrt_rtx.dynamo import _engine_op

from engine_programs import double_record, export

pytestmark = pytest.mark.skipif(_engine_op.NATIVE, reason="the C++ runtime implements the op in this process")


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "program.pt2"
    torch.export.save(export(double_record()), path)
    return path


def _engine(module):
    (engine,) = trtx.program_engines(module).values()
    return engine


def test_loaded_program_runs_and_owns_its_engine(api, saved):
    module = trtx.load(saved).module()
    x = torch.tensor([[-2.0, -1.0, 0.0, 1.0]] * 3)
    assert torch.equal(module(x), torch.relu(x + 1) * 3)
    module(x)
    assert api.journal.count("runtime.deserialize_cuda_engine") == 1
    assert api.journal.count("engine.create_execution_context") == 1
    runtime_module = weakref.ref(dict(module.named_buffers())["blk0_engine"].__dict__[_engine_op._MODULE_ATTR])
    assert runtime_module() is not None
    del module
    gc.collect()
    assert runtime_module() is None, "deleting the program must free its engine"


def test_the_runtime_module_reads_the_record_in_place_and_dies_with_it(api):
    packed = double_record().to_tensor()
    runtime_module = _engine_op.python_runtime_module(packed)
    start = torch.frombuffer(runtime_module.record.engine, dtype=torch.uint8).data_ptr()
    assert packed.data_ptr() <= start < packed.data_ptr() + packed.numel(), "the engine must be a view of the record"
    assert _engine_op.python_runtime_module(packed) is runtime_module
    gone = weakref.ref(runtime_module)
    del runtime_module
    gc.disable()  # no reference cycle through the record tensor: freed by reference counting alone
    try:
        del packed
        assert gone() is None
    finally:
        gc.enable()


def test_two_loads_have_independent_engines_and_overrides(api, saved):
    a, b = trtx.load(saved).module(), trtx.load(saved).module()
    x = torch.ones(2, 4)
    a(x), b(x)
    assert api.journal.count("runtime.deserialize_cuda_engine") == 2
    _engine(a).set_runtime_settings(kernel_strategy="none")
    a(x), b(x)
    assert _engine(a).context_settings().kernel_strategy == "none"
    assert _engine(b).context_settings().kernel_strategy == "lazy"
    _engine(a).clear_runtime_settings()
    a(x)
    assert _engine(a).context_settings().kernel_strategy == "lazy"


def test_scopes_and_scoped_overrides(api, saved, tmp_path):
    module = trtx.load(saved).module()
    engine = _engine(module)
    x = torch.ones(2, 4)
    with runtime.settings(kernel_strategy="eager", cache_path=str(tmp_path / "c.bin")):
        module(x)
        assert engine.context_settings() == runtime.RuntimeSettings(str(tmp_path / "c.bin"), "eager")
        with engine.runtime_settings(cuda_graph_strategy="whole_graph_capture") as inside:
            assert inside.kernel_strategy == "eager" and inside.cuda_graph_strategy == "whole_graph_capture"
            module(x)
            assert engine.context_settings().cuda_graph_strategy == "whole_graph_capture"
        module(x)
        assert engine.context_settings().cuda_graph_strategy == "disabled"
    module(x)
    assert engine.context_settings() == runtime.RuntimeSettings()
    assert (tmp_path / "c.bin").stat().st_size > 0, "leaving the scope saves the runtime cache"


def test_overrides_set_before_the_first_call_apply(api, saved):
    module = trtx.load(saved).module()
    engine = _engine(module)
    assert engine.context_settings() is None
    engine.set_runtime_settings(allocation_strategy="on_profile_change")
    module(torch.ones(2, 4))
    assert engine.context_settings().allocation_strategy == "on_profile_change"
    with pytest.raises(ValueError, match="unknown kernel_strategy 'fast'"):
        engine.set_runtime_settings(kernel_strategy="fast")
