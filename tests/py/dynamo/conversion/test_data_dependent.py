"""Data-dependent output sizes: nonzero's network (INonZeroLayer, transposed to torch's [n, rank]
int64 layout) against eager PyTorch through the reference executor; engine specs mark such outputs
(null dims) and the engine op's fake kernel gives them unbacked sizes; ops after a data-dependent
size get an engine whose range PyTorch's bound gives; nonzero stays in PyTorch, with the reason,
while the installed TensorRT-RTX has no NonZero kernel."""
from __future__ import annotations

import pytest
import torch
from torch.fx import Graph, GraphModule

from torch_tensorrt_rtx.dynamo import _compiler
from torch_tensorrt_rtx.dynamo._engine_op import OutputSpec, TensorSpec, execute_engine
from torch_tensorrt_rtx.dynamo.conversion._interpreter import build_network
from torch_tensorrt_rtx.dynamo.conversion._registry import refusal_reason
from torch_tensorrt_rtx.dynamo.conversion.converters import data_dependent
from torch_tensorrt_rtx.dynamo.verification import run_network

from tests.py.dynamo.conversion.harness import Fn, compile_and_verify, exported_node

aten = torch.ops.aten


def one_op_network(op, *examples: torch.Tensor):
    """The network of a graph computing `op(*examples)` (placeholders input_0, input_1, ...)."""
    graph = Graph()
    placeholders = []
    for k, example in enumerate(examples):
        placeholders.append(graph.placeholder(f"x{k}"))
        placeholders[-1].meta["val"] = example
    out = graph.call_function(op, tuple(placeholders))
    out.meta["val"] = op(*examples)
    graph.output((out,))
    return build_network(GraphModule(torch.nn.Module(), graph), [{}] * len(examples)).network


def nonzero_network(example: torch.Tensor):
    return one_op_network(aten.nonzero.default, example)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.int32, torch.bool])
@pytest.mark.parametrize("shape", [(7,), (3, 4), (2, 3, 5)])
def test_nonzero_network_matches_eager(dtype, shape, monkeypatch):
    monkeypatch.setattr(data_dependent, "nonzero_kernels_available", lambda: True)  # the network needs no kernel
    x = (torch.randn(*shape) * (torch.rand(*shape) > 0.4)).to(dtype)
    network = nonzero_network(x)
    for value in (x, torch.zeros_like(x), torch.ones_like(x)):
        (out,) = run_network(network, {"input_0": value}).values()
        expected = torch.nonzero(value)
        assert out.dtype == torch.int64 and torch.equal(out, expected), (value, out, expected)


def test_nonzero_stays_in_pytorch_while_tensorrt_rtx_has_no_kernel(monkeypatch):
    node = exported_node(Fn(lambda x: torch.nonzero(x > 0)), [torch.randn(3, 4)], aten.nonzero.default)
    monkeypatch.setattr(data_dependent, "nonzero_kernels_available", lambda: False)
    assert "has no NonZero kernel" in refusal_reason(node)
    monkeypatch.setattr(data_dependent, "nonzero_kernels_available", lambda: True)
    assert data_dependent._nonzero_ok(node) is True
    int64_node = exported_node(Fn(lambda x: torch.nonzero(x)), [torch.arange(6)], aten.nonzero.default)
    assert "torch.int64 input" in refusal_reason(int64_node)


def test_the_kernel_probe_answers_with_a_bool():
    # TensorRT-RTX 1.7 has none (NVIDIA/TensorRT-RTX issue 32); a later version may add it.
    assert data_dependent.nonzero_kernels_available() in (True, False)


def test_spec_marks_data_dependent_outputs():
    ep = torch.export.export(Fn(lambda x: (torch.nonzero(x > 0), x * 2)), (torch.randn(3, 4),))
    spec = _compiler._spec(ep.graph_module, "e", "", "e")
    assert [out.shape for out in spec.outputs] == [[None, 2], [3, 4]]
    assert [out.data_dependent for out in spec.outputs] == [True, False]
    assert OutputSpec.from_json(spec.to_json()) == spec


class CallsEngine(torch.nn.Module):
    def __init__(self, spec: OutputSpec) -> None:
        super().__init__()
        self.spec = spec.to_json()
        self.register_buffer("record", torch.zeros(8, dtype=torch.uint8))

    def forward(self, x):
        return execute_engine([x], self.record, self.spec)[0]


def test_fake_kernel_gives_a_data_dependent_dim_an_unbacked_size():
    spec = OutputSpec("e", "", [TensorSpec("float32", [3, 4])], [TensorSpec("int64", [None, 2])], [])
    ep = torch.export.export(CallsEngine(spec), (torch.randn(3, 4),))
    out = next(n for n in ep.graph.nodes if n.op == "output").args[0][0].meta["val"]
    assert isinstance(out.shape[0], torch.SymInt) and str(out.shape[0]).startswith("u"), out.shape
    assert out.shape[1] == 2 and out.dtype == torch.int64


def test_ops_after_a_data_dependent_size_get_an_engine_with_its_bound():
    module = Fn(lambda x: torch.nonzero(x > 0) * 2 + 1)
    x = torch.randn(5, 3)
    runs = [[x], [torch.zeros(5, 3)], [torch.ones(5, 3)]]  # some, no and every element non-zero
    compiled, report, _ = compile_and_verify(module, [x], run_inputs=runs, expect_ops=["aten.mul.Tensor"])
    ranges = [r for e in report.engines for r in e.input_ranges if r != "{}"]
    assert ranges == ["{0: (0, 7, 15)}"], report.format()  # nonzero's rows: 0 to numel


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.int32])
def test_masked_select_network_matches_eager(dtype, monkeypatch):
    monkeypatch.setattr(data_dependent, "nonzero_kernels_available", lambda: True)
    x = (torch.randn(3, 5) * 4).to(dtype)
    network = one_op_network(aten.masked_select.default, x, x > 0)
    for mask in (x > 0, torch.zeros(3, 5, dtype=torch.bool), torch.ones(3, 5, dtype=torch.bool)):
        (out,) = run_network(network, {"input_0": x, "input_1": mask}).values()
        expected = torch.masked_select(x, mask)
        assert out.dtype == dtype and torch.equal(out, expected), (mask, out, expected)


def test_masked_select_with_a_broadcast_mask_stays_in_pytorch(monkeypatch):
    monkeypatch.setattr(data_dependent, "nonzero_kernels_available", lambda: True)
    node = exported_node(Fn(lambda x, m: torch.masked_select(x, m)), [torch.randn(3, 4), torch.rand(4) > 0.5],
                         aten.masked_select.default)
    assert "no broadcasting" in refusal_reason(node)
