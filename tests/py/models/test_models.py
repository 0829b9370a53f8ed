"""Acceptance: real model families (torchvision, timm, transformers, diffusers), random weights, tiny
configs (zoo.py). Every model in zoo.py (BUILDERS and MORE) runs the whole matrix: fp32 and fp16
(enabled_precisions), each through torch_tensorrt_rtx.compile (a dynamic range; `verify` passes at
three sizes inside it) and through torch.compile (static), with zero PyTorch fallback except the
ops listed in FALLBACK with the reason no TensorRT-RTX layer expresses them (cells in XFAIL are
expected to fail, with the reason). Each compiled model is built once per session (conftest.py).

    pytest -m models -n 2 --dist loadgroup tests/py/models   # everything here (scripts/test.sh runs it)
    pytest -m models_fast tests/py/models                    # the edit-loop subset (about a minute)
"""
from __future__ import annotations

import pytest

from tests.py.models.zoo import ALL_MODELS

# Ops each model may leave in PyTorch, with the reason (none today).
FALLBACK = {name: {} for name in ALL_MODELS}
FAST = {("distilbert", "fp32"), ("resnet18d", "fp32")}
# Every model in zoo.py, in fp32 and fp16, through both entry points. Cells that are known not to
# pass: {(model, precision, entry): reason}, entry "aot" (trtx.compile) or "torch.compile"; each is
# xfail(strict=True), so a fix shows up as a failure until the entry is removed (none today).
XFAIL = {}
PRECISION_NAMES = ("fp32", "fp16")

def _params(entry: str):
    out = []
    for name in ALL_MODELS:
        for precision in PRECISION_NAMES:
            marks = [pytest.mark.models_fast] if (name, precision) in FAST else []
            if (name, precision, entry) in XFAIL:
                marks.append(pytest.mark.xfail(strict=True, reason=XFAIL[name, precision, entry]))
            out.append(pytest.param(name, precision, id=f"{name}-{precision}", marks=marks))
    return out


def _check_fallback(name, report):
    unexpected = {op: n for op, n in report.fallback_ops.items() if op not in FALLBACK[name]}
    assert not unexpected, f"{name}: unexpected PyTorch fallback {unexpected}\n{report.format()}"


@pytest.mark.parametrize("name,precision", _params("aot"))
def test_compile_dynamic_and_verify_at_three_sizes(zoo, name, precision):
    import torch_tensorrt_rtx as trtx

    case = zoo.case(name)
    compiled = zoo.aot(name, precision)
    report = compiled.compile_report
    _check_fallback(name, report)
    assert len(report.engines) == 1, report.format()
    assert any(r != "{}" for r in report.engines[0].input_ranges), "no dynamic range reached the engine"
    if precision == "fp16":
        assert "precision float16" in report.format()
    for batch, size in case.sizes:
        args, kwargs = case.make(batch, size)
        verification = trtx.verify(compiled, *args, reference_module=case.model, **kwargs)
        assert verification.ok, f"{name} {precision} at batch {batch} size {size}:\n{verification}"


@pytest.mark.parametrize("name,precision", _params("torch.compile"))
def test_torch_compile_static(zoo, name, precision):
    verification, reports = zoo.torch_compile(name, precision)
    assert reports, "the tensorrt_rtx backend was not called"
    for report in reports:
        _check_fallback(name, report)
    assert verification.ok, f"{name} {precision} through torch.compile:\n{verification}"


def test_torch_compile_dynamic_bert_with_attention_mask(zoo):
    """torch.compile(dynamic=True) on a BERT call with input_ids and attention_mask: one engine for
    every batch and sequence length >= 2 (shared dims, the mask converted), zero fallback."""
    import torch
    import torch_tensorrt_rtx as trtx

    case = zoo.case("bert")
    torch._dynamo.reset()
    compiled = torch.compile(case.model, backend="tensorrt_rtx", dynamic=True, options={"progress": False})
    with trtx.compile_reports() as reports:
        for batch, seq in ((2, 9), (3, 17)):
            args, kwargs = case.make(batch, seq)
            verification = trtx.verify(compiled, *args, reference_module=case.model, **kwargs)
            assert verification.ok, f"batch {batch} seq {seq}:\n{verification}"
    assert len(reports) == 1, [r.format() for r in reports]
    _check_fallback("bert", reports[0])
    assert len(reports[0].engines) == 1 and "1: (" in reports[0].engines[0].input_ranges[0], reports[0].format()
