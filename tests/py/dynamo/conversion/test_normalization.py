"""Normalization: batch norm (running and batch statistics), layer norm, group norm (also of a
strided input), instance norm (1-D/2-D/3-D, affine, running statistics, decomposed form)."""
from __future__ import annotations

import pytest
import tensorrt_rtx as trt
import torch
import torch.nn as nn
import torch.nn.functional as F

import torch_tensorrt_rtx as trtx

from tests.py.dynamo.conversion.harness import Fn, batch_spec, compile_and_verify, floats, op_case_tests, runs


ALL_FLOATS = [torch.float32, torch.float16, torch.bfloat16]


FLOATS = [torch.float32, torch.float16]


def _x(*shape, dtype=torch.float32):
    return torch.randn(*shape).to(dtype)


@pytest.mark.parametrize("dtype", ALL_FLOATS)
def test_batch_norm_inference(dtype):
    bn = nn.BatchNorm2d(5)
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    bn.weight.data.uniform_(0.5, 1.5)
    compile_and_verify(nn.Sequential(bn).to(dtype), [_x(2, 5, 4, 4, dtype=dtype)],
                       expect_ops=["aten.batch_norm.default"])


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("affine", [False, True])
def test_batch_norm_with_batch_statistics(affine, dtype):
    # F.batch_norm(training=True) without running statistics: _native_batch_norm_legit.no_stats.
    params = [torch.rand(3) + 0.5, torch.randn(3)] if affine else []
    fn = Fn(lambda x, *wb: F.batch_norm(x, None, None, *wb, training=True), *params).to(dtype)
    compile_and_verify(fn, [(torch.randn(4, 3, 5, 2) * 2).to(dtype)],
                       expect_ops=["aten._native_batch_norm_legit.no_stats"], full=True)


# name -> (function of (module, x), input kind, ops that must be converted); harness.op_case_tests
CASES = {
    "layer_norm_plain": (lambda m, x: F.layer_norm(x, (8,)) + F.layer_norm(x, (x.shape[-2], 8)[-1:], eps=1e-3), "seq",
                         ["aten.layer_norm.default"]),
    "group_norm": (lambda m, x: F.group_norm(x, 3, m.chan, -m.chan, eps=1e-3) + F.group_norm(x * 4, 1), "image",
                   ["aten.group_norm.default"]),
}

test_op_dynamic, test_op_static_fp32, test_op_bf16 = op_case_tests(CASES, bf16=["layer_norm_plain", "group_norm"])


class AttentionThenGroupNorm(nn.Module):
    """diffusers' VAE mid block: attention over (B, H*W, C) tokens, transposed back to an image
    (channels-last strides), then group norm, whose ATen kernel rejects those strides at batch 1
    ("Expected X.is_contiguous(memory_format)"): verify runs the partition eagerly and failed."""

    def __init__(self):
        super().__init__()
        self.norm = nn.GroupNorm(4, 8)
        self.proj = nn.Linear(8, 8)

    def forward(self, x):
        b, c, h, w = x.shape
        tokens = self.proj(x.view(b, c, h * w).transpose(1, 2))  # (B, H*W, C), contiguous
        image = tokens.transpose(1, 2).reshape(b, c, h, w)
        return self.norm((image + x) / 2)


@pytest.mark.parametrize("dtype", FLOATS, ids=["fp32", "fp16"])
def test_group_norm_of_strided_input(dtype):
    compile_and_verify(AttentionThenGroupNorm().to(dtype), [floats(1, 8, 4, 4, scale=5.0)(dtype)],
                       expect_ops=["aten.group_norm.default"])


# -- group norm as one INormalizationLayer ------------------------------------------------------
def _layers(compiled, layer_type):
    """The layers of `layer_type` in the network of `compiled`'s one engine (re-classed)."""
    (source,) = compiled._engine_sources.values()
    network = source.network.network
    layers = [network.get_layer(i) for i in range(network.num_layers)]
    found = [layer for layer in layers if layer.type == layer_type]
    if layer_type == trt.LayerType.NORMALIZATION:
        for layer in found:
            layer.__class__ = trt.INormalizationLayer  # to read num_groups, axes, epsilon
    return found


def _group_norm(groups, channels, affine, dtype):
    module = nn.GroupNorm(groups, channels, eps=1e-3, affine=affine)
    if affine:
        nn.init.uniform_(module.weight, 0.5, 1.5)
        nn.init.uniform_(module.bias, -1, 1)
    return module.eval().to(dtype)


@pytest.mark.parametrize("dtype", FLOATS, ids=["fp32", "fp16"])
@pytest.mark.parametrize("groups", [1, 2, 6])
@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
def test_group_norm_is_one_normalization_layer(affine, groups, dtype):
    """Channels in groups of 6/G, each group standardized over its channels and the spatial dims:
    one add_normalization_v2 layer with num_groups (one group: a layer norm over C and the
    spatial dims), in fp32 whatever the input dtype; no reductions."""
    module = _group_norm(groups, 6, affine, dtype)
    x = (torch.randn(2, 6, 5, 4) * 3 + 1).to(dtype)
    compiled, _, _ = compile_and_verify(module, [x], expect_ops=["aten.group_norm.default"], full=True)
    (norm,) = _layers(compiled, trt.LayerType.NORMALIZATION)
    assert norm.is_v2 and norm.num_groups == groups and norm.axes == (0b1110 if groups == 1 else 0b1100)
    assert norm.get_output(0).dtype == trt.float32 and abs(norm.epsilon - 1e-3) < 1e-9
    assert not _layers(compiled, trt.LayerType.REDUCE)


def test_group_norm_dynamic_batch_and_size():
    module = _group_norm(3, 6, True, torch.float32)
    spec = trtx.Input(min_shape=(1, 6, 2, 4), opt_shape=(2, 6, 5, 4), max_shape=(8, 6, 9, 4))
    compiled, _, _ = compile_and_verify(module, [spec], runs((1, 6, 2, 4), (7, 6, 9, 4), (3, 6, 5, 4)),
                                        expect_ops=["aten.group_norm.default"], full=True)
    (norm,) = _layers(compiled, trt.LayerType.NORMALIZATION)
    assert norm.num_groups == 3


@pytest.mark.parametrize("dtype", FLOATS, ids=["fp32", "fp16"])
def test_group_norm_of_rank_2_input_is_built_from_reductions(dtype):
    # [N, C]: no dims after the channels for the layer's axes (TensorRT-RTX wants [N, C, D1, ...]).
    module = _group_norm(2, 6, True, dtype)
    compiled, _, _ = compile_and_verify(module, [(torch.randn(4, 6) * 2).to(dtype)],
                                        expect_ops=["aten.group_norm.default"], full=True)
    assert not _layers(compiled, trt.LayerType.NORMALIZATION) and _layers(compiled, trt.LayerType.REDUCE)


def test_group_norm_of_an_empty_batch():
    # An [0, C] input: the reshape to [N, G, C/G] cannot infer a -1 from zero elements.
    compile_and_verify(_group_norm(2, 6, True, torch.float32), [torch.randn(0, 6)],
                       expect_ops=["aten.group_norm.default"], full=True)


# -- instance norm ------------------------------------------------------------------------------
def _with_statistics(module):
    if module.track_running_stats:
        module.running_mean.uniform_(-0.5, 0.5)
        module.running_var.uniform_(0.5, 1.5)
    if module.affine:
        nn.init.uniform_(module.weight, 0.5, 1.5)
        nn.init.uniform_(module.bias, -0.5, 0.5)
    return module


INSTANCE_NORMS = [
    ("plain_2d", lambda: nn.InstanceNorm2d(3), (2, 3, 5, 6)),
    ("affine_2d", lambda: nn.InstanceNorm2d(3, affine=True), (2, 3, 5, 6)),
    ("running_stats_2d", lambda: nn.InstanceNorm2d(3, affine=True, track_running_stats=True), (2, 3, 5, 6)),
    ("affine_1d", lambda: nn.InstanceNorm1d(4, affine=True), (2, 4, 9)),
    ("plain_3d", lambda: nn.InstanceNorm3d(2), (2, 2, 3, 4, 5)),
]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name,make,shape", INSTANCE_NORMS, ids=[n for n, _, _ in INSTANCE_NORMS])
def test_instance_norm(name, make, shape, dtype):
    module = _with_statistics(make()).eval().to(dtype)
    x = (torch.randn(*shape) * 3 + 1).to(dtype)
    compile_and_verify(module, [x], expect_ops=["aten.instance_norm.default"], full=True)


@pytest.mark.parametrize("name,make,shape", INSTANCE_NORMS[1:3], ids=[n for n, _, _ in INSTANCE_NORMS[1:3]])
def test_instance_norm_dynamic_batch(name, make, shape):
    module = _with_statistics(make()).eval()
    rest = shape[1:]
    compile_and_verify(module, [batch_spec(shape)], runs((1,) + rest, (7,) + rest),
                       expect_ops=["aten.instance_norm.default"], full=True)


def test_functional_instance_norm_with_weights():
    fn = Fn(lambda x, w, b: F.instance_norm(x, weight=w, bias=b, eps=1e-3), torch.rand(3) + 0.5, torch.randn(3))
    compile_and_verify(fn, [torch.randn(2, 3, 4, 4)], expect_ops=["aten.instance_norm.default"], full=True)


def test_decomposed_instance_norm_dynamic_batch():
    # torch's own decomposition of instance norm, written out: a (1, N*C, H, W) view, weights
    # repeated N times (a symbolic count) and batch norm over the batch's statistics.
    def decomposed(x, w, b):
        n, c = x.shape[0], x.shape[1]
        out = F.batch_norm(x.reshape(1, n * c, 5, 6), None, None, w.repeat(n), b.repeat(n), training=True)
        return out.reshape(n, c, 5, 6)

    module = Fn(decomposed, torch.rand(3) + 0.5, torch.randn(3))
    compile_and_verify(module, [batch_spec((2, 3, 5, 6))], runs((1, 3, 5, 6), (6, 3, 5, 6)),
                       expect_ops=["aten._native_batch_norm_legit.no_stats", "aten.repeat.default"], full=True)
