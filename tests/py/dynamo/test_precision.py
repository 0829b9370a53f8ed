"""enabled_precisions: an fp32 model compiled for fp16/bf16 compute, sensitive ops kept in fp32,
and verify's tolerance following the precision (no false MISMATCH, real bugs still caught)."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import torch_tensorrt_rtx as trtx
from torch_tensorrt_rtx.dynamo.lowering._precision import reduce_precision

aten = torch.ops.aten


class Block(nn.Module):
    """A transformer-ish block: every sensitive op family next to matmuls."""

    def __init__(self):
        super().__init__()
        self.ln = nn.LayerNorm(32)
        self.fc1, self.fc2 = nn.Linear(32, 64), nn.Linear(64, 32)

    def forward(self, x):
        h = self.fc2(F.gelu(self.fc1(self.ln(x))))
        return (x + h).softmax(-1) * 3 + h.exp().mean() + h.pow(2).sum(-1, keepdim=True) * 0.01


def _dtypes_by_op(gm):
    out = {}
    for node in gm.graph.nodes:
        val = node.meta.get("val")
        if node.op == "call_function" and isinstance(val, torch.Tensor) and node.target != aten._to_copy.default:
            out.setdefault(node.target, set()).add(val.dtype)
    return out


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_matmuls_reduced_sensitive_ops_fp32(dtype):
    program = torch.export.export(Block().eval(), (torch.randn(2, 4, 32),), strict=False)
    gm = program.module()
    assert reduce_precision(gm, dtype) == 2  # the two linears
    dtypes = _dtypes_by_op(gm)
    linear = aten.linear.default if aten.linear.default in dtypes else aten.addmm.default
    assert dtypes[linear] == {dtype}
    assert dtypes[aten.gelu.default] == {dtype}  # follows its fp16 input: no cast pair in between
    for sensitive in (aten.layer_norm.default, aten.softmax.int, aten.exp.default, aten.mean.default,
                      aten.pow.Tensor_Scalar, aten.sum.dim_IntList):
        if sensitive in dtypes:
            assert dtypes[sensitive] == {torch.float32}, (sensitive, dtypes[sensitive])
    assert gm(torch.randn(2, 4, 32)).dtype == torch.float32  # called like the model


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
def test_compile_fp32_model_for_reduced_precision(dtype):
    model = Block().eval()
    compiled = trtx.compile(model, [torch.randn(2, 4, 32)], min_block_size=1, progress=False,
                            enabled_precisions={torch.float32, dtype})
    report = compiled.compile_report
    assert not report.fallback_ops and len(report.engines) == 1, report.format()
    name = str(dtype).replace("torch.", "")
    assert f"precision {name} for matmul" in report.format()
    assert "float32 for reductions, softmax" in report.format()
    verification = trtx.verify(compiled, torch.randn(2, 4, 32), reference_module=model)
    assert verification.ok, str(verification)
    assert verification.engines[0].precision == dtype


def test_fp16_tolerance_scales_with_magnitude_but_catches_a_wrong_converter():
    from torch_tensorrt_rtx.dynamo.conversion import _registry
    from torch_tensorrt_rtx.dynamo.conversion._registry import converter

    class Big(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(64, 64)
            self.fc.weight.data *= 20  # activations of magnitude ~100: fp16 rounding ~0.05

        def forward(self, x):
            return torch.relu(self.fc(x)) + 1

    model = Big().eval()
    x = torch.randn(8, 64)
    compiled = trtx.compile(model, [x], min_block_size=1, progress=False, enabled_precisions={torch.float16})
    good = trtx.verify(compiled, x, reference_module=model)
    assert good.ok, str(good)
    assert good.engines[0].max_abs_error < 1.0

    @converter(aten.relu.default, priority=100)
    def wrong_relu(ctx, node, args, kwargs):  # identity: a converter bug
        return ctx.name(ctx.network.add_identity(args[0]), "wrong").get_output(0)

    try:
        broken = trtx.compile(model, [x], min_block_size=1, progress=False, enabled_precisions={torch.float16})
    finally:
        entries = _registry._REGISTRY[aten.relu.default]
        entries[:] = [e for e in entries if e.fn is not wrong_relu]
    bad = trtx.verify(broken, x, reference_module=model)
    assert not bad.ok and "MISMATCH" in str(bad), str(bad)


class SinhBetweenLinears(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(8, 8), nn.Linear(8, 8)

    def forward(self, x):
        return self.fc2(torch.sinh(self.fc1(x)))


@pytest.fixture
def scratch_registry(monkeypatch):
    """The converter registry and precision declarations, restored after the test."""
    from torch_tensorrt_rtx.dynamo.conversion import _registry

    _registry.registered_targets()  # the real converters first
    monkeypatch.setattr(_registry, "_REGISTRY", {t: list(e) for t, e in _registry._REGISTRY.items()})
    monkeypatch.setattr(_registry, "_PRECISION", dict(_registry._PRECISION))
    return _registry


def test_the_pass_reads_the_policy_a_converter_declares(scratch_registry):
    def sinh_dtype():
        gm = torch.export.export(SinhBetweenLinears().eval(), (torch.randn(2, 8),), strict=False).module()
        reduce_precision(gm, torch.float16)
        return _dtypes_by_op(gm)[aten.sinh.default]

    assert scratch_registry.precision_policy(aten.sinh.default) is scratch_registry.Precision.FLOAT32
    assert sinh_dtype() == {torch.float32}

    @scratch_registry.converter(aten.sinh.default, precision=scratch_registry.Precision.FOLLOW)
    def sinh(ctx, node, args, kwargs):
        raise AssertionError("not converted in this test")

    assert scratch_registry.precision_policy(aten.sinh.default) is scratch_registry.Precision.FOLLOW
    assert sinh_dtype() == {torch.float16}  # follows the fp16 linear before it


def test_one_op_has_one_precision_policy(scratch_registry):
    Precision = scratch_registry.Precision
    with pytest.raises(ValueError, match=r"FLOAT32 for aten.gelu.default, but .*activation.gelu declared FOLLOW"):
        scratch_registry.converter(aten.gelu.default, precision=Precision.FLOAT32)(lambda *a: None)
    with pytest.raises(ValueError, match="declare_precision declares precision FOLLOW for aten.linear.default, "
                                         "but .*linear.linear declared REDUCED"):
        scratch_registry.declare_precision(Precision.FOLLOW, aten.linear.default)
    with pytest.raises(TypeError, match="precision must be a Precision .* got 'follow'"):
        scratch_registry.converter(aten.sinh.default, precision="follow")(lambda *a: None)
    # Repeating the same policy (a lower-priority fallback converter of the op) is allowed.
    scratch_registry.converter(aten.gelu.default, priority=-5, precision=Precision.FOLLOW)(lambda *a: None)
    assert scratch_registry.precision_policy(aten.gelu.default) is Precision.FOLLOW


@pytest.mark.parametrize("value,message", [
    ({torch.float16, torch.bfloat16}, "not both"),
    ({torch.int8}, "not supported"),
])
def test_bad_enabled_precisions(value, message):
    with pytest.raises(ValueError, match=message):
        trtx.compile(Block().eval(), [torch.randn(1, 2, 32)], enabled_precisions=value)


def test_torch_compile_option():
    torch._dynamo.reset()
    model = Block().eval()
    compiled = torch.compile(model, backend="tensorrt_rtx", dynamic=False,
                             options={"min_block_size": 1, "progress": False, "enabled_precisions": {torch.float16}})
    with trtx.compile_reports() as reports:
        verification = trtx.verify(compiled, torch.randn(2, 4, 32), reference_module=model)
    assert verification.ok, str(verification)
    assert len(reports) == 1 and "precision float16" in reports[0].format()
    torch._dynamo.reset()
