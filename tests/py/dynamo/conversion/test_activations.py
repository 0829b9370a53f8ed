"""Activations: relu, sigmoid, tanh, gelu (erf and tanh), silu, clamp/hardtanh, leaky_relu."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tests.py.dynamo.conversion.harness import Fn, compile_and_verify, op_case_tests


ALL_FLOATS = [torch.float32, torch.float16, torch.bfloat16]


def _x(*shape, dtype=torch.float32):
    return torch.randn(*shape).to(dtype)


ACTIVATIONS = [
    ("aten.relu.default", torch.relu),
    ("aten.sigmoid.default", torch.sigmoid),
    ("aten.tanh.default", torch.tanh),
    ("aten.gelu.default", F.gelu),
    ("aten.gelu.default", lambda x: F.gelu(x, approximate="tanh")),
    ("aten.silu.default", F.silu),
]


@pytest.mark.parametrize("dtype", ALL_FLOATS)
@pytest.mark.parametrize("op,fn", ACTIVATIONS)
def test_activation(op, fn, dtype):
    compile_and_verify(Fn(fn), [_x(2, 8, dtype=dtype)], expect_ops=[op])


# name -> (function of (module, x), input kind, ops that must be converted); harness.op_case_tests
CASES = {
    "clamp": (lambda m, x: x.clamp(-0.5, 0.5) + x.clamp(min=0.1) + F.hardtanh(x), "seq",
              ["aten.clamp.default", "aten.hardtanh.default"]),
    "leaky_relu": (lambda m, x: F.leaky_relu(x, 0.2), "seq", ["aten.leaky_relu.default"]),
}

test_op_dynamic, test_op_static_fp32, test_op_bf16 = op_case_tests(CASES, bf16=["clamp"])
