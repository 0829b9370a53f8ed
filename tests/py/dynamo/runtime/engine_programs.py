"""Small programs that call the engine op on a test engine (tests and benchmarks only).

``Program(record)`` computes ``execute_engine([x + 1], record, spec)[0] * 3`` with ``record`` a
buffer, like a compiled module. ``scripted_record()`` holds an engine of the C++ scripted
test backend (output = 2 * input); ``double_record()`` one of the Python test double
(output = relu(input), x: [1..8, 4]).
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
