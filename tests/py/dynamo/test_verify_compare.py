"""verify means what it says: NaN/Inf where the reference is finite is a mismatch with a count and
an index, the tolerance follows the output's magnitude, and the largest error is never hidden."""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

import torch_tensorrt_rtx as trtx
from torch_tensorrt_rtx.dynamo.verification import _verify
from torch_tensorrt_rtx.dynamo.verification._compare import compare, worst


def test_nan_where_reference_is_finite_is_counted_with_its_first_index():
    expected = torch.zeros(2, 3, 4)
    actual = expected.clone()
    actual[1, 2, :] = float("nan")
    result = compare(actual, expected, 1e-3, 1e-4)
    assert not result.ok
    assert result.nonfinite == 4 and result.first_nonfinite == (1, 2, 0)
    assert math.isnan(result.max_abs_error)
    assert "NaN where the reference is finite" in result.describe_nonfinite()


def test_finite_where_reference_is_nan_or_inf_is_a_mismatch():
    expected = torch.tensor([1.0, float("inf"), float("nan")])
    assert not compare(torch.tensor([1.0, 3.0, float("nan")]), expected, 1e-3, 1e-4).ok
    assert not compare(torch.tensor([1.0, float("inf"), 0.0]), expected, 1e-3, 1e-4).ok
    assert not compare(torch.tensor([1.0, -float("inf"), float("nan")]), expected, 1e-3, 1e-4).ok
    assert compare(expected.clone(), expected, 1e-3, 1e-4).ok  # same NaN, same Inf: agreement


def test_tolerance_follows_the_output_magnitude():
    expected = torch.full((8,), 1e-16)
    assert compare(expected * (1 + 1e-6), expected, 1e-3, 1e-4).ok
    # 1e-16 off is tiny in absolute terms (an absolute 1e-4 passed it) but 100 % of the output.
    assert not compare(torch.zeros(8), expected, 1e-3, 1e-4).ok
    assert not compare(expected * 2, expected, 1e-3, 1e-4).ok
    # Large outputs: small elements are judged against the tensor's magnitude, not their own.
    big = torch.tensor([1000.0, 1e-3])
    assert compare(big + torch.tensor([0.0, 0.05]), big, 1e-3, 1e-4).ok
    assert not compare(big + torch.tensor([0.0, 0.5]), big, 1e-3, 1e-4).ok


def test_all_zero_reference_still_has_a_tolerance_floor():
    assert compare(torch.zeros(4), torch.zeros(4), 1e-3, 1e-4).ok
    assert not compare(torch.full((4,), 1e-6), torch.zeros(4), 1e-3, 1e-4).ok


def test_worst_keeps_nan():
    assert math.isnan(worst([0.0, math.nan, 1.0]))
    assert math.isnan(worst([1.0], math.nan))
    assert worst([0.5, 2.0]) == 2.0


class Tiny(nn.Module):
    """Outputs of about 1e-16, like a timm model at its config init."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        return torch.relu(self.fc(x)) * 1e-16 + 1e-16


def _planted(monkeypatch, edit):
    """Make the reference executor's outputs (what the engine computed) pass through `edit`."""
    real = _verify.run_network

    def run(network, inputs, keep_all=False):
        outputs, values = real(network, inputs, keep_all=keep_all)
        return {name: edit(t) for name, t in outputs.items()}, values

    monkeypatch.setattr(_verify, "run_network", run)


def test_tiny_outputs_pass_when_right_and_fail_when_wrong(monkeypatch):
    model = Tiny().eval()
    compiled = trtx.compile(model, [torch.randn(4, 8)], min_block_size=1, progress=False)
    x = torch.randn(4, 8)
    assert trtx.verify(compiled, x, reference_module=model).ok
    _planted(monkeypatch, lambda t: t * 1.5)  # 50 % wrong, 1e-16 absolute
    report = trtx.verify(compiled, x, reference_module=model)
    assert not report.ok and not report.engines[0].ok and report.end_to_end_ok is False, str(report)
    assert report.engines[0].max_abs_error > 1e-17, str(report)


def test_report_names_nan_count_and_index_never_error_zero(monkeypatch):
    model = Tiny().eval()
    compiled = trtx.compile(model, [torch.randn(4, 8)], min_block_size=1, progress=False)

    def with_nans(t):
        t = t.clone()
        t[2, 5:] = float("nan")
        return t

    _planted(monkeypatch, with_nans)
    report = trtx.verify(compiled, torch.randn(4, 8), reference_module=model)
    text = str(report)
    assert not report.ok and math.isnan(report.engines[0].max_abs_error), text
    assert report.engines[0].nonfinite == 3, text
    assert "max abs error nan" in text and "max abs error 0 " not in text, text
    assert "3 value(s) NaN where the reference is finite, first at index (2, 5)" in text, text
    assert math.isnan(report.end_to_end_max_abs_error) and "non-finite: output 0" in text, text


class FullyMaskedRow(nn.Module):
    """The issue's repro: one query row masks every key. Eager gives 0 for that row."""

    def forward(self, q, k, v, mask):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def test_fully_masked_attention_row_is_judged_on_its_values(monkeypatch):
    q, k, v = (torch.randn(1, 2, 6, 8) for _ in range(3))
    mask = torch.ones(1, 1, 6, 6, dtype=torch.bool)
    mask[0, 0, 3, :] = False
    model = FullyMaskedRow().eval()
    compiled = trtx.compile(model, [q, k, v, mask], min_block_size=1, progress=False)
    assert compiled.compile_report.engines, compiled.compile_report.format()
    seen = []
    _planted(monkeypatch, lambda t: seen.append(t) or t)
    report = trtx.verify(compiled, q, k, v, mask, reference_module=model)
    nans = int(seen[-1].isnan().sum())
    # Whatever the converter does with the row, verify tells the truth about it.
    assert report.engines[0].nonfinite == nans, str(report)
    assert report.ok == (nans == 0 and bool(torch.allclose(seen[-1], model(q, k, v, mask), atol=1e-5))), str(report)
    if nans:
        assert "max abs error nan" in str(report) and "first at index (0, 0, 3, 0)" in str(report), str(report)


def test_a_float16_program_is_not_judged_below_float16s_smallest_normal():
    from torch_tensorrt_rtx.dynamo.verification._verify import _close_end_to_end

    # A random-init classifier's outputs of ~1e-8 are below what fp16 represents: an fp16 program
    # gives 0 or a subnormal there, which is all fp16 can do.
    tiny = torch.tensor([4e-8, -2e-8, 1e-9])
    assert _close_end_to_end(torch.zeros(3), tiny, torch.float16).ok
    # At a representable scale the budget is still relative: 5% off fails, 1% off passes.
    ref = torch.tensor([1.0, -0.5, 0.25])
    assert not _close_end_to_end(ref * 1.05, ref, torch.float16).ok
    assert _close_end_to_end(ref * 1.01, ref, torch.float16).ok
    # fp32 programs keep the fp32 floor: 1e-16 outputs are judged at their own scale.
    assert not compare(torch.zeros(3), tiny * 1e-8, 1e-3, 1e-4).ok
