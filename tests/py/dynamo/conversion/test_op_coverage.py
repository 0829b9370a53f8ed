"""Per-converter checks: each op family compiles with zero fallback (the named ATen op converted
natively) and the reference executor matches eager, in fp32/fp16 (bf16 for a subset), with
dynamic batch and sequence dims checked at several sizes, and statically shaped in fp32."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from torch_tensorrt_rtx import Input

from tests.py.dynamo.conversion.harness import check_runs, compile_checked


aten = "aten.{}".format


class Fn(torch.nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn
        self.table = torch.nn.Parameter(torch.randn(10, 8))  # for embedding / index ops
        self.chan = torch.nn.Parameter(torch.rand(3) + 0.5)  # per-channel weights of "image" inputs
        self.w1d = torch.nn.Parameter(torch.randn(4, 8, 3) * 0.3)  # conv1d over "seq" inputs' 8 features
        self.wt1d = torch.nn.Parameter(torch.randn(8, 2, 3) * 0.3)  # conv_transpose1d, 8 -> 2 channels
        self.wt2d = torch.nn.Parameter(torch.randn(3, 2, 4, 4) * 0.3)  # conv_transpose2d, 3 -> 2 channels

    def forward(self, x):
        return self.fn(self, x)


def _sdpa_mask(m, x):
    q = x.view(x.shape[0], x.shape[1], 2, 4).transpose(1, 2)
    mask = torch.ones(x.shape[1], x.shape[1], dtype=torch.bool).tril()
    return F.scaled_dot_product_attention(q, q * 0.5, q, attn_mask=mask, scale=0.3)


def _sdpa_float_mask(m, x):
    q = x.view(x.shape[0], x.shape[1], 2, 4).transpose(1, 2)
    bias = x[:, None, :, :1].transpose(-1, -2) * 0.1  # (B, 1, 1, S) additive mask
    return F.scaled_dot_product_attention(q, q, q, attn_mask=bias)


# name -> (function of (module, x), input kind, ops that must be converted)
CASES = {
    "clamp": (lambda m, x: x.clamp(-0.5, 0.5) + x.clamp(min=0.1) + F.hardtanh(x), "seq",
              [aten("clamp.default"), aten("hardtanh.default")]),
    "leaky_relu": (lambda m, x: F.leaky_relu(x, 0.2), "seq", [aten("leaky_relu.default")]),
    "unary": (lambda m, x: x.exp() + x.abs().add(1).log() - x.neg() + x.abs().sqrt() + x.abs().add(1).rsqrt(), "seq",
              [aten(f"{o}.default") for o in ("exp", "log", "abs", "neg", "sqrt", "rsqrt")]),
    "pow": (lambda m, x: x.pow(3) + x.pow(2) + x.abs().pow(0.5), "seq", [aten("pow.Tensor_Scalar")]),
    "compare": (lambda m, x: ((x > 0) & (x <= 0.5)).to(x.dtype) + (x == x[:, :1]).to(x.dtype)
                + ((x < -0.2) | (x >= 1.0)).to(x.dtype) - (x != 0).to(x.dtype), "seq",
                [aten("gt.Scalar"), aten("le.Scalar"), aten("eq.Tensor"), aten("bitwise_or.Tensor")]),
    "where_masked_fill": (lambda m, x: torch.where(x > 0, x, x * 0.1).masked_fill(x < -1, -2.0), "seq",
                          [aten("where.self"), aten("masked_fill.Scalar")]),
    "reduce_minmax": (lambda m, x: x.amax(-1) + x.amin(1, keepdim=True).squeeze(1)[:, :1] + x.max(-1).values
                      + x.min(-1)[0] + x.max() - x.min(), "seq",
                      [aten("amax.default"), aten("amin.default"), aten("max.dim"), aten("max.default")]),
    "argmax": (lambda m, x: torch.stack([x.argmax(-1), x.argmin(1)[:, :1].expand(-1, x.shape[1]),
                                         x.max(-1)[1]]), "seq",
               [aten("argmax.default"), aten("argmin.default"), aten("max.dim")]),
    "sum_mean": (lambda m, x: x.sum() + x.mean() + x.sum(-1).mean(1, keepdim=True), "seq",
                 [aten("sum.default"), aten("mean.default")]),
    "cumsum": (lambda m, x: torch.cumsum(x, 1) + x.cumsum(-1), "seq", [aten("cumsum.default")]),
    "any_all": (lambda m, x: (x > 1).any(-1).to(x.dtype) + (x > -2).all(-1).to(x.dtype), "seq",
                [aten("any.dim"), aten("all.dim")]),
    "arange_full": (lambda m, x: x + torch.arange(x.shape[1])[None, :, None] + torch.ones_like(x) * 2
                    + torch.full_like(x, 3.0) + torch.zeros(x.shape[0], x.shape[1], 1), "seq",
                    [aten("arange.default"), aten("ones_like.default"), aten("full_like.default")]),
    "tril_triu": (lambda m, x: x.tril() + x.triu(1) * 2, "seq", [aten("tril.default"), aten("triu.default")]),
    "cast": (lambda m, x: (x > 0).to(x.dtype) + x.to(torch.float32).to(x.dtype) * (x * 4).to(torch.int32)
             .clamp(-3, 3).to(x.dtype), "seq", [aten("_to_copy.default")]),
    "slice_select": (lambda m, x: x[:, :, ::2][..., :2].sum(-1, keepdim=True) + x[:, -1:, 1:3].sum(-1, keepdim=True)
                     + x.select(2, -1).unsqueeze(-1) + x.narrow(2, 2, 1) + x[..., 1:].sum(-1, keepdim=True) + x.select(1, 0)[:, None, :1],
                     "seq",
                     [aten("slice.Tensor"), aten("select.int")]),
    "split_chunk_stack": (lambda m, x: torch.cat([*x.chunk(2, -1)], 1) + torch.stack(x.split(4, -1), 1).sum(1)
                          .repeat_interleave(1, 0).repeat(1, 2, 1), "seq",
                          [aten("split.Tensor"), aten("stack.default")]),
    "shape_ops": (lambda m, x: x.permute(2, 0, 1).transpose(1, 2).contiguous().reshape(8, -1).t()
                  .unsqueeze(0).squeeze(0).view(-1, 8).expand(2, -1, -1), "seq",
                  [aten("permute.default"), aten("expand.default")]),
    "embedding": (lambda m, x: F.embedding((x.abs() * 3).to(torch.int64).clamp(0, 9), m.table).sum(-2)
                  + m.table.index_select(0, torch.tensor([1, 3, 5, 7, 9, 0, 2, 4]))[:, 0], "seq",
                  [aten("embedding.default")]),
    "bmm_baddbmm": (lambda m, x: torch.baddbmm(x[:, :, :1], x, x.transpose(1, 2)[:, :, :1], alpha=0.5, beta=2.0)
                    + torch.bmm(x, torch.ones(x.shape[0], 8, 3, dtype=x.dtype)).sum(-1, keepdim=True), "seq",
                    [aten("baddbmm.default"), aten("bmm.default")]),
    "sdpa_causal": (lambda m, x: F.scaled_dot_product_attention(*(x.view(x.shape[0], x.shape[1], 2, 4)
                                                                   .transpose(1, 2),) * 3, is_causal=True), "seq",
                    [aten("scaled_dot_product_attention.default")]),
    "sdpa_bool_mask": (_sdpa_mask, "seq", [aten("scaled_dot_product_attention.default")]),
    "sdpa_float_mask": (_sdpa_float_mask, "seq", [aten("scaled_dot_product_attention.default")]),
    "layer_norm_plain": (lambda m, x: F.layer_norm(x, (8,)) + F.layer_norm(x, (x.shape[-2], 8)[-1:], eps=1e-3), "seq",
                         [aten("layer_norm.default")]),
    "upsample_nearest": (lambda m, x: F.interpolate(x, scale_factor=2, mode="nearest")[:, :, ::2, ::2]
                         + F.interpolate(x, size=(4, 4), mode="nearest")[:, :, :1, :1], "image",
                         [aten("upsample_nearest2d.vec")]),
    "upsample_bilinear": (lambda m, x: F.interpolate(x, scale_factor=2, mode="bilinear")
                          + F.interpolate(x, size=(16, 16), mode="bilinear", align_corners=True), "image",
                          [aten("upsample_bilinear2d.vec")]),
    "constant_pad": (lambda m, x: F.pad(x, (1, 2, 0, 1), value=0.5)[:, :, 1:, :] + F.pad(x, (-1, 4, 1, -1)), "image",
                     [aten("constant_pad_nd.default")]),
    "avg_pool": (lambda m, x: F.avg_pool2d(x, 3, 1, 1, count_include_pad=False) + F.avg_pool2d(x, 2, 2).repeat(
        1, 1, 2, 2), "image", [aten("avg_pool2d.default")]),
    "group_norm": (lambda m, x: F.group_norm(x, 3, m.chan, -m.chan, eps=1e-3) + F.group_norm(x * 4, 1), "image",
                   [aten("group_norm.default")]),
    "avg_pool_ceil": (lambda m, x: (F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False),
                                    F.avg_pool2d(x[..., :7, :7], 2, 2, ceil_mode=True),
                                    F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=True),
                                    F.avg_pool2d(x, 3, 3, 1, divisor_override=4)), "image",
                      [aten("avg_pool2d.default")]),
    "conv1d": (lambda m, x: F.conv1d(x.transpose(1, 2), m.w1d, padding=1, stride=1)
               + F.conv1d(x.transpose(1, 2), m.w1d, padding=2, dilation=2), "seq", [aten("convolution.default")]),
    "conv_transpose": (lambda m, x: (F.conv_transpose2d(x, m.wt2d, stride=2, padding=1),
                                     F.conv_transpose2d(x, m.wt2d[:, :, :3, :3], stride=2, padding=1, output_padding=1),
                                     F.conv_transpose2d(x, m.wt2d[:, :1], stride=1)), "image",
                       [aten("convolution.default")]),
    "conv_transpose1d": (lambda m, x: F.conv_transpose1d(x.transpose(1, 2), m.wt1d, stride=2, padding=1), "seq",
                         [aten("convolution.default")]),
    "cumsum_int": (lambda m, x: ((x > 0).to(torch.int64).cumsum(1) * 2 - 1, (x > 0).to(torch.int32).cumsum(-1),
                                 x + (x < 0).long().cumsum(-1)), "seq", [aten("cumsum.default")]),
    "gather": (lambda m, x: torch.gather(x, 2, (x.abs() * 3).long().clamp(0, 7))
               + torch.gather(x, 1, torch.zeros_like(x, dtype=torch.int64)[:, :1, :]).expand(-1, x.shape[1], -1)
               + x.gather(2, (x.abs() * 3).long().clamp(0, 7)[..., :3]).sum(-1, keepdim=True), "seq",
               [aten("gather.default")]),
    "index_tensor": (lambda m, x: x[:, torch.tensor([0, 1, -1])].sum(1, keepdim=True)
                     + m.table[(x.abs() * 3).long().clamp(0, 9)].sum(-1)
                     + m.table[(x[..., :1].abs() * 3).long().clamp(0, 9), torch.tensor([1, -2, 3, 0, 5, 6, 7, -1])],
                     "seq", [aten("index.Tensor")]),
    "size_arithmetic": (lambda m, x: x.reshape(x.shape[0] * x.shape[1], 2, 4).softmax(-1).view(x.shape), "seq",
                        [aten("view.default")]),
}
BF16 = ["clamp", "unary", "where_masked_fill", "slice_select", "sdpa_causal", "layer_norm_plain", "upsample_bilinear",
        "constant_pad", "arange_full"]


def _spec(kind, dtype, dynamic):
    if kind == "image":
        if not dynamic:
            return Input(shape=(2, 3, 8, 8), dtype=dtype), [(2, 3, 8, 8)]
        return (Input(min_shape=(1, 3, 8, 8), opt_shape=(2, 3, 8, 8), max_shape=(4, 3, 8, 8), dtype=dtype),
                [(1, 3, 8, 8), (4, 3, 8, 8), (3, 3, 8, 8)])
    if not dynamic:
        return Input(shape=(2, 6, 8), dtype=dtype), [(2, 6, 8)]
    return (Input(min_shape=(1, 2, 8), opt_shape=(2, 6, 8), max_shape=(4, 8, 8), dtype=dtype),
            [(1, 2, 8), (4, 8, 8), (3, 5, 8)])


def _run_case(name, dtype, dynamic):
    fn, kind, ops = CASES[name]
    module = Fn(fn).eval().to(dtype)
    spec, shapes = _spec(kind, dtype, dynamic)
    compiled = compile_checked(module, [spec], ops, full=True)
    check_runs(compiled, module, [[torch.randn(*s).to(dtype)] for s in shapes])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=["fp32", "fp16"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_op_dynamic(name, dtype):
    _run_case(name, dtype, dynamic=True)


@pytest.mark.parametrize("name", sorted(CASES))
def test_op_static_fp32(name):
    _run_case(name, torch.float32, dynamic=False)


@pytest.mark.parametrize("name", BF16)
def test_op_bf16(name):
    _run_case(name, torch.bfloat16, dynamic=True)
