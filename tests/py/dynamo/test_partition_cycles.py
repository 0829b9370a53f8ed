"""Partitioning around a node kept in PyTorch gives up no convertible node: a diamond
(a -> [PyTorch] -> c with a -> c as well) becomes two engines around the PyTorch node, and every
node left in PyTorch carries a one-line reason in `compile_report.fallback_nodes`. (A node moved
back to PyTorch because a non-tensor would cross its partition's boundary makes the partitioner
compute the stages again, so no partition is left cyclic; torchvision swin_t in tests/py/models
and test_partitioner.py exercise the partitioner on larger graphs.)"""
from __future__ import annotations

import torch
import torch.nn as nn

import torch_tensorrt_rtx as trtx


class Diamond(nn.Module):
    """relu -> sigmoid (kept in PyTorch) -> add, and relu -> add directly."""

    def forward(self, x):
        a = torch.relu(x * 2)
        b = torch.sigmoid(a)
        return (a + b) * 3


def test_cycle_through_pytorch_splits_the_partition_instead_of_dropping_it():
    x = torch.randn(4, 8)
    compiled = trtx.compile(Diamond().eval(), [x], min_block_size=1, progress=False,
                            torch_executed_ops={"aten.sigmoid.default"})
    report = compiled.compile_report
    assert report.fallback_ops == {"aten.sigmoid.default": 1}, report.format()
    assert len(report.engines) == 2, report.format()
    converted = report.converted_op_counts
    for op in ("aten.relu.default", "aten.add.Tensor", "aten.mul.Tensor"):
        assert op in converted, report.format()
    assert list(report.fallback_nodes.values()) == ["listed in torch_executed_ops"], report.fallback_nodes
    verification = trtx.verify(compiled, x, reference_module=Diamond().eval())
    assert verification.ok, str(verification)


def test_every_fallback_node_has_a_reason():
    compiled = trtx.compile(Diamond().eval(), [torch.randn(4, 8)], min_block_size=3, progress=False,
                            torch_executed_ops={"aten.sigmoid.default"})
    report = compiled.compile_report
    reported = sum(report.fallback_ops.values())
    assert reported == len(report.fallback_nodes), report.format()
    assert reported >= 1
    for node, reason in report.fallback_nodes.items():
        assert reason and "\n" not in reason, (node, reason)
        assert "placed in no TensorRT partition" not in reason, (node, reason)
    # The blocks on each side of sigmoid are below min_block_size=3: said so, per op.
    assert "min_block_size=3" in report.fallback_reasons["aten.relu.default"], report.format()
