"""`trtx.load` returns a LoadedProgram: an ExportedProgram whose module() behaves exactly like
`torch.export.load(path).module()` (outputs, their structure, errors on wrong inputs, buffers,
hooks), but skips torch's per-call pytree and constraint work when the inputs fit the saved
signature. Every case is compared with torch's own module on the same file."""
from __future__ import annotations

import pytest
import torch
from torch.export import _unlift

import torch_tensorrt_rtx as trtx
from torch_tensorrt_rtx._loaded_program import LoadedProgram


class Scaled(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("scale", torch.arange(4.0))

    def forward(self, x):
        return x * self.scale


class Pair(torch.nn.Module):
    """Two inputs sharing the dynamic batch; a tuple out."""

    def forward(self, x, y):
        return x + y.sum(-1, keepdim=True), x.relu()


class Keywords(torch.nn.Module):
    """Keyword inputs; a dict with a nested list out."""

    def forward(self, *, ids, mask):
        return {"sum": ids + mask, "parts": [ids * 2, mask - 1]}


def _save(tmp_path, module, args, kwargs=None, dynamic_shapes=None):
    """As trtx.save writes programs: without example inputs."""
    path = tmp_path / "program.pt2"
    program = torch.export.export(module, args, kwargs, dynamic_shapes=dynamic_shapes)
    program.example_inputs = None
    torch.export.save(program, path)
    return path


BATCH = torch.export.Dim("batch", min=3, max=8)


@pytest.fixture
def scaled(tmp_path):
    return _save(tmp_path, Scaled(), (torch.ones(4, 4),), dynamic_shapes=({0: BATCH},))


@pytest.fixture
def pair(tmp_path):
    return _save(tmp_path, Pair(), (torch.ones(4, 4), torch.ones(4, 6)), dynamic_shapes=({0: BATCH}, {0: BATCH}))


@pytest.fixture
def keywords(tmp_path):
    return _save(tmp_path, Keywords(), (), {"ids": torch.ones(2, 5), "mask": torch.ones(2, 5)},
                 dynamic_shapes={"ids": {1: torch.export.Dim("seq", min=3, max=16)},
                                 "mask": {1: torch.export.Dim("seq", min=3, max=16)}})


@pytest.fixture
def torch_checks(monkeypatch):
    """Counts torch's per-call input checks (the pre-hook of ExportedProgram.module())."""
    calls = []
    check = _unlift._check_input_constraints_for_module
    monkeypatch.setattr(_unlift, "_check_input_constraints_for_module",
                        lambda *a: calls.append(1) or check(*a))
    return calls


def _same(a, b):
    assert type(a) is type(b)
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b)
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _same(a[k], b[k])
    else:
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)


def _both(path, *args, **kwargs):
    return trtx.load(path).module()(*args, **kwargs), torch.export.load(path).module()(*args, **kwargs)


def test_load_returns_an_exported_program_that_is_callable(scaled):
    program = trtx.load(scaled)
    assert isinstance(program, torch.export.ExportedProgram) and isinstance(program, LoadedProgram)
    module = program.module()
    reference = torch.export.load(scaled).module()
    assert dict(module.named_buffers()).keys() == dict(reference.named_buffers()).keys()
    x = torch.randn(5, 4)
    assert torch.equal(program(x), reference(x)) and torch.equal(module(x), reference(x))


@pytest.mark.parametrize("fixture,args,kwargs", [
    ("scaled", (torch.randn(3, 4),), {}),
    ("scaled", (torch.randn(8, 4),), {}),
    ("pair", (torch.randn(6, 4), torch.randn(6, 6)), {}),
    ("keywords", (), {"ids": torch.randn(2, 9), "mask": torch.randn(2, 9)}),
    ("keywords", (), {"mask": torch.randn(2, 3), "ids": torch.randn(2, 3)}),
], ids=["scaled-min", "scaled-max", "pair-tuple-out", "keywords-dict-out", "keywords-reordered"])
def test_fitting_inputs_take_the_fast_path_with_torchs_outputs(request, torch_checks, fixture, args, kwargs):
    path = request.getfixturevalue(fixture)
    ours = trtx.load(path).module()(*args, **kwargs)
    assert not torch_checks, "a fitting call went through torch's per-call checks"
    _same(ours, torch.export.load(path).module()(*args, **kwargs))


@pytest.mark.parametrize("fixture,args,kwargs", [
    ("scaled", (torch.randn(4, 4, 1),), {}),               # rank
    ("scaled", (torch.randn(4, 5),), {}),                  # a static dim
    ("scaled", (torch.randn(9, 4),), {}),                  # above the range
    ("scaled", (torch.randn(4, 4), torch.randn(4, 4)), {}),  # arity
    ("scaled", (), {"x": torch.randn(4, 4), "z": torch.randn(4, 4)}),  # an unknown keyword
    ("scaled", ([1.0, 2.0],), {}),                         # not a tensor
    ("pair", (torch.randn(4, 4), torch.randn(5, 6)), {}),  # dims that share a symbol differ
    ("keywords", (), {"ids": torch.randn(2, 5)}),          # a missing keyword
    ("keywords", (), {"ids": torch.randn(2, 5), "mask": torch.randn(2, 17)}),
], ids=["rank", "static-dim", "range", "arity", "keyword", "non-tensor", "shared-dim", "missing-keyword",
        "keyword-range"])
def test_wrong_inputs_raise_torchs_errors(request, fixture, args, kwargs):
    path = request.getfixturevalue(fixture)
    with pytest.raises(Exception) as theirs:
        torch.export.load(path).module()(*args, **kwargs)
    with pytest.raises(type(theirs.value)) as ours:
        trtx.load(path).module()(*args, **kwargs)
    assert str(ours.value) == str(theirs.value)


def test_other_dtypes_and_hooks_take_torchs_path(scaled, torch_checks):
    module = trtx.load(scaled).module()
    x = torch.randn(4, 4, dtype=torch.float64)
    assert torch.equal(module(x), torch.export.load(scaled).module()(x))
    assert len(torch_checks) == 2, "an input of another dtype than saved must take torch's path"
    seen = []
    module.register_forward_hook(lambda mod, args, out: seen.append(out))
    out = module(torch.ones(4, 4))
    assert seen and seen[0] is out, "a user's forward hook must run"
