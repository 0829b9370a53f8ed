"""Weightless engines on the Python runtime: the engine op's trailing inputs are the engine's
weights (named in the output spec) and the runtime refits the engine from them before its first
run, through the tensorrt_rtx test double's Refitter."""
from __future__ import annotations

import pytest
import torch

import torch_tensorrt_rtx as trtx
from torch_tensorrt_rtx.dynamo import _engine_op
from torch_tensorrt_rtx.dynamo._refit import refit
from torch_tensorrt_rtx.runtime.refit import RefitError

import engine_programs
from engine_programs import weightless_bytes

pytestmark = pytest.mark.skipif(_engine_op.NATIVE, reason="the C++ runtime implements the op in this process")


def WeightlessProgram(**kwargs) -> torch.nn.Module:
    """The Python test double's weightless engine (y = relu(x) * scale[0]) in a program packaged as
    compile(..., strip_engine_weights=True) does (engine_programs.WeightlessProgram)."""
    return engine_programs.WeightlessProgram(weightless_bytes("python"), **kwargs)


def test_first_run_refits_every_weight_then_never_again(api):
    program = WeightlessProgram()
    x = torch.tensor([[-1.0, 0.5, 2.0, 3.0]])
    assert torch.equal(program(x), torch.relu(x) * 2)
    assert [e for e in api.journal if e.startswith("refitter")] == [
        "refitter.set_named_weights scale", "refitter.set_named_weights bias", "refitter.refit_cuda_engine"]
    program(x)
    program(x)
    assert api.journal.count("refitter.refit_cuda_engine") == 1
    assert api.journal.count("context.execute_async_v3") == 3


def test_a_missing_weight_is_a_clear_error(api):
    with pytest.raises(RefitError, match=r"still needs weights \['bias'\]"):
        WeightlessProgram(names=("scale",))(torch.ones(1, 4))


def test_a_wrong_shaped_weight_is_refused(api):
    with pytest.raises(RefitError, match=r"refused weight 'bias' \(shape \(3,\)"):
        WeightlessProgram(bias_size=3)(torch.ones(1, 4))


def test_refit_module_weights_swaps_weights_without_rebuild(api):
    program = torch.fx.symbolic_trace(WeightlessProgram())
    x = torch.ones(1, 4)
    assert torch.equal(program(x), x * 2)
    assert refit(program, {"w_scale": torch.tensor([5.0])}) == []  # a buffer of the program, not an engine weight
    with pytest.raises(ValueError, match=r"weights \['nope'\].*not weights of the compiled program"):
        refit(program, {"nope": torch.ones(1)})
    with pytest.raises(ValueError, match="weight 'scale' has shape \\(2,\\)"):
        refit(program, {"scale": torch.ones(2)})
    assert refit(program, {"scale": torch.tensor([7.0])}) == ["scale"]
    assert torch.equal(program(x), x * 7)
    assert api.journal.count("refitter.refit_cuda_engine") == 2
    assert api.journal.count("runtime.deserialize_cuda_engine") == 1  # no rebuild, no new engine


def test_saved_weightless_program_refits_after_load(api, tmp_path):
    path = tmp_path / "weightless.pt2"
    torch.export.save(torch.export.export(WeightlessProgram(), (torch.ones(2, 4),)), path)
    loaded = trtx.load(path).module()
    assert torch.equal(loaded(torch.ones(2, 4)), torch.full((2, 4), 2.0))
    assert api.journal.count("refitter.refit_cuda_engine") == 1
