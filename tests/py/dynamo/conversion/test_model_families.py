"""Each example model family converts with zero PyTorch fallback and matches eager PyTorch
(reference executor) in fp32 and fp16, with dynamic batch and sequence length checked at several
sizes inside the optimization profile. Out-of-profile inputs get a clear error."""
from __future__ import annotations

import pytest
import torch

import torch_tensorrt_rtx as trtx
from torch_tensorrt_rtx.dynamo.verification import InputOutsideProfileError, check_input_shapes

from examples import models as zoo
from tests.py.dynamo.conversion.harness import check_runs, compile_checked


# ops each family must convert natively (not just "no fallback"): guards against a lowering change
# silently routing the model around the converters under test
KEY_OPS = {
    "resnet": ["aten.convolution.default", "aten.avg_pool2d.default", "aten.max_pool2d.default",
               "aten.adaptive_avg_pool2d.default", "aten.batch_norm.default"],
    "bert": ["aten.embedding.default", "aten.layer_norm.default", "aten.softmax.int", "aten.gelu.default"],
    "torch_encoder": ["aten.scaled_dot_product_attention.default", "aten.layer_norm.default"],
    "gpt_block": ["aten.scaled_dot_product_attention.default", "aten.split.Tensor", "aten.arange.start"],
    "hand_decoder": ["aten.baddbmm.default", "aten.masked_fill.Scalar", "aten.tril.default", "aten.rsqrt.default",
                     "aten.silu.default"],
    "torch_decoder": ["aten.scaled_dot_product_attention.default", "aten.split_with_sizes.default"],
}
SIZES = [(1, 2), (3, 5), (4, 16)]  # (batch, sequence) inside the profile batch 1..4, seq 2..16


@pytest.fixture(scope="session")
def compiled_family():
    """(model, compiled) for a family and dtype with its dynamic profile, compiled once per session."""
    cache = {}

    def get(name, dtype):
        if (name, dtype) not in cache:
            model, specs = zoo.build(name, dtype)
            cache[(name, dtype)] = (model, compile_checked(model, specs, KEY_OPS[name], full=True))
        return cache[(name, dtype)]

    return get


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=["fp32", "fp16"])
@pytest.mark.parametrize("name", sorted(zoo.MODELS))
def test_family_converts_fully_and_matches_eager(compiled_family, name, dtype):
    model, compiled = compiled_family(name, dtype)
    check_runs(compiled, model, [zoo.example_inputs(name, b, s, dtype) for b, s in SIZES])


@pytest.mark.parametrize("name", ["resnet", "gpt_block"])
def test_family_static_shapes(name):
    model, specs = zoo.build(name, torch.float32, dynamic=False)
    compiled = compile_checked(model, specs, KEY_OPS[name], full=True)
    check_runs(compiled, model, [zoo.example_inputs(name, 2, 8)])


def test_sequence_outside_profile_is_rejected_naming_dimension_and_range(compiled_family):
    model, compiled = compiled_family("gpt_block", torch.float32)
    too_long = zoo.example_inputs("gpt_block", 2, 20)
    with pytest.raises(RuntimeError, match=r"shape\[1\] to be <= 16, but got 20"):
        trtx.verify(compiled, *too_long)


def _network_with_profile():
    """A one-op network built from an FX graph with batch 1..4 and sequence 2..16."""
    from torch_tensorrt_rtx.dynamo.conversion._interpreter import build_network
    from torch_tensorrt_rtx.dynamo.lowering import lower

    batch, seq = torch.export.Dim("batch", min=1, max=4), torch.export.Dim("seq", min=2, max=16)
    program = torch.export.export(torch.nn.LayerNorm(8).eval(), (torch.randn(2, 5, 8),),
                                  dynamic_shapes=({0: batch, 1: seq},))
    gm = lower(program.run_decompositions({}).module())
    return build_network(gm, [{0: (1, 2, 4), 1: (2, 8, 16)}])


@pytest.mark.parametrize("shape, message", [
    ((2, 20, 8), r"input 'input_0' dimension 1 is 20, outside the optimization profile range \[2, 16\] "
                 r"\(min 2, opt 8, max 16\)"),
    ((5, 4, 8), r"dimension 0 is 5, outside the optimization profile range \[1, 4\]"),
    ((2, 4, 9), r"dimension 2 is 9, but the engine was built with a static size 8"),
    ((2, 4), r"has rank 2"),
])
def test_reference_path_profile_check(shape, message):
    network_def = _network_with_profile()
    check_input_shapes(network_def, [torch.randn(4, 16, 8)])  # max corner is fine
    check_input_shapes(network_def, [torch.randn(1, 2, 8)])  # min corner is fine
    with pytest.raises(InputOutsideProfileError, match=message):
        check_input_shapes(network_def, [torch.randn(*shape)])


def test_torch_compile_backend_changing_sizes():
    """torch.compile(backend="tensorrt_rtx"): after a size change dynamo re-traces with dynamic
    dims; every call still runs engines that match eager. (dynamic=True fails in the backend on
    symbolic float attributes, e.g. batch-norm eps; see the coverage report.)"""
    model, _ = zoo.build("gpt_block")
    compiled = torch.compile(model, backend="tensorrt_rtx", options={"min_block_size": 1, "progress": False})
    for b, s in SIZES:
        verification = trtx.verify(compiled, *zoo.example_inputs("gpt_block", b, s), reference_module=model)
        assert verification.ok and verification.engines, str(verification)
