"""The converter suite's one helper: compile with torch_tensorrt_rtx (AOT), check what converted,
and compare the engines' reference execution with eager PyTorch at one or more sizes.

    compiled = compile_checked(module, [spec], expect_ops=["aten.relu.default"], full=True)
    check_runs(compiled, module, [[x_small], [x_large]])
    compiled, report, verification = compile_and_verify(module, [x])     # both in one call
    module = ConstantAt(torch.add, weight, position=1)   # operand 1 a frozen parameter
"""
from __future__ import annotations

from typing import Iterable, Sequence

import torch
import torch.nn as nn

import torch_tensorrt_rtx as trtx


class ConstantAt(nn.Module):
    """fn(*operands) where operand `position` is a frozen parameter and the others are inputs."""

    def __init__(self, fn, constant: torch.Tensor, position: int) -> None:
        super().__init__()
        self.fn, self.position = fn, position
        if constant.is_floating_point():
            self.constant = nn.Parameter(constant, requires_grad=False)
        else:
            self.register_buffer("constant", constant)

    def forward(self, *xs):
        operands = list(xs)
        operands.insert(self.position, self.constant)
        return self.fn(*operands)


def compile_checked(module: torch.nn.Module, inputs: Sequence, expect_ops: Iterable[str] = (), *,
                    full: bool = False, min_block_size: int = 1, **kwargs):
    """AOT-compile `module` (eval mode); assert an engine was built, each of `expect_ops` was
    converted, every dynamic input got an optimization range, and with `full` that nothing fell
    back to PyTorch."""
    compiled = trtx.compile(module.eval(), inputs, min_block_size=min_block_size, progress=False, **kwargs)
    report = compiled.compile_report
    assert report.engines, f"no engine built:\n{report.format()}"
    if full:
        assert not report.fallback_ops, f"ops fell back to PyTorch:\n{report.format()}"
    converted = report.converted_op_counts
    for op in expect_ops:
        assert op in converted, f"{op} was not converted (decomposed or fell back):\n{report.format()}"
    if any(isinstance(i, trtx.Input) and i.dynamic_dims for i in inputs):
        assert any(r != "{}" for e in report.engines for r in e.input_ranges), \
            f"dynamic input compiled without an optimization range:\n{report.format()}"
    return compiled


def check_runs(compiled, module: torch.nn.Module, runs: Sequence[Sequence[torch.Tensor]]):
    """Reference-execute the engines on each argument list and compare with eager `module`;
    returns the last VerificationReport."""
    verification = None
    for args in runs:
        verification = trtx.verify(compiled, *args, reference_module=module)
        assert verification.ok, f"inputs {[tuple(a.shape) for a in args]}:\n{verification}"
        assert verification.engines, "no engine was executed"
    return verification


def compile_and_verify(module: torch.nn.Module, inputs: Sequence, run_inputs=None, expect_ops: Iterable[str] = (),
                       **kwargs):
    """compile_checked, then check_runs on `run_inputs` (one argument list or a list of them;
    default: the example of each input). Returns (compiled, report, last verification)."""
    compiled = compile_checked(module, inputs, expect_ops, **kwargs)
    run_inputs = run_inputs if run_inputs is not None else [
        i if isinstance(i, torch.Tensor) else i.example() for i in inputs]
    runs = run_inputs if isinstance(run_inputs[0], (list, tuple)) else [run_inputs]
    return compiled, compiled.compile_report, check_runs(compiled, module, runs)


def check_constant_operand(fn, makers, op: str, position: int, dtype: torch.dtype) -> None:
    """fn with operand `position` frozen into the module (ConstantAt) converts fully to `op` and
    matches eager PyTorch; `makers` build the operands for `dtype`."""
    operands = [make(dtype) for make in makers]
    module = ConstantAt(fn, operands[position], position)
    inputs = operands[:position] + operands[position + 1:]
    _, report, _ = compile_and_verify(module, inputs, expect_ops=[op])
    assert not report.fallback_ops and not report.failed_nodes, report.format()
