"""The engine cache's key covers converters registered at run time (dynamo/_converter_fingerprint.py):
a user converter added, changed or removed for an op of the partition means a rebuild, never
another converter's cached engine."""
from __future__ import annotations

import functools

import pytest
import torch

import torch_tensorrt_rtx as trtx
from torch_tensorrt_rtx.dynamo._converter_fingerprint import function_text
from torch_tensorrt_rtx.dynamo._engine_cache import OFF_SWITCH_ENV
from torch_tensorrt_rtx.dynamo._engine_cache_key import Uncacheable
from torch_tensorrt_rtx.dynamo.conversion import _registry
from torch_tensorrt_rtx.dynamo.conversion._upstream_registry import dynamo_tensorrt_converter, remove_converter

RELU = torch.ops.aten.relu.default


@pytest.fixture(autouse=True)
def cache_enabled(monkeypatch):
    monkeypatch.delenv(OFF_SWITCH_ENV, raising=False)
    # Engines only: a recompile that hit the program cache (test_program_cache.py) would never look one up.
    monkeypatch.setenv("TORCH_TENSORRT_RTX_PROGRAM_CACHE", "0")



class Small(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(8, 8)

    def forward(self, x):
        return torch.relu(self.fc(x))


def _compile(cache_dir):
    torch.manual_seed(0)
    return trtx.compile(Small().eval(), [torch.randn(2, 8)], engine_cache_dir=cache_dir, progress=False,
                        min_block_size=1)


def _relu_layer(ctx, target, args, kwargs, name):
    import tensorrt_rtx as trt

    return ctx.net.add_activation(args[0], trt.ActivationType.RELU).get_output(0)


def _relu_as_max(ctx, target, args, kwargs, name):
    import tensorrt_rtx as trt

    layer = ctx.net.add_activation(args[0], trt.ActivationType.RELU)  # the same layer, other code
    layer.name = f"{name}_relu"
    return layer.get_output(0)


@pytest.fixture
def registered():
    """Registers upstream-style converters for relu and removes them afterwards."""
    added = []

    def register(fn, **options):
        dynamo_tensorrt_converter(RELU, priority=1, **options)(fn)
        added.append(fn)

    yield register
    for fn in added:
        remove_converter(RELU, fn)


def test_a_user_converter_registered_later_means_a_rebuild_then_a_hit(tmp_path, builds, registered):
    _compile(tmp_path)
    _compile(tmp_path)
    assert len(builds) == 1
    registered(_relu_layer)
    _compile(tmp_path)
    assert len(builds) == 2, "an engine another converter built was reused"
    _compile(tmp_path)
    assert len(builds) == 2


def test_removing_the_user_converter_finds_the_first_engine_again(tmp_path, builds, registered):
    _compile(tmp_path)
    registered(_relu_layer)
    _compile(tmp_path)
    remove_converter(RELU, _relu_layer)
    _compile(tmp_path)
    assert len(builds) == 2


def test_converters_with_other_code_have_other_texts():
    assert function_text(_relu_layer, set()) != function_text(_relu_as_max, set())
    assert function_text(_relu_layer, set()) == function_text(_relu_layer, set())


def test_an_upstream_validator_is_part_of_the_text(registered):
    registered(_relu_layer, capability_validator=lambda node, settings: True)
    first = _registry.registry_entries(RELU)[0]
    text = function_text(first.validator, set())
    assert "<lambda>" in text and "code(" in text


def test_a_closure_over_an_object_makes_the_partition_uncacheable(tmp_path, builds, registered):
    state = object()

    def converter_with_state(ctx, target, args, kwargs, name):
        assert state is not None
        return _relu_layer(ctx, target, args, kwargs, name)

    with pytest.raises(Uncacheable, match="closing over a value of type object"):
        function_text(converter_with_state, set())
    registered(converter_with_state)
    _compile(tmp_path)
    _compile(tmp_path)
    assert len(builds) == 2, "an uncacheable partition must be built each time"


def test_closures_over_plain_values_and_partials_have_stable_texts():
    def make(alpha):
        def converter_with_alpha(ctx, target, args, kwargs, name):
            return alpha

        return converter_with_alpha

    assert function_text(make(0.5), set()) == function_text(make(0.5), set())
    assert function_text(make(0.5), set()) != function_text(make(0.25), set())
    assert function_text(functools.partial(_relu_layer, name="a"), set()) != \
        function_text(functools.partial(_relu_layer, name="b"), set())


def test_a_converter_whose_source_is_a_fifo_is_uncacheable_without_blocking(tmp_path):
    import os

    fifo = tmp_path / "converter_source.py"
    os.mkfifo(fifo)
    code = compile("def fifo_converter(ctx, target, args, kwargs, name):\n    return None\n", str(fifo), "exec")
    namespace: dict = {}
    exec(code, namespace)
    with pytest.raises(Uncacheable, match="not a regular file"):
        function_text(namespace["fifo_converter"], set())
