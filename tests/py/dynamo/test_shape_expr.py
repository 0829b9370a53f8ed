"""Output-shape expressions are parsed, never evaluated as Python (a .pt2 is data)."""
from __future__ import annotations

import pytest
import torch

from torch_tensorrt_rtx.dynamo import _engine_op
from torch_tensorrt_rtx.dynamo._shape_expr import ShapeExpressionError, evaluate_dim

X = [torch.empty(6, 10), torch.empty(3)]


@pytest.mark.parametrize("expr, value", [
    ("i0_0", 6), ("2*i0_0", 12), ("i0_0 + i1_0 - 1", 8), ("i0_0*i0_1", 60), ("-i1_0 + 10", 7),
    ("i0_1//3", 3), ("i0_1 % 4", 2), ("FloorDiv(i0_1, 4)", 2), ("CeilDiv(i0_1, 4)", 3),
    ("Mod(i0_1, 4)", 2), ("PythonMod(i0_1, 4)", 2), ("Max(i0_0, i1_0, 7)", 7), ("Min(i0_0, i1_0)", 3),
    ("i1_0**2", 9), ("(i0_0 + 2)*(i1_0 - 1)", 16), ("12", 12), (5, 5),
])
def test_the_language_the_compiler_emits(expr, value):
    assert evaluate_dim(expr, X) == value


def test_works_on_symbolic_sizes_under_export():
    class M(torch.nn.Module):
        def forward(self, x):
            return torch.empty(evaluate_dim("CeilDiv(i0_0, 2)*2 + Max(i0_0, 4)", [x]))

    program = torch.export.export(M(), (torch.empty(6),),
                                  dynamic_shapes=({0: torch.export.Dim("n", min=2, max=64)},))
    assert program.module()(torch.empty(9)).shape == (19,)


PAYLOAD = "().__class__.__base__.__subclasses__()"


@pytest.mark.parametrize("expr", [
    PAYLOAD, "__import__('os').system('true')", "i0_0.__class__", "lambda: 1", "i0_0 if 1 else 2",
    "abs(i0_0)", "i0_0 / 2", "i0_0 ** i0_0", "i0_0 ** 99", "i0_0 +", "(i0_0", "i0_0)", "1.5", "'a'",
    "i0_0; 1", "Max()", "FloorDiv(i0_0)", "i0_0 < 3", "[i0_0]", "-" * 200 + "1", "1" + "+1" * 600,
])
def test_anything_else_is_rejected_naming_the_expression(expr):
    with pytest.raises(ShapeExpressionError) as info:
        evaluate_dim(expr, X)
    assert repr(expr[:40]) in str(info.value) or repr(expr) in str(info.value)


def test_a_dim_of_a_missing_input_is_an_error():
    with pytest.raises(ShapeExpressionError, match="i2_0 names input 2 dim 0"):
        evaluate_dim("i2_0", X)


def test_the_payload_in_a_saved_graph_never_runs(tmp_path):
    # The fake kernel reads the spec of a (crafted) graph: tracing fails with our error, and
    # the escape through __subclasses__ (which would create a file) never runs.
    marker = tmp_path / "pwned"
    escape = (f"[c for c in {PAYLOAD} if c.__name__ == 'catch_warnings'][0]()._module"
              f".__builtins__['open']('{marker}', 'w')")
    for dim in (PAYLOAD, escape):
        spec = _engine_op.OutputSpec("blk0", "sha", [_engine_op.TensorSpec("float32", [4])],
                                     [_engine_op.TensorSpec("float32", [dim])], []).to_json()

        class M(torch.nn.Module):
            def forward(self, x):
                return torch.ops.tensorrt_rtx.execute_engine([x], torch.zeros(1, dtype=torch.uint8), spec)[0]

        with pytest.raises(ShapeExpressionError, match="output shape expression"):
            torch.export.export(M(), (torch.empty(4),))
    assert not marker.exists()


def test_spec_dtypes_must_be_torch_dtypes():
    assert _engine_op.torch_dtype("float16") is torch.float16
    for bad in ("Tensor", "__class__", "float32)", "load"):
        with pytest.raises(ValueError, match="is not a torch dtype"):
            _engine_op.torch_dtype(bad)


@pytest.mark.parametrize("expr, why", [
    ("(((((9**16)**16)**16)**16)**16)**16", "powers of powers"),        # took 42.8 s of CPU
    ("(i0_0**4)**8", "powers of powers"), ("(2**16)**2", "powers of powers"),
    ("9223372036854775808", "beyond int64"), ("9223372036854775807 + 1", "beyond int64"),
    ("3037000500*3037000500", "beyond int64"), ("(2**16)**1*(2**16)*(2**16)*(2**16)", "beyond int64"),
    ("i0_0 // 0", "divides by zero"), ("Mod(i0_0, 0)", "divides by zero"), ("i0_1 % (i1_0 - 3)", "divides by zero"),
    ("\u0664", "unexpected character"), ("i0_0 + \uff11", "unexpected character"),      # Arabic-Indic 4, fullwidth 1
    ("i\u0660_0", "unexpected character"), ("i0_0\u00a0+ 1", "unexpected character"),
])
def test_cost_is_bounded_and_errors_name_the_expression(expr, why):
    # "powers of powers" is refused while parsing: nothing is computed (the first case took 42.8 s).
    with pytest.raises(ShapeExpressionError, match=why) as info:
        evaluate_dim(expr, X)
    assert repr(expr) in str(info.value)


def test_the_largest_int64_values_still_work():
    assert evaluate_dim("9223372036854775807", X) == 2**63 - 1
    assert evaluate_dim("(i1_0**2)**8", X) == 3**16


@pytest.mark.parametrize("spec", ["[" * 5000 + "]" * 5000, '{"a":' * 100 + "1" + "}" * 100])
def test_a_deeply_nested_spec_is_refused_clearly(spec):
    with pytest.raises(ValueError, match="engine output spec: nested [0-9]+ levels deep, expected at most 32"):
        _engine_op.OutputSpec.from_json(spec)
