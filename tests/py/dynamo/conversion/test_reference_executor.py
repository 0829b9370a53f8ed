"""The reference executor is an oracle that can say no: wrong converters are caught and named,
unknown layers raise instead of returning zeros; layers it models match worked examples."""
from __future__ import annotations

import pytest
import tensorrt_rtx as trt
import torch
import torch.nn as nn

import torch_tensorrt_rtx as trtx
from torch_tensorrt_rtx.dynamo.conversion import _registry
from torch_tensorrt_rtx.dynamo.conversion._interpreter import trt_logger
from torch_tensorrt_rtx.dynamo.conversion._registry import converter
from torch_tensorrt_rtx.dynamo.verification import UnsupportedLayerError, run_network


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
