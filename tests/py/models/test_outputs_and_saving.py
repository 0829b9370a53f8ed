"""What `compile` does with outputs it cannot export, and saving what it returns.

- A transformers model with use_cache=True returns a DynamicCache: compile raises a TypeError that
  names it and says how to turn it off; torch.compile keeps the cache in Python and works.
- Any other output torch.export cannot flatten is named with its type and where it is.
- Everything compile returns can be saved with trtx.save and loaded back (a T5 encoder, whose
  PyTorch-side view failed to re-export; a program compiled with kwarg_inputs), and the loaded
  program computes what the compiled one does (checked through verify's reference executor).
"""
from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn as nn

import torch_tensorrt_rtx as trtx
from tests.py.models.zoo import import_torchvision


def _tiny_gpt2(use_cache: bool):
    import_torchvision()
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(vocab_size=100, n_embd=32, n_layer=2, n_head=2, n_positions=64, use_cache=use_cache)
    return GPT2LMHeadModel(config).eval()


@pytest.mark.models_fast
def test_kv_cache_output_is_a_clear_error():
    model = _tiny_gpt2(use_cache=True)
    ids = torch.randint(0, 100, (2, 8))
    with pytest.raises(TypeError) as info:
        trtx.compile(model, kwarg_inputs={"input_ids": ids}, progress=False)
    message = str(info.value)
    assert "DynamicCache" in message and "use_cache=True" in message, message
    assert "model.config.use_cache = False" in message, message


def test_kv_cache_off_compiles():
    model = _tiny_gpt2(use_cache=True)
    model.config.use_cache = False  # what the error tells the user to do
    ids = torch.randint(0, 100, (2, 8))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compiled = trtx.compile(model, kwarg_inputs={"input_ids": ids}, progress=False)
    assert compiled.compile_report.engines, compiled.compile_report.format()
    assert trtx.verify(compiled, input_ids=ids, reference_module=model).ok


class _Box:
    def __init__(self, value):
        self.value = value


class ReturnsObject(nn.Module):
    def forward(self, x):
        return x * 2, {"extra": _Box(x + 1)}


def test_other_unexportable_output_is_named():
    with pytest.raises(TypeError) as info:
        trtx.compile(ReturnsObject().eval(), [torch.randn(2, 3)], progress=False)
    message = str(info.value)
    assert "_Box" in message and "'extra'" in message and "cannot flatten" in message, message


def _round_trip(compiled, path, reference, calls):
    trtx.save(compiled, path)
    loaded = trtx.load(path).module()
    for args, kwargs in calls:
        for program in (compiled, loaded):
            verification = trtx.verify(program, *args, reference_module=reference, **kwargs)
            assert verification.ok, str(verification)
            assert verification.engines, "no engine ran"


def test_save_t5_encoder_with_pytorch_partitions_and_keyword_inputs(zoo, tmp_path):
    """The T5 encoder with views and bmm kept in PyTorch (as a converter failure would keep
    them): its PyTorch-side views read engine outputs, which are contiguous where the traced
    transposes were not. Compiled with kwarg_inputs, saved, loaded, called by keyword."""
    case = zoo.case("t5_encoder")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compiled = trtx.compile(case.model, kwarg_inputs=case.kwargs, progress=False,
                                torch_executed_ops={"aten.view.default", "aten.bmm.default"})
    report = compiled.compile_report
    assert "aten.view.default" in report.fallback_ops and len(report.engines) > 1, report.format()
    _round_trip(compiled, tmp_path / "t5.pt2", case.model, [case.make(1, 2), case.make(3, 17)])


class Scaled(nn.Module):
    def forward(self, x, *, scale, bias=None):
        out = torch.relu(x @ scale.transpose(0, 1)) * 2
        return out if bias is None else out + bias


@pytest.mark.models_fast
def test_save_keyword_inputs_round_trip(tmp_path):
    spec = trtx.Input(min_shape=(1, 8), opt_shape=(4, 8), max_shape=(8, 8), dim_names=("batch", None))
    compiled = trtx.compile(Scaled().eval(), [spec], kwarg_inputs={"scale": torch.randn(16, 8),
                                                                  "bias": torch.randn(16)}, progress=False)
    calls = [([torch.randn(b, 8)], {"scale": torch.randn(16, 8), "bias": torch.randn(16)}) for b in (1, 5)]
    _round_trip(compiled, tmp_path / "kw.pt2", Scaled().eval(), calls)
