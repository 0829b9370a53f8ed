"""Engines with data-dependent output shapes on the Python runtime, through the tensorrt_rtx test
double: the output allocator's memory requests and final shapes give correctly shaped outputs;
upstream's enable_output_allocator forces it for every output, enable_pre_allocated_outputs
reuses output tensors between calls of the same shapes; a saved program whose engine spec marks a
data-dependent output loads and runs on the Python runtime."""
from __future__ import annotations

import pytest
import torch

import torch_tensorrt_rtx as trtx
from torch_tensorrt_rtx import runtime
from torch_tensorrt_rtx.dynamo import _engine_op
from torch_tensorrt_rtx.dynamo._engine_op import OutputSpec, TensorSpec
from torch_tensorrt_rtx.runtime import EngineRecord, TRTModule

from trt_double import TrtDouble, make_engine_bytes

PROFILE = {"x": ((1, 4), (2, 4), (8, 4))}


def module(outputs=("y",), data_dependent=("y",), api=None):
    engine = make_engine_bytes(PROFILE, list(outputs), data_dependent=data_dependent)
    record = EngineRecord.new(engine, name="dd", input_names=["x"], output_names=list(outputs))
    return TRTModule(record, trt_api=api or TrtDouble())


def test_data_dependent_output_has_the_shape_the_engine_reported():
    mod = module()
    for x in (torch.tensor([[-1.0, 2.0, -3.0, 4.0]] * 3), torch.full((2, 4), -1.0), torch.ones(8, 4)):
        y = mod(x)
        assert y.shape == (int((x > 0).sum()),) and y.dtype == torch.float32
        torch.testing.assert_close(y, x[x > 0])


def test_static_and_data_dependent_outputs_of_one_engine():
    mod = module(outputs=("relu", "positive"), data_dependent=("positive",))
    x = torch.tensor([[-1.0, 2.0, 0.5, -4.0]] * 2)
    relu, positive = mod(x)
    torch.testing.assert_close(relu, torch.relu(x))
    torch.testing.assert_close(positive, x[x > 0])


def test_each_call_returns_new_tensors_unless_pre_allocated():
    mod = module(outputs=("relu", "positive"), data_dependent=("positive",))
    x = torch.tensor([[1.0, -2.0, 3.0, 4.0]])
    first = mod(x)
    second = mod(x * 2)
    assert all(a.data_ptr() != b.data_ptr() for a, b in zip(first, second))
    torch.testing.assert_close(first[1], x[x > 0])  # the first call's result was not overwritten
    with runtime.enable_pre_allocated_outputs(mod):
        third = mod(x)
        fourth = mod(x * 3)
        other_shape = mod(torch.ones(2, 4))
    assert [t.data_ptr() for t in third] == [t.data_ptr() for t in fourth]  # same shapes: same buffers
    torch.testing.assert_close(fourth[0], torch.relu(x * 3))
    torch.testing.assert_close(fourth[1], (x * 3)[x > 0])
    assert other_shape[0].shape == (2, 4) and other_shape[1].shape == (8,)
    fifth = mod(x)
    assert fifth[0].data_ptr() != fourth[0].data_ptr()  # outside the block: fresh tensors again


def test_enable_output_allocator_fetches_every_output_through_it():
    api = TrtDouble()
    mod = module(outputs=("relu",), data_dependent=(), api=api)
    x = torch.tensor([[-1.0, 2.0, -3.0, 4.0]] * 2)
    mod(x)
    context = api.engines[0].contexts[0]
    assert context.get_output_allocator("relu") is None
    with runtime.enable_output_allocator(mod) as entered:
        assert entered is mod
        y = mod(x)
    allocator = context.get_output_allocator("relu")
    assert allocator is not None and allocator.shapes == {"relu": (2, 4)}
    torch.testing.assert_close(y, torch.relu(x))


def test_a_data_dependent_output_without_allocator_fails_in_the_double():
    # the double holds the runtime to TensorRT's rule: such an output needs an allocator
    api = TrtDouble()
    engine = api.Runtime(api.Logger()).deserialize_cuda_engine(
        make_engine_bytes(PROFILE, ["y"], data_dependent=["y"]))
    context = engine.create_execution_context()
    x = torch.ones(2, 4)
    context.set_input_shape("x", (2, 4))
    context.set_tensor_address("x", x.data_ptr())
    assert context.get_tensor_shape("y") == (-1,)
    assert context.execute_async_v3(0) is False


class DataDependentProgram(torch.nn.Module):
    """A compiled-module stand-in: one engine whose output is `x[x > 0]` (its spec says so)."""

    SPEC = OutputSpec("dd", "sha", [TensorSpec("float32", ["i0_0", "i0_1"])], [TensorSpec("float32", [None])],
                      ["y:nonzero"]).to_json()

    def __init__(self) -> None:
        super().__init__()
        engine = make_engine_bytes(PROFILE, ["y"], data_dependent=["y"])
        record = EngineRecord.new(engine, name="dd", input_names=["x"], output_names=["y"])
        self.register_buffer("dd_engine", record.to_tensor().clone())

    def forward(self, x):
        return torch.ops.tensorrt_rtx.execute_engine([x - 1], self.dd_engine, self.SPEC)[0] * 2


@pytest.mark.skipif(_engine_op.NATIVE, reason="the C++ runtime implements the op in this process")
def test_a_saved_program_with_a_data_dependent_engine_output_runs_on_the_python_runtime(tmp_path, monkeypatch):
    api = TrtDouble()
    monkeypatch.setattr(_engine_op, "_new_python_module", lambda record, name: TRTModule(record, name, trt_api=api))
    batch = torch.export.Dim("batch", min=1, max=8)
    program = torch.export.export(DataDependentProgram(), (torch.ones(2, 4),), dynamic_shapes=({0: batch},))
    (size,) = next(n for n in program.graph.nodes if n.op == "output").args[0][0].meta["val"].shape
    assert str(size).startswith("u"), size  # the spec's null dim: an unbacked size in the program
    torch.export.save(program, tmp_path / "dd.pt2")
    loaded = trtx.load(tmp_path / "dd.pt2").module()
    for x in (torch.tensor([[0.5, 2.0, 3.0, -1.0]] * 3), torch.zeros(1, 4)):
        shifted = x - 1
        torch.testing.assert_close(loaded(x), shifted[shifted > 0] * 2)
