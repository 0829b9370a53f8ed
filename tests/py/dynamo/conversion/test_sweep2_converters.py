"""Converters for ops the new-families model sweep (issue 19) found falling back: topk (RT-DETR),
squeeze of a dim whose size is not 1 (PixArt), clone to channels_last (Swin2SR's pixel shuffle).
Each builds a real engine and is compared with eager PyTorch through the reference executor."""
from __future__ import annotations

import pytest
import tensorrt_rtx as trt
import torch
import torch.nn as nn

import torch_tensorrt_rtx as trtx
from torch_tensorrt_rtx import Input
from torch_tensorrt_rtx.dynamo.conversion._registry import Refusal, refusal_reason
from torch_tensorrt_rtx.dynamo.verification.reference_executor import run_network

from tests.py.dynamo.conversion.harness import compile_and_verify, compile_checked
from tests.py.dynamo.conversion.test_sweep_converters import Fn

DTYPES = [torch.float32, torch.float16]


def distinct(*shape, dtype=torch.float32):
    """Values that are all different (exact in fp16 too), so top-k indices are unambiguous."""
    n = torch.Size(shape).numel()
    return (torch.randperm(n).reshape(shape).float() * 0.5 - n / 4).to(dtype)


def exported_node(module, args, target, dynamic_shapes=None):
    """The first `target` node of Fn-module `module` exported on `args` (one dynamic spec per arg)."""
    shapes = None if dynamic_shapes is None else (tuple(dynamic_shapes),)  # Fn takes *xs
    ep = torch.export.export(module, tuple(args), dynamic_shapes=shapes)
    return next(n for n in ep.graph.nodes if n.target == target)


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


@pytest.mark.parametrize("dtype", DTYPES)
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


@pytest.mark.parametrize("dtype", DTYPES)
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


@pytest.mark.parametrize("dtype", DTYPES)
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


def test_reference_topk_ties_lower_index_first():
    builder = trt.Builder(trt.Logger(trt.Logger.ERROR))
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    x = network.add_input("x", trt.float32, (1, 6))
    for op in (trt.TopKOperation.MAX, trt.TopKOperation.MIN):
        layer = network.add_topk(x, op, 3, 1 << 1, trt.int64)
        for o in range(2):
            layer.get_output(o).name = f"{op.name}_{o}"
            network.mark_output(layer.get_output(o))
    out = run_network(network, {"x": torch.tensor([[1.0, 3.0, 3.0, 0.0, 3.0, 0.0]])})
    assert out["MAX_0"].tolist() == [[3.0, 3.0, 3.0]] and out["MAX_1"].tolist() == [[1, 2, 4]]
    assert out["MIN_0"].tolist() == [[0.0, 0.0, 1.0]] and out["MIN_1"].tolist() == [[3, 5, 0]]
    assert out["MAX_1"].dtype == torch.int64


# -- squeeze of a dim whose size is not 1: PixArt ------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dims", [1, -1, (0, 1), (1, 2)], ids=["size3", "last", "mixed", "size1_and_size4"])
def test_squeeze_dim_not_one(dtype, dims):
    module = Fn(lambda x: (x * 2).squeeze(dims) + 1)
    x = torch.randn(2, 3, 4).to(dtype) if dims in (1, -1) else torch.randn(2, 1, 4).to(dtype)
    op = "aten.squeeze.dims" if isinstance(dims, tuple) else "aten.squeeze.dim"
    compile_and_verify(module, [x], expect_ops=[op], full=True)
    assert module(x).shape == ((2, 3, 4) if dims in (1, -1) else (2, 4)), "test input no longer covers the case"


def test_squeeze_static_dims_dynamic_batch():
    module = Fn(lambda x: (x * 2).squeeze(2).squeeze(1) + 1)  # dim 2 has size 1, dim 1 has size 3
    spec = Input(min_shape=(1, 3, 1, 5), opt_shape=(2, 3, 1, 5), max_shape=(4, 3, 1, 5))
    compile_and_verify(module, [spec], [[torch.randn(1, 3, 1, 5)], [torch.randn(4, 3, 1, 5)]],
                       expect_ops=["aten.squeeze.dim"], full=True)


def test_squeeze_symbolic_dim_refused():
    # Eager drops the batch dim at batch 1 and keeps it otherwise; an engine's rank is fixed. (At
    # batch 1 the exported graph itself is wrong after the squeeze: its metadata keeps the dim.)
    module = Fn(lambda x: (x * 2).squeeze(0) + 1)
    node = exported_node(module, [torch.randn(3, 4)], torch.ops.aten.squeeze.dim,
                         dynamic_shapes=({0: torch.export.Dim("b", min=1)},))
    verdict = refusal_reason(node)
    assert "symbolic size" in verdict and "run time" in verdict, verdict
    spec = Input(min_shape=(1, 4), opt_shape=(2, 4), max_shape=(4, 4))
    compiled = compile_checked(module, [spec])
    assert "aten.squeeze.dim" in compiled.compile_report.fallback_ops
    for batch in (2, 4):
        x = torch.randn(batch, 4)
        assert trtx.verify(compiled, x, reference_module=module).ok


def test_squeeze_validator_is_a_refusal_object():
    from torch_tensorrt_rtx.dynamo.conversion.converters.shape import _squeeze_ok
    node = exported_node(Fn(lambda x: x.squeeze(0)), [torch.randn(3, 4)], torch.ops.aten.squeeze.dim,
                         dynamic_shapes=({0: torch.export.Dim("b")},))
    assert isinstance(_squeeze_ok(node), Refusal)


# -- clone to channels_last and pixel (un)shuffle: Swin2SR and every pixel-shuffle upscaler -----
@pytest.mark.parametrize("dtype", DTYPES)
def test_clone_channels_last(dtype):
    module = Fn(lambda x: (x * 2).clone(memory_format=torch.channels_last) + 1)
    x = torch.randn(2, 3, 4, 5).to(dtype)
    compile_and_verify(module, [x], expect_ops=["aten.clone.default"], full=True)


class Upscaler(nn.Module):
    """conv -> PixelShuffle(2) -> conv, with the channels_last clone Swin2SR puts before it."""

    def __init__(self, unshuffle: bool = False) -> None:
        super().__init__()
        self.head = nn.Conv2d(3, 12, 3, padding=1)
        self.shuffle = nn.PixelUnshuffle(2) if unshuffle else nn.PixelShuffle(2)
        self.tail = nn.Conv2d(48 if unshuffle else 3, 3, 3, padding=1)

    def forward(self, x):
        y = self.head(x).contiguous(memory_format=torch.channels_last)
        return self.tail(self.shuffle(y))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("unshuffle", [False, True], ids=["shuffle", "unshuffle"])
def test_pixel_shuffle_upscaler_dynamic_batch(dtype, unshuffle):
    module = Upscaler(unshuffle).to(dtype)
    spec = Input(min_shape=(1, 3, 8, 8), opt_shape=(2, 3, 8, 8), max_shape=(4, 3, 8, 8), dtype=dtype)
    compile_and_verify(module, [spec], [[torch.randn(1, 3, 8, 8).to(dtype)], [torch.randn(3, 3, 8, 8).to(dtype)]],
                       full=True)


@pytest.mark.parametrize("dtype", DTYPES)
def test_pixel_shuffle_static(dtype):
    module = Upscaler().to(dtype)
    compile_and_verify(module, [torch.randn(2, 3, 6, 10).to(dtype)], full=True)
