"""Tensor creation: arange (symbolic bounds, negative steps), full/ones/zeros(_like), tril/triu."""
from __future__ import annotations

import pytest
import torch

from torch_tensorrt_rtx import Input

from tests.py.dynamo.conversion.harness import Fn, compile_and_verify, op_case_tests


# name -> (function of (module, x), input kind, ops that must be converted); harness.op_case_tests
CASES = {
    "arange_full": (lambda m, x: x + torch.arange(x.shape[1])[None, :, None] + torch.ones_like(x) * 2
                    + torch.full_like(x, 3.0) + torch.zeros(x.shape[0], x.shape[1], 1), "seq",
                    ["aten.arange.default", "aten.ones_like.default", "aten.full_like.default"]),
    "tril_triu": (lambda m, x: x.tril() + x.triu(1) * 2, "seq", ["aten.tril.default", "aten.triu.default"]),
}

test_op_dynamic, test_op_static_fp32, test_op_bf16 = op_case_tests(CASES, bf16=["arange_full"])


# -- arange with symbolic bounds and a negative step (relative positions counted down) -----------
@pytest.mark.parametrize("step", [-1, -2, -3])
def test_arange_negative_step_dynamic(step):
    # n, n-|step|, ... down to > -1: the length ceil((n + 1) / |step|) depends on the input.
    module = Fn(lambda x: (x * 2, torch.arange(x.shape[1], -1, step)))
    spec = Input(min_shape=(2, 3), opt_shape=(2, 6), max_shape=(2, 12), dtype=torch.int64)
    compile_and_verify(module, [spec], [[torch.randint(1, 9, (2, 5))], [torch.randint(1, 9, (2, 12))]],
                       expect_ops=["aten.arange.start_step"])
