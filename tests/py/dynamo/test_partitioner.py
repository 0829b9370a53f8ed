"""The partitioner of our own (partitioning/_partitioner.py, _fuser.py): proposed once per compile,
`lowered` left unchanged until the successful attempt's partitions are fused, and a node kept in
PyTorch that sits between a partition's nodes and reads one of its outputs is moved after the
partition's call (the fused graph stays topologically ordered)."""
from __future__ import annotations

import torch
import torch.nn as nn

import torch_tensorrt_rtx as trtx
from torch_tensorrt_rtx.dynamo import _compiler
from torch_tensorrt_rtx.dynamo._export import export_aten
from torch_tensorrt_rtx.dynamo._settings import CompilationSettings
from torch_tensorrt_rtx.dynamo.lowering import lower
from torch_tensorrt_rtx.dynamo.partitioning import partition


class ReaderInTheMiddle(nn.Module):
    """sigmoid (kept in PyTorch) reads relu's output and comes before `x + 1` in graph order, but
    `x + 1` and `a * c` belong to relu's partition: one engine, sigmoid moved after its call."""

    def forward(self, x):
        a = torch.relu(x * 2)
        b = torch.sigmoid(a)
        c = x + 1
        return b, a * c


def _lowered(model, x):
    return lower(export_aten(model, [trtx.Input.from_tensor(x)]).graph_module, CompilationSettings().reduced_precision)


def test_partition_leaves_the_graph_unchanged_until_fused():
    x = torch.randn(4, 8)
    gm = _lowered(ReaderInTheMiddle().eval(), x)
    before = [n.format_node() for n in gm.graph.nodes]
    settings = CompilationSettings(min_block_size=1, torch_executed_ops={"aten.sigmoid.default"})
    result = partition(gm, settings)
    assert [n.format_node() for n in gm.graph.nodes] == before
    assert list(result.submodules) == ["_run_on_trt_0"]
    assert [n.name for n in result.partition_nodes[0] if n.op == "call_function"] == ["mul", "relu", "add", "mul_1"]
    fused = result.fuse()
    calls = [n for n in fused.graph.nodes if n.op == "call_module"]
    assert [c.target for c in calls] == ["_run_on_trt_0"]
    order = {n: i for i, n in enumerate(fused.graph.nodes)}
    for node in fused.graph.nodes:
        assert all(order[arg] < order[node] for arg in node.all_input_nodes), node.format_node()
    sigmoid = next(n for n in fused.graph.nodes if n.target == torch.ops.aten.sigmoid.default)
    assert order[sigmoid] > order[calls[0]]
    fused.recompile()
    reference = ReaderInTheMiddle()(x)
    for got, want in zip(fused(x), reference):
        torch.testing.assert_close(got, want)


def test_partitioning_runs_once_per_compile(monkeypatch):
    calls = []

    def counting(*args, **kwargs):
        calls.append(args[0])
        return partition(*args, **kwargs)

    monkeypatch.setattr(_compiler, "partition", counting)
    x = torch.randn(4, 8)
    compiled = trtx.compile(ReaderInTheMiddle().eval(), [x], min_block_size=1, progress=False,
                            torch_executed_ops={"aten.sigmoid.default"})
    assert len(calls) == 1
    assert len(compiled.compile_report.engines) == 1, compiled.compile_report.format()
    assert trtx.verify(compiled, x, reference_module=ReaderInTheMiddle().eval()).ok
