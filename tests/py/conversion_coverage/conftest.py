"""Helpers for the converter-coverage tests: compile with torch_tensorrt_rtx (AOT), require that
everything converted, and compare the engines' reference execution with eager at several sizes."""
from __future__ import annotations

from typing import Iterable, Sequence

import pytest
import torch

import torch_tensorrt_rtx as trtx


def compile_fully(module: torch.nn.Module, inputs: Sequence, expect_ops: Iterable[str] = ()):
    """AOT-compile `module`; assert zero PyTorch fallback and that `expect_ops` were converted."""
    compiled = trtx.compile(module.eval(), inputs, min_block_size=1, progress=False)
    report = compiled.compile_report
    assert report.engines, f"no engine built:\n{report.format()}"
    assert not report.fallback_ops, f"ops fell back to PyTorch:\n{report.format()}"
    converted = report.converted_op_counts
    for op in expect_ops:
        assert op in converted, f"{op} was not converted (decomposed or fell back):\n{report.format()}"
    return compiled


def check_runs(compiled, module, runs: Sequence[Sequence[torch.Tensor]]):
    """Reference-execute the engines on each argument list and compare with eager `module`."""
    for args in runs:
        verification = trtx.verify(compiled, *args, reference_module=module)
        assert verification.ok, f"inputs {[tuple(a.shape) for a in args]}:\n{verification}"
        assert verification.engines, "no engine was executed"


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
