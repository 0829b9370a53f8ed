"""The call forms users bring from upstream: keyword inputs, arg_inputs, named (shared) dynamic
dims, and verify on a program with nothing to verify."""
from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn as nn

import torch_tensorrt_rtx as trtx
from torch_tensorrt_rtx import Input


class TinyEncoder(nn.Module):
    """BERT's call shape: model(input_ids=..., attention_mask=...), mask broadcast over the sequence."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(50, 16)
        self.proj = nn.Linear(16, 16)

    def forward(self, input_ids, attention_mask=None):
        h = self.embed(input_ids)
        scores = h @ h.transpose(1, 2) / 4.0
        scores = scores.masked_fill(attention_mask[:, None, :] == 0, -1e4)
        return self.proj(scores.softmax(-1) @ h)


def _ids(b, s):
    return torch.randint(0, 50, (b, s)), torch.ones(b, s, dtype=torch.int64).tril(diagonal=s - 2)


def _named(dtype=torch.int64):
    return Input(min_shape=(1, 2), opt_shape=(2, 8), max_shape=(4, 16), dtype=dtype, dim_names=("batch", "seq"))


def test_keyword_inputs_with_shared_dynamic_dims():
    model = TinyEncoder().eval()
    compiled = trtx.compile(model, kwarg_inputs={"input_ids": _named(), "attention_mask": _named()},
                            min_block_size=1, progress=False)
    report = compiled.compile_report
    assert report.engines and not report.fallback_ops, report.format()
    for b, s in [(1, 2), (3, 11), (4, 16)]:
        ids, mask = _ids(b, s)
        verification = trtx.verify(compiled, input_ids=ids, attention_mask=mask, reference_module=model)
        assert verification.ok, str(verification)


class _KeywordsOnly(nn.Module):
    """forward(*args, **kwargs), as generic wrappers (and some pipelines) write it."""

    def __init__(self):
        super().__init__()
        self.encoder = TinyEncoder()

    def forward(self, *args, **kwargs):
        return self.encoder(kwargs["input_ids"], attention_mask=kwargs["attention_mask"]) * 2


def test_keyword_inputs_through_var_keyword_forward_compile_save_and_load(tmp_path):
    # torch.export cannot match dynamic shapes to **kwargs entries; compile names them.
    torch.manual_seed(0)
    model = _KeywordsOnly().eval()
    compiled = trtx.compile(model, kwarg_inputs={"input_ids": _named(), "attention_mask": _named()},
                            min_block_size=1, progress=False)
    assert compiled.compile_report.engines and not compiled.compile_report.fallback_ops
    trtx.save(compiled, str(tmp_path / "keywords.pt2"))
    loaded = trtx.load(str(tmp_path / "keywords.pt2")).module()
    for b, s in [(1, 2), (3, 11)]:
        ids, mask = _ids(b, s)
        for program in (compiled, loaded):
            verification = trtx.verify(program, input_ids=ids, attention_mask=mask, reference_module=model)
            assert verification.ok, str(verification)


def test_unnamed_dims_on_two_inputs_are_refused_by_export():
    # Without names every dim gets its own Dim, and torch.export proves they must be equal.
    unnamed = Input(min_shape=(1, 2), opt_shape=(2, 8), max_shape=(4, 16), dtype=torch.int64)
    with pytest.raises(Exception):
        trtx.compile(TinyEncoder().eval(), kwarg_inputs={"input_ids": unnamed, "attention_mask": unnamed},
                     min_block_size=1, progress=False)


def test_arg_inputs_is_inputs():
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU()).eval()
    compiled = trtx.compile(model, arg_inputs=[torch.randn(2, 4)], min_block_size=1, progress=False)
    assert len(compiled.compile_report.engines) == 1
    with pytest.raises(TypeError, match="not both"):
        trtx.compile(model, [torch.randn(2, 4)], arg_inputs=[torch.randn(2, 4)])


def test_positional_and_keyword_inputs_together():
    model = TinyEncoder().eval()
    compiled = trtx.compile(model, [_named()], kwarg_inputs={"attention_mask": _named()}, min_block_size=1,
                            progress=False)
    ids, mask = _ids(3, 5)
    assert trtx.verify(compiled, ids, attention_mask=mask, reference_module=model).ok


@pytest.mark.parametrize("kwargs,message", [
    (dict(dim_names=("batch",)), "has 1 entries for a rank-2 input"),
    (dict(dim_names=("batch", 3)), r"dim_names\[1\]=3 must be a Python identifier"),
    (dict(dim_names="batch"), "must be a sequence"),
])
def test_bad_dim_names(kwargs, message):
    with pytest.raises((TypeError, ValueError), match=message):
        Input(min_shape=(1, 2), opt_shape=(2, 8), max_shape=(4, 16), **kwargs)


def test_named_static_dim_is_an_error():
    with pytest.raises(ValueError, match="dim 1 is named 'seq' but is static"):
        Input(min_shape=(1, 8), opt_shape=(2, 8), max_shape=(4, 8), dim_names=("batch", "seq"))


def test_one_name_with_two_ranges_is_an_error():
    other = Input(min_shape=(1, 2), opt_shape=(2, 8), max_shape=(8, 16), dtype=torch.int64, dim_names=("batch", "seq"))
    with pytest.raises(ValueError, match="dim 'batch' has range"):
        trtx.compile(TinyEncoder().eval(), kwarg_inputs={"input_ids": _named(), "attention_mask": other})


def test_keyword_only_parameter_hint():
    class KeywordOnly(nn.Module):
        def forward(self, x, *, scale):
            return x * scale

    with pytest.raises(TypeError, match="through kwarg_inputs"):
        trtx.compile(KeywordOnly().eval(), [torch.randn(2)])
    compiled = trtx.compile(KeywordOnly().eval(), [torch.randn(2, 3)], kwarg_inputs={"scale": torch.randn(2, 3)},
                            min_block_size=1, progress=False)
    assert len(compiled.compile_report.engines) == 1


def test_verify_with_no_engine_says_nothing_to_verify():
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU()).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compiled = trtx.compile(model, [torch.randn(2, 4)], min_block_size=10, progress=False)
    assert not compiled.compile_report.engines
    report = trtx.verify(compiled, torch.randn(2, 4), reference_module=model)
    assert not report.ok
    text = str(report)
    assert "nothing to verify" in text and "PASSED" not in text
    assert "no TensorRT-RTX engine" in text and "min_block_size=10" in text, text
