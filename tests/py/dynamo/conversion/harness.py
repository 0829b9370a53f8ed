"""The converter suite's one helper: compile with torch_tensorrt_rtx (AOT), check what converted,
and compare the engines' reference execution with eager PyTorch at one or more sizes. The test
files hold one op family each (test_elementwise.py, test_reductions.py, ...).

    compiled = compile_checked(module, [spec], expect_ops=["aten.relu.default"], full=True)
    check_runs(compiled, module, [[x_small], [x_large]])
    compiled, report, verification = compile_and_verify(module, [x])     # both in one call
    module = Fn(lambda x, w: x * w, weight)              # an op as a module; weight frozen
    module = ConstantAt(torch.add, weight, position=1)   # operand 1 a frozen parameter

Case tables, shared by the family files (bind the returned tests to names starting with test_):

    test_op_dynamic, test_op_static_fp32 = op_case_tests(CASES)   # name -> (fn(m, x), kind, ops)
    test_constant_operand = constant_operand_test(CONSTANTS)      # name -> (fn, makers, op, positions)
"""
from __future__ import annotations

from typing import Callable, Iterable, Sequence

import pytest
import torch
import torch.nn as nn

import torch_tensorrt_rtx as trtx
from torch_tensorrt_rtx import Input

FP32_FP16 = dict(argvalues=[torch.float32, torch.float16], ids=["fp32", "fp16"])


class Fn(nn.Module):
    """fn(*inputs, *params) as a module; `params` become frozen parameters."""

    def __init__(self, fn, *params) -> None:
        super().__init__()
        self.fn = fn
        self.params = nn.ParameterList([nn.Parameter(p, requires_grad=False) for p in params])

    def forward(self, *xs):
        return self.fn(*xs, *self.params)


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


def batch_spec(shape, dtype=torch.float32, low=1, high=8) -> Input:
    """A dynamic-batch spec for `shape` (dim 0 from `low` to `high`, `shape[0]` optimal)."""
    rest = tuple(shape[1:])
    return Input(min_shape=(low,) + rest, opt_shape=(shape[0],) + rest, max_shape=(high,) + rest, dtype=dtype)


def runs(*shapes, dtype=torch.float32, make=torch.randn):
    """One single-input argument list per shape, for check_runs / compile_and_verify."""
    return [[make(*shape).to(dtype)] for shape in shapes]


def exported_node(module, args, target, dynamic_shapes=None):
    """The first `target` node of Fn-module `module` exported on `args` (one dynamic spec per arg)."""
    shapes = None if dynamic_shapes is None else (tuple(dynamic_shapes),)  # Fn takes *xs
    ep = torch.export.export(module, tuple(args), dynamic_shapes=shapes)
    return next(n for n in ep.graph.nodes if n.target == target)


# -- operand makers of the constant-operand tables: each returns `make(dtype) -> tensor` ---------
def floats(*shape, scale: float = 1.0) -> Callable[[torch.dtype], torch.Tensor]:
    return lambda dtype: (torch.randn(*shape) * scale).to(dtype)


def bools(*shape) -> Callable[[torch.dtype], torch.Tensor]:
    return lambda dtype: torch.rand(*shape) > 0.5


def ints(high: int, *shape) -> Callable[[torch.dtype], torch.Tensor]:
    return lambda dtype: torch.randint(0, high, shape)


def constant_operand_test(cases):
    """A test over `cases` (name -> (fn, operand makers, converted op, positions that may be
    constant)): each op once per such position, that operand frozen, in fp32 and fp16."""

    @pytest.mark.parametrize("dtype", **FP32_FP16)
    @pytest.mark.parametrize("name,position", [(n, p) for n, case in sorted(cases.items()) for p in case[3]])
    def test(name, position, dtype):
        fn, makers, op, _ = cases[name]
        check_constant_operand(fn, makers, op, position, dtype)

    return test


def all_inputs_test(cases):
    """A test over the same kind of table with every operand a graph input, in fp32 and fp16."""

    @pytest.mark.parametrize("dtype", **FP32_FP16)
    @pytest.mark.parametrize("name", sorted(cases))
    def test(name, dtype):
        fn, makers, op, _ = cases[name]
        compile_and_verify(Fn(fn), [make(dtype) for make in makers], expect_ops=[op])

    return test


# -- op cases: fn(module, x) on a "seq" (B, S, 8) or "image" (B, 3, 8, 8) input ----------------
class CaseModule(nn.Module):
    """Runs fn(self, x); holds the weights the cases use."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn
        self.table = nn.Parameter(torch.randn(10, 8))  # for embedding / index ops
        self.chan = nn.Parameter(torch.rand(3) + 0.5)  # per-channel weights of "image" inputs
        self.w1d = nn.Parameter(torch.randn(4, 8, 3) * 0.3)  # conv1d over "seq" inputs' 8 features
        self.wt1d = nn.Parameter(torch.randn(8, 2, 3) * 0.3)  # conv_transpose1d, 8 -> 2 channels
        self.wt2d = nn.Parameter(torch.randn(3, 2, 4, 4) * 0.3)  # conv_transpose2d, 3 -> 2 channels

    def forward(self, x):
        return self.fn(self, x)


def _case_spec(kind, dtype, dynamic):
    if kind == "image":
        if not dynamic:
            return Input(shape=(2, 3, 8, 8), dtype=dtype), [(2, 3, 8, 8)]
        return (Input(min_shape=(1, 3, 8, 8), opt_shape=(2, 3, 8, 8), max_shape=(4, 3, 8, 8), dtype=dtype),
                [(1, 3, 8, 8), (4, 3, 8, 8), (3, 3, 8, 8)])
    if not dynamic:
        return Input(shape=(2, 6, 8), dtype=dtype), [(2, 6, 8)]
    return (Input(min_shape=(1, 2, 8), opt_shape=(2, 6, 8), max_shape=(4, 8, 8), dtype=dtype),
            [(1, 2, 8), (4, 8, 8), (3, 5, 8)])


def run_op_case(case, dtype, dynamic):
    """Compile the case with zero fallback (its ops converted natively) and match eager at each
    size of its spec (dynamic: three sizes inside the profile)."""
    fn, kind, ops = case
    module = CaseModule(fn).eval().to(dtype)
    spec, shapes = _case_spec(kind, dtype, dynamic)
    compiled = compile_checked(module, [spec], ops, full=True)
    check_runs(compiled, module, [[torch.randn(*s).to(dtype)] for s in shapes])


def op_case_tests(cases, bf16: Sequence[str] = ()):
    """test_op_dynamic (fp32, fp16), test_op_static_fp32 and, when `bf16` names cases,
    test_op_bf16 (dynamic) over `cases`: name -> (fn of (module, x), "seq"/"image", ops)."""

    @pytest.mark.parametrize("dtype", **FP32_FP16)
    @pytest.mark.parametrize("name", sorted(cases))
    def test_op_dynamic(name, dtype):
        run_op_case(cases[name], dtype, dynamic=True)

    @pytest.mark.parametrize("name", sorted(cases))
    def test_op_static_fp32(name):
        run_op_case(cases[name], torch.float32, dynamic=False)

    @pytest.mark.parametrize("name", list(bf16))
    def test_op_bf16(name):
        run_op_case(cases[name], torch.bfloat16, dynamic=True)

    return (test_op_dynamic, test_op_static_fp32, test_op_bf16) if bf16 else (test_op_dynamic, test_op_static_fp32)
