"""Shape and data-movement ops: view/reshape/flatten (size arithmetic too), permute/transpose,
unsqueeze/squeeze (of dims not of size 1), cat/stack/split/chunk, expand (ViT's class token),
repeat (symbolic counts), flip, constant padding, clone to channels_last, pixel (un)shuffle."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import torch_tensorrt_rtx as trtx
from torch_tensorrt_rtx import Input
from torch_tensorrt_rtx.dynamo.conversion._registry import Refusal, refusal_reason

from tests.py.dynamo.conversion.harness import (Fn, batch_spec, compile_and_verify, compile_checked,
                                                constant_operand_test, exported_node, floats, op_case_tests, runs)


ALL_FLOATS = [torch.float32, torch.float16, torch.bfloat16]


FLOATS = [torch.float32, torch.float16]


def _x(*shape, dtype=torch.float32):
    return torch.randn(*shape).to(dtype)


def test_flatten_view_reshape_dynamic():
    fn = Fn(lambda x: torch.flatten(x, 1).view(-1, 6, 4).reshape(x.shape[0], 24) * 2)
    spec = Input(min_shape=(1, 2, 3, 4), opt_shape=(3, 2, 3, 4), max_shape=(16, 2, 3, 4))
    compile_and_verify(fn, [spec], run_inputs=[[_x(1, 2, 3, 4)], [_x(5, 2, 3, 4)], [_x(16, 2, 3, 4)]],
                       expect_ops=["aten.view.default"])


def test_permute_unsqueeze_squeeze():
    fn = Fn(lambda x: x.permute(2, 0, 1).unsqueeze(1).squeeze(1).transpose(0, 2) + 1)
    compile_and_verify(fn, [_x(2, 3, 4)], expect_ops=["aten.permute.default"])


@pytest.mark.parametrize("dtype", ALL_FLOATS)
def test_cat(dtype):
    fn = Fn(lambda a, b: torch.cat([a, b, a], dim=1) * 1)
    compile_and_verify(fn, [_x(2, 3, dtype=dtype), _x(2, 5, dtype=dtype)], expect_ops=["aten.cat.default"])


def test_cat_dynamic_axis():
    fn = Fn(lambda a, b: torch.cat([a, b], dim=0) + 1)
    spec = Input(min_shape=(1, 4), opt_shape=(2, 4), max_shape=(8, 4))
    compiled, _, _ = compile_and_verify(fn, [spec, spec], run_inputs=[[_x(3, 4), _x(5, 4)]])


# name -> (function of (module, x), input kind, ops that must be converted); harness.op_case_tests
CASES = {
    "split_chunk_stack": (lambda m, x: torch.cat([*x.chunk(2, -1)], 1) + torch.stack(x.split(4, -1), 1).sum(1)
                          .repeat_interleave(1, 0).repeat(1, 2, 1), "seq",
                          ["aten.split.Tensor", "aten.stack.default"]),
    "shape_ops": (lambda m, x: x.permute(2, 0, 1).transpose(1, 2).contiguous().reshape(8, -1).t()
                  .unsqueeze(0).squeeze(0).view(-1, 8).expand(2, -1, -1), "seq",
                  ["aten.permute.default", "aten.expand.default"]),
    "constant_pad": (lambda m, x: F.pad(x, (1, 2, 0, 1), value=0.5)[:, :, 1:, :] + F.pad(x, (-1, 4, 1, -1)), "image",
                     ["aten.constant_pad_nd.default"]),
    "size_arithmetic": (lambda m, x: x.reshape(x.shape[0] * x.shape[1], 2, 4).softmax(-1).view(x.shape), "seq",
                        ["aten.view.default"]),
}

test_op_dynamic, test_op_static_fp32, test_op_bf16 = op_case_tests(CASES, bf16=["constant_pad"])


# name -> (fn, operand makers, converted op, operand positions that may be constant)
CONSTANTS = {
    "cat": (lambda a, b: torch.cat([a, b], 1), [floats(2, 3, 4), floats(2, 5, 4)], "aten.cat.default", (0, 1)),
    "stack": (lambda a, b: torch.stack([a, b], 0), [floats(3, 4), floats(3, 4)], "aten.stack.default", (0, 1)),
}

test_constant_operand = constant_operand_test(CONSTANTS)


class ClassToken(nn.Module):
    """ViT: a learned token expanded to the (dynamic) batch and prepended to the patch tokens."""

    def __init__(self, dtype):
        super().__init__()
        self.cls_token = nn.Parameter(torch.randn(1, 1, 8).to(dtype))

    def forward(self, x):
        return torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=["fp32", "fp16"])
def test_class_token_expand_dynamic_batch(dtype):
    spec = Input(min_shape=(1, 4, 8), opt_shape=(2, 4, 8), max_shape=(8, 4, 8), dtype=dtype)
    _, report, _ = compile_and_verify(ClassToken(dtype), [spec], expect_ops=["aten.expand.default"],
                                      run_inputs=[[torch.randn(1, 4, 8).to(dtype)], [torch.randn(7, 4, 8).to(dtype)]])
    assert not report.fallback_ops and len(report.engines) == 1, report.format()


# -- squeeze of a dim whose size is not 1: PixArt ------------------------------------------------
@pytest.mark.parametrize("dtype", FLOATS)
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
@pytest.mark.parametrize("dtype", FLOATS)
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


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("unshuffle", [False, True], ids=["shuffle", "unshuffle"])
def test_pixel_shuffle_upscaler_dynamic_batch(dtype, unshuffle):
    module = Upscaler(unshuffle).to(dtype)
    spec = Input(min_shape=(1, 3, 8, 8), opt_shape=(2, 3, 8, 8), max_shape=(4, 3, 8, 8), dtype=dtype)
    compile_and_verify(module, [spec], [[torch.randn(1, 3, 8, 8).to(dtype)], [torch.randn(3, 3, 8, 8).to(dtype)]],
                       full=True)


@pytest.mark.parametrize("dtype", FLOATS)
def test_pixel_shuffle_static(dtype):
    module = Upscaler().to(dtype)
    compile_and_verify(module, [torch.randn(2, 3, 6, 10).to(dtype)], full=True)


# -- repeat whose counts are symbolic sizes ------------------------------------------------------
REPEATS = [
    ("batch_count", lambda x: x.repeat(x.shape[0], 1)),
    ("expression_and_new_dim", lambda x: x.repeat(2, x.shape[0] * 2, 1)),
    ("weight_by_batch", lambda x, w: x * w.repeat(x.shape[0], 2)),   # instance norm's weight.repeat(N)
    ("static_large", lambda x: x.repeat(1, 100)),                   # past the concatenating converter's 64
]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name,fn", REPEATS, ids=[n for n, _ in REPEATS])
def test_repeat_symbolic_counts_dynamic_batch(name, fn, dtype):
    params = [torch.randn(4)] if name == "weight_by_batch" else []
    module = Fn(fn, *params).to(dtype)
    _, report, _ = compile_and_verify(module, [batch_spec((3, 8), dtype)], runs((1, 8), (5, 8), dtype=dtype),
                                      expect_ops=["aten.repeat.default"], full=True)
    assert not report.failed_nodes, report.format()


# -- flip ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOATS + [torch.int64])
@pytest.mark.parametrize("dims", [(1,), (0, 2), (-1,), (0, 1, 2)])
def test_flip(dims, dtype):
    x = torch.randint(-50, 50, (3, 4, 5)).to(dtype)
    compile_and_verify(Fn(lambda t: t.flip(dims) * 2), [x], expect_ops=["aten.flip.default"], full=True)


@pytest.mark.parametrize("dims", [(0,), (1,), (0, 2)])
def test_flip_dynamic_batch(dims):
    # Flipping the dynamic dim itself starts from a size read at run time.
    compile_and_verify(Fn(lambda t: t.flip(dims) + 1), [batch_spec((3, 4, 5))], runs((1, 4, 5), (6, 4, 5)),
                       expect_ops=["aten.flip.default"], full=True)
