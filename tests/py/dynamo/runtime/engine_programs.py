"""Small programs that call the engine op on a test engine (tests and benchmarks only).

``Program(record)`` computes ``execute_engine([x + 1], record, spec)[0] * 3`` with ``record`` a
buffer, like a compiled module. ``scripted_record()`` holds an engine of the C++ scripted
test backend (output = 2 * input); ``double_record()`` one of the Python test double
(output = relu(input), x: [1..8, 4]).

``WeightlessProgram(engine_bytes)`` is what ``compile(..., strip_engine_weights=True)`` packages:
the engine's weights ``scale`` (1 element) and ``bias`` (4) as buffers, passed to the engine op as
trailing inputs and named in its spec; ``weightless_bytes("python" | "cxx")`` gives such an engine
for either double (its output is then also scaled by ``scale[0]``). ``TwoEngines(a, b)`` runs two
engines on one input and adds their outputs (weight streaming splits budgets over them).
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

from torch_tensorrt_rtx.dynamo._engine_op import OutputSpec, TensorSpec
from torch_tensorrt_rtx.runtime import EngineRecord

sys.path.insert(0, str(Path(__file__).parent))
from trt_double import make_engine_bytes  # noqa: E402

HERE_DIR = Path(__file__).resolve().parent
REPO = HERE_DIR.parents[3]
SCRIPTED_OPS = REPO / "bazel-bin" / "tests" / "core" / "runtime" / "libscripted_runtime_ops.so"
INSTALLED_RUNTIME = REPO / "py" / "torch_tensorrt_rtx" / "lib" / "libtorchtrt_rtx_runtime.so"
CPP_SERVING = REPO / "bazel-bin" / "examples" / "cpp_serving" / "cpp_serving"
SPEC = OutputSpec("blk0", "sha", [TensorSpec("float32", ["i0_0", "i0_1"])],
                  [TensorSpec("float32", ["i0_0", "i0_1"])], ["y:mul"]).to_json()


def scripted_record(name: str = "blk0") -> EngineRecord:
    return EngineRecord.new(b"SCRIPTED-ENGINE v1\ninput x\noutput y\n", name=name,
                            input_names=["x"], output_names=["y"])


def double_record(name: str = "blk0") -> EngineRecord:
    return EngineRecord.new(make_engine_bytes({"x": ((1, 4), (2, 4), (8, 4))}, ["y"]), name=name,
                            input_names=["x"], output_names=["y"])


class Program(torch.nn.Module):
    def __init__(self, record: EngineRecord) -> None:
        super().__init__()
        self.register_buffer("blk0_engine", record.to_tensor().clone())

    def forward(self, x):
        return torch.ops.tensorrt_rtx.execute_engine([x + 1], self.blk0_engine, SPEC)[0] * 3


def export(record: EngineRecord, example=None):
    example = example if example is not None else torch.ones(2, 4)
    batch = torch.export.Dim("batch", min=1, max=8)
    return torch.export.export(Program(record), (example,), dynamic_shapes=({0: batch},))


def weightless_bytes(runtime: str, streamable: int = 0) -> bytes:
    """An engine with refittable weights scale (1 float) and bias (4), for the Python test double
    ("python") or the C++ scripted backend ("cxx"); `streamable` bytes of streamable weights."""
    if runtime == "python":
        return make_engine_bytes({"x": ((1, 4), (2, 4), (8, 4))}, ["y"], weights={"scale": 1, "bias": 4},
                                 streamable=streamable)
    text = "SCRIPTED-ENGINE v1\ninput x\noutput y\nweight scale 1\nweight bias 4\n"
    return (text + (f"streamable {streamable}\n" if streamable else "")).encode()


def streaming_bytes(runtime: str, streamable: int) -> bytes:
    """An engine without refittable weights and `streamable` bytes of streamable weights."""
    if runtime == "python":
        return make_engine_bytes({"x": ((1, 4), (2, 4), (8, 4))}, ["y"], streamable=streamable)
    return f"SCRIPTED-ENGINE v1\ninput x\noutput y\nstreamable {streamable}\n".encode()


class WeightlessProgram(torch.nn.Module):
    def __init__(self, engine_bytes: bytes, names=("scale", "bias"), bias_size: int = 4) -> None:
        super().__init__()
        record = EngineRecord.new(engine_bytes, name="blk0", input_names=["x"], output_names=["y"])
        self.register_buffer("blk0_engine", record.to_tensor().clone())
        self.register_buffer("w_scale", torch.tensor([2.0]))
        self.register_buffer("w_bias", torch.zeros(bias_size))
        self.spec = OutputSpec("blk0", "sha", [TensorSpec("float32", ["i0_0", "i0_1"])],
                               [TensorSpec("float32", ["i0_0", "i0_1"])], ["y:relu"], list(names)).to_json()
        self.names = names

    def forward(self, x):
        weights = [self.w_scale, self.w_bias][:len(self.names)]
        return torch.ops.tensorrt_rtx.execute_engine([x] + weights, self.blk0_engine, self.spec)[0]


class TwoEngines(torch.nn.Module):
    def __init__(self, first: bytes, second: bytes) -> None:
        super().__init__()
        for i, engine in enumerate((first, second)):
            record = EngineRecord.new(engine, name=f"blk{i}", input_names=["x"], output_names=["y"])
            self.register_buffer(f"blk{i}_engine", record.to_tensor().clone())

    def forward(self, x):
        return (torch.ops.tensorrt_rtx.execute_engine([x], self.blk0_engine, SPEC)[0]
                + torch.ops.tensorrt_rtx.execute_engine([x], self.blk1_engine, SPEC)[0])
