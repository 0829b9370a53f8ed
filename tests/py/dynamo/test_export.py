"""Export (dynamo/_export.py): strict dims for compile, specialisations as data for the backend."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from torch._dynamo.exc import UserError

from torch_tensorrt_rtx import Input
from torch_tensorrt_rtx.dynamo._export import export_aten


class _PoolHead(nn.Module):
    """Adaptive pooling on the image size: its decomposition guards on H // 2 and W // 2."""

    def __init__(self):
        super().__init__()
        self.conv, self.gap = nn.Conv2d(3, 4, 3, padding=1), nn.AdaptiveAvgPool2d((1, 1))

    def forward(self, x):
        return torch.flatten(self.gap(torch.relu(nn.functional.max_pool2d(self.conv(x), 2))), 1)


_IMAGE = Input(min_shape=(2, 3, 2, 2), opt_shape=(3, 3, 16, 12), max_shape=(8, 3, 32, 32))


def test_dims_the_trace_cannot_keep_dynamic_come_back_as_data():
    exported = export_aten(_PoolHead().eval(), [_IMAGE], allow_specialization=True)
    assert exported.specialized() == {(0, 2): 16, (0, 3): 12}
    assert exported.dim_ranges[(0, 0)] == (2, 8)
    assert sorted(exported.symbol_ranges.values()) == [(2, 3, 8)]  # only the batch stays symbolic
    shape = list(exported.graph_module.graph.find_nodes(op="placeholder"))[0].meta["val"].shape
    assert isinstance(shape[0], torch.SymInt) and shape[2:] == (16, 12)


def test_strict_export_refuses_the_same_ranges():
    with pytest.raises(UserError, match="input0_dim2"):
        export_aten(_PoolHead().eval(), [_IMAGE])


def test_a_range_export_narrows_comes_back_narrowed():
    # Export keeps sizes 0 and 1 for itself (it specializes them), so a range from 1 starts at 2.
    spec = Input(min_shape=(1, 8), opt_shape=(4, 8), max_shape=(16, 8))
    exported = export_aten(nn.Sequential(nn.Linear(8, 8), nn.ReLU()).eval(), [spec], allow_specialization=True)
    assert exported.specialized() == {}
    assert exported.dim_ranges == {(0, 0): (2, 16)}
    assert list(exported.symbol_ranges.values()) == [(2, 4, 16)]


def test_a_range_where_the_guard_always_holds_stays_dynamic():
    spec = Input(min_shape=(2, 3, 4, 4), opt_shape=(3, 3, 16, 12), max_shape=(8, 3, 32, 32))  # H // 2 >= 2
    exported = export_aten(_PoolHead().eval(), [spec], allow_specialization=True)
    assert exported.specialized() == {}
    assert exported.dim_ranges == {(0, 0): (2, 8), (0, 2): (4, 32), (0, 3): (4, 32)}
