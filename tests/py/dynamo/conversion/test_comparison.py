"""Comparisons, logical and bitwise ops on masks, where and masked_fill; constants (masks built
from weights, as BERT's) in every operand position."""
from __future__ import annotations

import torch

from tests.py.dynamo.conversion.harness import bools, constant_operand_test, floats, op_case_tests


# name -> (function of (module, x), input kind, ops that must be converted); harness.op_case_tests
CASES = {
    "compare": (lambda m, x: ((x > 0) & (x <= 0.5)).to(x.dtype) + (x == x[:, :1]).to(x.dtype)
                + ((x < -0.2) | (x >= 1.0)).to(x.dtype) - (x != 0).to(x.dtype), "seq",
                ["aten.gt.Scalar", "aten.le.Scalar", "aten.eq.Tensor", "aten.bitwise_or.Tensor"]),
    "where_masked_fill": (lambda m, x: torch.where(x > 0, x, x * 0.1).masked_fill(x < -1, -2.0), "seq",
                          ["aten.where.self", "aten.masked_fill.Scalar"]),
}

test_op_dynamic, test_op_static_fp32, test_op_bf16 = op_case_tests(CASES, bf16=["where_masked_fill"])


# name -> (fn, operand makers, converted op, operand positions that may be constant)
CONSTANTS = {
    "lt": (lambda a, b: (a < b).to(a.dtype) + a, [floats(4, 8), floats(4, 8)], "aten.lt.Tensor", (1,)),
    "eq_tensor_constant_first": (lambda a, b: (a == b.round()).to(b.dtype) + b, [floats(4, 8), floats(4, 8)],
                                 "aten.eq.Tensor", (0,)),
    "bitwise_and": (lambda m, x: (m & (x > 0)).to(x.dtype) + x, [bools(4, 8), floats(4, 8)],
                    "aten.bitwise_and.Tensor", (0,)),
    "logical_or": (lambda x, m: torch.logical_or(x > 0, m).to(x.dtype) + x, [floats(4, 8), bools(4, 8)],
                   "aten.logical_or.default", (1,)),
    "where_condition": (lambda c, a, b: torch.where(c, a, b), [bools(4, 8), floats(4, 8), floats(4, 8)],
                        "aten.where.self", (0, 1, 2)),
    "masked_fill_mask": (lambda x, m: x.masked_fill(m, -1.0), [floats(4, 8), bools(4, 8)],
                         "aten.masked_fill.Scalar", (1,)),
}

test_constant_operand = constant_operand_test(CONSTANTS)
