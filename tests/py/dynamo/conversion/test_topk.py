"""topk (RT-DETR's query selection): values and indices, integers, dynamic batch and reduced dim,
ties; what TensorRT-RTX cannot do stays in PyTorch with the reason named."""
from __future__ import annotations

import pytest
import torch

from torch_tensorrt_rtx import Input
from torch_tensorrt_rtx.dynamo.conversion._registry import refusal_reason

from tests.py.dynamo.conversion.harness import Fn, compile_and_verify, compile_checked, exported_node


FLOATS = [torch.float32, torch.float16]


def distinct(*shape, dtype=torch.float32):
    """Values that are all different (exact in fp16 too), so top-k indices are unambiguous."""
    n = torch.Size(shape).numel()
    return (torch.randperm(n).reshape(shape).float() * 0.5 - n / 4).to(dtype)


def assert_stays_in_pytorch(module, inputs, op):
    compiled = compile_checked(module, inputs)
    assert op in compiled.compile_report.fallback_ops, compiled.compile_report.format()


# -- topk: RT-DETR's query selection --------------------------------------------------------------
TOPK_CASES = [  # shape, k, dim, largest
    ((2, 84), 10, -1, True),       # RT-DETR: 10 of 84 on the last dim
    ((2, 6, 5), 3, 1, False),
    ((2, 3, 4, 7), 7, 3, True),    # k equal to the dim
    ((3, 2, 2, 3, 9), 2, -4, False),  # rank 5: the earliest dim TensorRT's top-k reduces
]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape,k,dim,largest", TOPK_CASES)
def test_topk_values_and_indices(dtype, shape, k, dim, largest):
    module = Fn(lambda x: (lambda v, i: (v * 2, i))(*torch.topk(x, k, dim=dim, largest=largest)))
    compile_and_verify(module, [distinct(*shape, dtype=dtype)], expect_ops=["aten.topk.default"], full=True)


@pytest.mark.parametrize("dtype", [torch.int32, torch.int64])
def test_topk_integers(dtype):
    module = Fn(lambda x: torch.topk(x, 4, dim=1))
    compile_and_verify(module, [distinct(3, 12).to(dtype)], expect_ops=["aten.topk.default"], full=True)


def test_topk_indices_feed_gather():
    # RT-DETR gathers the selected queries with the indices (int64 in torch and in the engine).
    def select(scores, features):
        index = torch.topk(scores, 5, dim=1).indices
        return torch.gather(features, 1, index.unsqueeze(-1).expand(-1, -1, features.shape[-1]))
    compile_and_verify(Fn(select), [distinct(2, 30), torch.randn(2, 30, 8)], expect_ops=["aten.topk.default"])


@pytest.mark.parametrize("dtype", FLOATS)
def test_topk_dynamic_batch(dtype):
    module = Fn(lambda x: torch.topk(x, 10, dim=-1))
    spec = Input(min_shape=(1, 84), opt_shape=(2, 84), max_shape=(4, 84), dtype=dtype)
    compile_and_verify(module, [spec], [[distinct(1, 84, dtype=dtype)], [distinct(4, 84, dtype=dtype)]],
                       expect_ops=["aten.topk.default"], full=True)


def test_topk_dynamic_reduced_dim():
    module = Fn(lambda x: torch.topk(x, 10, dim=1, largest=False))
    spec = Input(min_shape=(2, 16), opt_shape=(2, 40), max_shape=(2, 100))
    compile_and_verify(module, [spec], [[distinct(2, 16)], [distinct(2, 100)]], expect_ops=["aten.topk.default"],
                       full=True)


@pytest.mark.parametrize("dtype", FLOATS)
def test_topk_ties_values(dtype):
    # Which of two equal values comes first is unspecified, so only the values are compared.
    module = Fn(lambda x: torch.topk(x, 6, dim=-1).values + 1)
    x = torch.randint(0, 4, (3, 20)).to(dtype)
    compile_and_verify(module, [x], expect_ops=["aten.topk.default"], full=True)


REFUSED = [  # call, input, words the reason must contain
    (lambda x: torch.topk(x, 3900, dim=1), torch.randn(1, 4000), "3840"),
    (lambda x: torch.topk(x, 3, dim=0), torch.randn(6, 2, 2, 2, 2), "last four dims"),
    (lambda x: torch.topk(x, 3, sorted=False), torch.randn(2, 9), "sorted=False"),
]


@pytest.mark.parametrize("fn,x,words", REFUSED, ids=["k_over_limit", "early_dim", "unsorted"])
def test_topk_refusals_name_reason(fn, x, words):
    module = Fn(lambda x: fn(x * 2)[0] + 1)
    reason = refusal_reason(exported_node(module, [x], torch.ops.aten.topk.default))
    assert words in reason, reason
    assert_stays_in_pytorch(module, [x], "aten.topk.default")


def test_topk_symbolic_k_refused():
    module = Fn(lambda x: torch.topk(x, x.shape[1] - 1, dim=1).values)
    x = torch.randn(2, 10)
    node = exported_node(module, [x], torch.ops.aten.topk.default,
                         dynamic_shapes=({1: torch.export.Dim("n", min=4, max=64)},))
    assert "symbolic" in refusal_reason(node)
