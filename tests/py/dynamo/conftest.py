"""Shared helpers for compiler tests (no GPU needed)."""
from __future__ import annotations

import pytest
import torch

import torch_tensorrt_rtx as trtx


def compile_and_verify(module, inputs, run_inputs=None, expect_ops=(), min_block_size=1, **kwargs):
    """AOT-compile `module`, check every expected op went to TensorRT, run the engines through the
    reference executor and compare with eager. Returns (compiled, report, verification)."""
    module = module.eval()
    compiled = trtx.compile(module, inputs, min_block_size=min_block_size, progress=False, **kwargs)
    report = compiled.compile_report
    assert report.engines, f"no engine built: {report.format()}"
    converted = report.converted_op_counts
    for op in expect_ops:
        assert op in converted, f"{op} not converted: {report.format()}"
    if any(isinstance(i, trtx.Input) and i.dynamic_dims for i in inputs):
        assert any(r != "{}" for e in report.engines for r in e.input_ranges), \
            f"dynamic input compiled without an optimization range: {report.format()}"
    run_inputs = run_inputs if run_inputs is not None else [
        i if isinstance(i, torch.Tensor) else i.example() for i in inputs]
    for args in (run_inputs if isinstance(run_inputs[0], (list, tuple)) else [run_inputs]):
        verification = trtx.verify(compiled, *args, reference_module=module)
        assert verification.ok, str(verification)
    return compiled, report, verification


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
