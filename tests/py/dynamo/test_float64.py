"""No float64 fallback: float64 ops compute in float32 by default (one Float64Warning with the
count), or stay in PyTorch with truncate_double=False; a float64 constant never reaches a
converter (it was "Could not implicitly convert NumPy data type: f64" from the engine build)."""
from __future__ import annotations

import warnings

import torch
import torch.nn as nn

import torch_tensorrt_rtx as trtx
from torch_tensorrt_rtx.dynamo._summary import FallbackWarning, Float64Warning


class Rope(nn.Module):
    """A diffusion transformer's rotary embedding: frequencies in float64, applied in float32."""

    def __init__(self, dim=16, theta=10000.0):
        super().__init__()
        self.dim, self.theta = dim, theta
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, ids):
        pos = ids.to(torch.float64)
        exponent = torch.arange(0, self.dim, 2, dtype=torch.float64)[: self.dim // 2] / self.dim
        freqs = torch.outer(pos, 1.0 / (self.theta ** exponent))
        cos = freqs.cos().repeat_interleave(2, dim=1).float()
        sin = freqs.sin().repeat_interleave(2, dim=1).float()
        h = self.proj(x)
        rotated = torch.stack([-h[..., 1::2], h[..., 0::2]], dim=-1).flatten(-2)
        return h * cos + rotated * sin


def _compile(model, inputs, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compiled = trtx.compile(model, inputs, min_block_size=1, progress=False, **kwargs)
    return compiled, [w for w in caught if issubclass(w.category, (Float64Warning, FallbackWarning))]


def test_rotary_embedding_in_float64_converts_fully_and_verifies():
    model = Rope().eval()
    x, ids = torch.randn(2, 8, 16), torch.arange(8)
    compiled, caught = _compile(model, [x, ids])
    report = compiled.compile_report
    assert len(report.engines) == 1 and not report.fallback_ops, report.format()
    assert report.truncated_double_ops > 0 and "computed in float32" in report.format()
    assert [w.category for w in caught] == [Float64Warning], [str(w.message) for w in caught]
    assert f"{report.truncated_double_ops} float64 op(s) computed in float32" in str(caught[0].message)
    verification = trtx.verify(compiled, x, ids, reference_module=model)
    assert verification.ok, str(verification)


def test_truncate_double_false_keeps_float64_in_pytorch():
    model = Rope().eval()
    x, ids = torch.randn(2, 8, 16), torch.arange(8)
    compiled, caught = _compile(model, [x, ids], truncate_double=False)
    report = compiled.compile_report
    assert report.truncated_double_ops == 0 and not any(w.category is Float64Warning for w in caught)
    assert "aten.cos.default" in report.fallback_ops and "float64" in report.fallback_reasons["aten.cos.default"]
    assert not report.failed_nodes, report.format()  # refused up front, never a failed engine build
    assert "NumPy" not in report.format()
    assert trtx.verify(compiled, x, ids, reference_module=model).ok


class DoubleInOut(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("scale", torch.linspace(0.5, 2.0, 8, dtype=torch.float64))

    def forward(self, x):
        return (x * self.scale).tanh() + 1


def test_float64_inputs_outputs_and_buffers_keep_their_dtype_outside():
    model = DoubleInOut().eval()
    x = torch.randn(4, 8, dtype=torch.float64)
    compiled, _ = _compile(model, [x])
    report = compiled.compile_report
    assert len(report.engines) == 1 and not report.fallback_ops, report.format()
    assert model.scale.dtype == torch.float64  # the model's own buffer is untouched
    verification = trtx.verify(compiled, x, reference_module=model)
    assert verification.ok, str(verification)
    with torch.no_grad():
        from torch_tensorrt_rtx.dynamo._engine_op import intercept_engines
        from torch_tensorrt_rtx.dynamo.verification._verify import _check_engine

        with intercept_engines(lambda spec, ins, _record: _check_engine(spec, ins, {})):
            assert compiled(x).dtype == torch.float64


def test_torch_compile_truncates_too(fresh_dynamo):
    model = Rope().eval()
    fast = torch.compile(model, backend="tensorrt_rtx", options={"min_block_size": 1, "progress": False})
    with trtx.compile_reports() as reports, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert trtx.verify(fast, torch.randn(2, 8, 16), torch.arange(8), reference_module=model).ok
    assert reports and not reports[0].fallback_ops and reports[0].truncated_double_ops > 0, reports[0].format()
    assert any(w.category is Float64Warning for w in caught)
