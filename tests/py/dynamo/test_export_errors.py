"""Honest export errors: torch.export's own message first, then what compile knows (the input
dims behind a violated guard, or a branch on tensor data); the advice to check shapes only when
it applies."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import torch_tensorrt_rtx as trtx

CHECK_SHAPES = "check each input's shape and dtype against forward"


def _notes(excinfo) -> str:
    return "\n".join(getattr(excinfo.value, "__notes__", []))


class FixedRows(nn.Module):
    def forward(self, x):
        return x.view(4, -1) * 2  # only batch 4 works


@pytest.mark.parametrize("names", [("batch", None), None])
def test_guard_names_the_input_dim_and_keeps_torch_message(names):
    spec = trtx.Input(min_shape=(1, 8), opt_shape=(4, 8), max_shape=(16, 8), dim_names=names)
    with pytest.raises(Exception, match="Constraints violated") as info:
        trtx.compile(FixedRows(), [spec], progress=False)
    notes = _notes(info)
    dim = "batch" if names else "input0_dim0"
    assert f"{dim} = input 0 dim 0 (range [1, 16])" in notes, notes
    assert CHECK_SHAPES not in notes


class Branchy(nn.Module):
    def forward(self, x):
        if x.sum() > 0:  # a decode step's stopping test, an NMS count: data, not shapes
            return x * 2
        return x


def test_data_dependent_branch_says_so_not_shapes():
    with pytest.raises(Exception, match="data-dependent") as info:
        trtx.compile(Branchy(), [torch.randn(4, 8)], progress=False)
    notes = _notes(info)
    assert "value computed from tensor data" in notes and CHECK_SHAPES not in notes, notes


def test_wrong_shape_keeps_the_shape_advice():
    with pytest.raises(RuntimeError, match=r"\[2, 7\] X \[8, 8\]") as info:
        trtx.compile(nn.Linear(8, 8), [torch.randn(2, 7)], progress=False)
    assert CHECK_SHAPES in _notes(info) and "(2, 7) float32" in _notes(info)
