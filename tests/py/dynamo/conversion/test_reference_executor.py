"""The reference executor is an oracle that can say no: wrong converters are caught and named,
unknown layers raise instead of returning zeros; layers it models match worked examples."""
from __future__ import annotations

import pytest
import tensorrt_rtx as trt
import torch
import torch.nn as nn
import torch.nn.functional as F

import torch_tensorrt_rtx as trtx
from torch_tensorrt_rtx.dynamo.conversion import _registry
from torch_tensorrt_rtx.dynamo.conversion._interpreter import trt_logger
from torch_tensorrt_rtx.dynamo.conversion._registry import converter
from torch_tensorrt_rtx.dynamo.verification import InvalidLayerError, UnsupportedLayerError, run_network


class Small(nn.Module):
    def forward(self, x):
        return torch.sigmoid(torch.relu(x) * 2) + 1


@pytest.fixture
def broken_relu():
    """A higher-priority relu converter that computes tanh instead."""

    @converter(torch.ops.aten.relu.default, priority=100)
    def wrong_relu(ctx, node, args, kwargs):
        return ctx.name(ctx.network.add_activation(args[0], trt.ActivationType.TANH)).get_output(0)

    yield
    entries = _registry._REGISTRY[torch.ops.aten.relu.default]
    entries[:] = [e for e in entries if e.fn is not wrong_relu]


def test_verify_names_the_diverging_node(broken_relu):
    model = Small().eval()
    compiled = trtx.compile(model, [torch.randn(4, 8)], min_block_size=1, progress=False)
    report = trtx.verify(compiled, torch.randn(4, 8), reference_module=model)
    assert not report.ok
    assert report.engines[0].diverging_nodes[0].node == "relu", str(report)
    assert "relu" in str(report) and "MISMATCH" in str(report)


def test_unmodelled_layer_type_raises():
    builder = trt.Builder(trt.Logger(trt.Logger.ERROR))
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    x = network.add_input("x", trt.float32, (1, 2, 3))
    bounds = network.add_input("bounds", trt.int32, (1, 2, 1))
    network.mark_output(network.add_ragged_softmax(x, bounds).get_output(0))
    with pytest.raises(UnsupportedLayerError, match="RAGGED_SOFTMAX"):
        run_network(network, {"x": torch.randn(1, 2, 3), "bounds": torch.ones(1, 2, 1, dtype=torch.int32)})


def test_input_dtype_mismatch_is_an_error():
    builder = trt.Builder(trt.Logger(trt.Logger.ERROR))
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    x = network.add_input("x", trt.float16, (2, 3))
    network.mark_output(network.add_activation(x, trt.ActivationType.RELU).get_output(0))
    with pytest.raises(TypeError, match="float16"):
        run_network(network, {"x": torch.randn(2, 3)})


def test_a_layer_type_has_one_handler():
    """Handlers are registered once per layer type; a second one is refused, naming the first
    (no handler silently replaces or wraps another)."""
    from torch_tensorrt_rtx.dynamo.verification._layer_registry import _HANDLERS, handles

    before = dict(_HANDLERS)

    def second_softmax(layer, ins):
        return ins[0]

    with pytest.raises(ValueError, match="second_softmax registers layer type SOFTMAX, already handled by "
                                         r"torch_tensorrt_rtx\.dynamo\.verification\.reference_layers\._softmax"):
        handles(trt.LayerType.SOFTMAX, trt.ISoftMaxLayer)(second_softmax)
    assert _HANDLERS == before


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


def test_reference_grid_sample_matches_nvidias_worked_example():
    # The example on NVIDIA's GridSample operator page (LINEAR, FILL, align_corners=0), whose
    # expected output is given to 3 decimals: the reference executor models the layer, not torch.
    builder = trt.Builder(trt_logger())
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    image = network.add_input("image", trt.float32, (1, 1, 3, 3))
    grid = network.add_input("grid", trt.float32, (1, 4, 3, 2))
    layer = network.add_grid_sample(image, grid)
    layer.interpolation_mode, layer.sample_mode, layer.align_corners = (trt.InterpolationMode.LINEAR,
                                                                        trt.SampleMode.FILL, False)
    network.mark_output(layer.get_output(0))
    points = torch.tensor([[[-2.0, -1.83], [-1.67, -1.5], [-1.33, -1.17]],
                           [[-1.0, -0.83], [-0.67, -0.5], [-0.33, -0.17]],
                           [[0.0, 0.17], [0.33, 0.5], [0.67, 0.83]],
                           [[1.0, 1.17], [1.33, 1.5], [1.67, 1.83]]]).reshape(1, 4, 3, 2)
    feeds = {"image": torch.arange(9.0).reshape(1, 1, 3, 3), "grid": points}
    (out,) = run_network(network, feeds).values()
    expected = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.746, 2.74], [4.764, 6.744, 6.009], [0.979, 0.0, 0.0]])
    torch.testing.assert_close(out.reshape(4, 3), expected, atol=2e-3, rtol=0)


# -- INormalizationLayer with num_groups (rules in reference_layers.py, from TensorRT-RTX's docs) ----
def _group_norm_network(make_layer, shape=(2, 6, 3, 4), dtype=trt.float32):
    builder = trt.Builder(trt_logger())
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    x = network.add_input("x", dtype, shape)
    scale = network.add_input("scale", dtype, (1, -1) + (1,) * (len(shape) - 2))
    bias = network.add_input("bias", dtype, (1, -1) + (1,) * (len(shape) - 2))
    layer = make_layer(network, x, scale, bias)
    network.mark_output(layer.get_output(0))
    return builder, network


def _grouped(groups, eps, v2=True, axes=0b1100):
    def make(network, x, scale, bias):
        add = network.add_normalization_v2 if v2 else network.add_normalization
        layer = add(x, scale, bias, axes)
        layer.num_groups, layer.epsilon = groups, eps
        return layer
    return make


@pytest.mark.parametrize("groups", [2, 3, 6])
def test_reference_group_normalization_v2_scales_per_channel(groups):
    _builder, network = _group_norm_network(_grouped(groups, 1e-3))
    x, weight, bias = torch.randn(2, 6, 3, 4) * 3 + 1, torch.rand(6) + 0.5, torch.randn(6)
    (out,) = run_network(network, {"x": x, "scale": weight.reshape(1, 6, 1, 1),
                                   "bias": bias.reshape(1, 6, 1, 1)}).values()
    torch.testing.assert_close(out, F.group_norm(x, groups, weight, bias, eps=1e-3))


def test_reference_group_normalization_v1_scales_per_group():
    # add_normalization (the first API) takes one scale and bias per group: [1, G, 1, 1].
    _builder, network = _group_norm_network(_grouped(3, 1e-5, v2=False, axes=0b100), shape=(2, 6, 5))
    x, weight, bias = torch.randn(2, 6, 5), torch.tensor([0.5, 2.0, -1.0]), torch.tensor([1.0, 0.0, 3.0])
    (out,) = run_network(network, {"x": x, "scale": weight.reshape(1, 3, 1), "bias": bias.reshape(1, 3, 1)}).values()
    per_channel = weight.repeat_interleave(2), bias.repeat_interleave(2)
    torch.testing.assert_close(out, F.group_norm(x, 3, *per_channel))


@pytest.mark.parametrize("make,scale_channels,match", [
    (_grouped(3, 1e-5), 3, r"scale and bias of shape \(1, 3, 1, 1\); .* \(1, 6, 1, 1\) from add_normalization_v2"),
    (_grouped(3, 1e-5, v2=False), 6, r"\(1, 6, 1, 1\); .* \(1, 3, 1, 1\) from add_normalization \(one per group\)"),
    (_grouped(3, 1e-5, axes=0b1110), 6, "axes mask 0xe with num_groups=3; .* 0xc"),
    (_grouped(4, 1e-5), 6, "num_groups=4 for 6 channels"),
])
def test_reference_group_normalization_refuses_what_tensorrt_rtx_does_not_define(make, scale_channels, match):
    _builder, network = _group_norm_network(make)
    params = torch.ones(1, scale_channels, 1, 1)
    with pytest.raises(InvalidLayerError, match=match):
        run_network(network, {"x": torch.randn(2, 6, 3, 4), "scale": params, "bias": params})


def test_reference_normalization_needs_one_type():
    builder = trt.Builder(trt_logger())
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    x = network.add_input("x", trt.float16, (2, 4, 3))
    scale = network.add_input("scale", trt.float32, (1, 4, 1))
    layer = network.add_normalization_v2(x, scale, scale, 0b100)
    layer.num_groups = 2
    network.mark_output(layer.get_output(0))
    with pytest.raises(InvalidLayerError, match="types torch.float16, torch.float32, torch.float32"):
        run_network(network, {"x": torch.randn(2, 4, 3).half(), "scale": torch.ones(1, 4, 1)})
