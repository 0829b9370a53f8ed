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
