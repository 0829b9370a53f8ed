"""Fallback at node granularity, and what the user sees of it.

A node whose converter fails stays in PyTorch alone: the rest of its subgraph is partitioned
again and still becomes engines. The report names the node with a one-line reason, a
FallbackWarning reaches users who configured nothing, and `torch_executed_ops` takes every
spelling of an op.
"""
from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn as nn

import torch_tensorrt_rtx as trtx
from torch_tensorrt_rtx.dynamo._summary import FallbackWarning
from torch_tensorrt_rtx.dynamo.conversion._registry import converter


@torch.library.custom_op("trtx_tests::breaks_converter", mutates_args=())
def breaks_converter(x: torch.Tensor) -> torch.Tensor:
    return x * 3


@breaks_converter.register_fake
def _(x):
    return torch.empty_like(x)


BIG = torch.arange(5000.0)


@converter(torch.ops.trtx_tests.breaks_converter.default)
def _always_fails(ctx, node, args, kwargs):
    # The kind of message real converter bugs produce: a multi-KB tensor repr on several lines.
    raise TypeError(f"add_slice(): incompatible function arguments. Invoked with:\n{BIG}\n{BIG}")


class Chain(nn.Module):
    """linear, relu, broken, linear, sigmoid, add: one TensorRT block on each side of the bad node."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(8, 8), nn.Linear(8, 4)

    def forward(self, x):
        x = breaks_converter(torch.relu(self.a(x)) * 2)
        return torch.sigmoid(self.b(x)) + 1


def _compile(module, inputs, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compiled = trtx.compile(module.eval(), inputs, min_block_size=1, progress=False, **kwargs)
    return compiled, [w for w in caught if issubclass(w.category, FallbackWarning)]


def test_failed_converter_keeps_only_its_node_in_pytorch():
    model = Chain()
    compiled, caught = _compile(model, [torch.randn(3, 8)])
    report = compiled.compile_report
    assert len(report.engines) == 2, report.format()  # both neighbours still converted
    assert report.fallback_ops == {"trtx_tests.breaks_converter.default": 1}, report.format()
    assert list(report.failed_nodes) == ["breaks_converter"], report.failed_nodes
    reason = report.failed_nodes["breaks_converter"]
    assert "add_slice(): incompatible function arguments" in reason
    assert "\n" not in reason and len(reason) < 300, reason
    assert all(len(line) < 400 for line in report.format().splitlines()), report.format()
    verification = trtx.verify(compiled, torch.randn(3, 8), reference_module=model)
    assert verification.ok, str(verification)


def test_fallback_is_a_warning_with_count_and_reasons():
    _, caught = _compile(Chain(), [torch.randn(3, 8)])
    assert len(caught) == 1, [str(w.message) for w in caught]
    message = str(caught[0].message)
    assert "1 op(s) stay in PyTorch" in message and "trtx_tests.breaks_converter.default" in message
    assert "add_slice()" in message and len(message) < 1000, message


def test_no_warning_when_everything_converts():
    _, caught = _compile(nn.Sequential(nn.Linear(8, 8), nn.ReLU()), [torch.randn(2, 8)])
    assert not caught


def test_size_arithmetic_and_getitem_are_not_listed_as_fallback():
    class SplitAndReshape(nn.Module):
        def forward(self, x):
            a, b = breaks_converter(x).split(4, dim=1)
            return (a * b).reshape(x.shape[0] * 2, 2)

    spec = trtx.Input(min_shape=(1, 8), opt_shape=(4, 8), max_shape=(16, 8))
    compiled, _ = _compile(SplitAndReshape(), [spec], torch_executed_ops={"aten.split.Tensor"})
    names = set(compiled.compile_report.fallback_ops)
    assert names == {"trtx_tests.breaks_converter.default", "aten.split.Tensor"}, compiled.compile_report.format()


def test_print_report_is_the_readable_summary(capsys):
    compiled, _ = _compile(Chain(), [torch.randn(3, 8)])
    print(compiled.compile_report)
    out = capsys.readouterr().out
    assert out.startswith("torch_tensorrt_rtx: 2 TensorRT-RTX subgraph(s)"), out
    assert "failed node breaks_converter" in out and "CompileReport(" not in out


@pytest.mark.parametrize("spelling", [
    torch.ops.aten.gelu.default, torch.ops.aten.gelu, "aten.gelu.default", "torch.ops.aten.gelu.default",
    "aten::gelu", "gelu"])
def test_torch_executed_ops_spellings(spelling):
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.GELU(), nn.Linear(8, 8), nn.Sigmoid())
    compiled, _ = _compile(model, [torch.randn(2, 8)], torch_executed_ops=[spelling])
    report = compiled.compile_report
    assert report.fallback_ops == {"aten.gelu.default": 1}, report.format()
    assert len(report.engines) == 2


@pytest.mark.parametrize("spelling,message", [
    ("aten.gleu.default", "names no op: torch.ops.aten has no 'gleu'"),
    ("aten.gelu.Tensor", "aten.gelu has no overload 'Tensor'"),
    ("torch.ops.nosuchlib.op", "names no op"),
    ("a.b.c.d", "is not an op name"),
])
def test_torch_executed_ops_unknown_name_is_an_error(spelling, message):
    with pytest.raises(ValueError, match=message):
        trtx.compile(nn.Linear(2, 2).eval(), [torch.randn(1, 2)], torch_executed_ops=[spelling])


def test_torch_executed_ops_through_torch_compile_options():
    torch._dynamo.reset()
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.GELU(), nn.Linear(8, 8)).eval()
    with warnings.catch_warnings(), trtx.compile_reports() as reports:
        warnings.simplefilter("ignore", FallbackWarning)
        compiled = torch.compile(model, backend="tensorrt_rtx", dynamic=False,
                                 options={"min_block_size": 1, "progress": False,
                                          "torch_executed_ops": {"torch.ops.aten.gelu.default"}})
        assert trtx.verify(compiled, torch.randn(2, 8), reference_module=model).ok
    assert [r.fallback_ops for r in reports] == [{"aten.gelu.default": 1}]
    torch._dynamo.reset()


@torch.library.custom_op("trtx_tests::invalid_layer", mutates_args=())
def invalid_layer(x: torch.Tensor) -> torch.Tensor:
    return x * 1


@invalid_layer.register_fake
def _(x):
    return torch.empty_like(x)


@converter(torch.ops.trtx_tests.invalid_layer.default)
def _volume_changing_reshape(ctx, node, args, kwargs):
    layer = ctx.network.add_shuffle(args[0])
    layer.reshape_dims = (7, 5)  # 3 x 8 -> 7 x 5: TensorRT-RTX rejects it when the shape is inferred
    return ctx.name(layer, "bad").get_output(0)


def test_layer_tensorrt_rejects_is_blamed_on_its_node_with_tensorrts_words():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(8, 8), nn.Linear(8, 8)

        def forward(self, x):
            return torch.sigmoid(self.b(invalid_layer(torch.relu(self.a(x)))))

    compiled, _ = _compile(M(), [torch.randn(3, 8)])
    report = compiled.compile_report
    assert list(report.failed_nodes) == ["invalid_layer"] and len(report.engines) == 2, report.format()
    assert "reshape changes volume" in report.failed_nodes["invalid_layer"]


def test_compiled_module_keeps_exports_input_checks():
    # Fallback re-partitions copies of the graph; the module returned is still the exported one,
    # with torch.export's input-constraint checks.
    spec = trtx.Input(min_shape=(1, 8), opt_shape=(2, 8), max_shape=(8, 8))
    compiled, _ = _compile(Chain(), [spec])
    assert len(compiled.compile_report.engines) == 2
    with pytest.raises(Exception, match="<= 8"):
        compiled(torch.randn(9, 8))


def test_output_size_from_a_merged_input_dim_is_not_data_dependent():
    # After a PyTorch op the next engine sees (16*B, 8) and produces view(-1, 32) = (4*B, 32):
    # B is recovered as (i0_0 // 16), so the engine is built instead of its nodes falling back.
    class Merged(nn.Module):
        def forward(self, x):
            h = breaks_converter(x.reshape(-1, 8))
            return torch.relu(h.view(-1, 32)) * 2 + 1

    spec = trtx.Input(min_shape=(1, 16, 8), opt_shape=(2, 16, 8), max_shape=(8, 16, 8))
    compiled, _ = _compile(Merged(), [spec])
    report = compiled.compile_report
    assert set(report.failed_nodes) == {"breaks_converter"}, report.format()
    assert report.fallback_ops == {"trtx_tests.breaks_converter.default": 1}, report.format()
    for batch in (1, 5):
        assert trtx.verify(compiled, torch.randn(batch, 16, 8), reference_module=Merged()).ok


# -- the reason names whether a converter exists ---------------------------------------------------
class _IntSum(nn.Module):
    def forward(self, x, i):
        return x + i.sum(-1, keepdim=True).float()  # an int64 sum of a graph input: its converter refuses


def test_fallback_reason_tells_missing_converter_from_refusing_one():
    from examples.models import WithUnsupportedOp
    from torch_tensorrt_rtx.dynamo.conversion._registry import registered_targets

    missing = trtx.compile(WithUnsupportedOp().eval(), [torch.randn(3, 8)], min_block_size=1, progress=False)
    assert torch.ops.trtx_tests.mystery.default not in registered_targets()
    assert missing.compile_report.fallback_reasons == {"trtx_tests.mystery.default": "no converter for this op"}

    refused = trtx.compile(_IntSum().eval(), [torch.randn(3, 4), torch.randint(0, 9, (3, 4))], min_block_size=1,
                           progress=False)
    assert torch.ops.aten.sum.dim_IntList in registered_targets()
    reasons = refused.compile_report.fallback_reasons
    # A registered converter that refuses says why (its validator's Refusal), never "no converter for this op".
    assert reasons["aten.sum.dim_IntList"].startswith("torch.int64 tensor: this converter takes torch.float32"), reasons
