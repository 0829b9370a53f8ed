"""The torch.compile backend traces dynamo's graph to ATen once, in dynamo's fake mode, without
torch.export (_dynamo_aten.py); graphs where that is not safe (mutations, grad-mode regions) are
exported as before. Engines are checked against eager through the CPU reference executor."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import torch_tensorrt_rtx as trtx
from torch_tensorrt_rtx.dynamo import _dynamo_aten, _export
from torch_tensorrt_rtx.dynamo._input import Input

from examples.models import MLP, SmallCNN

OPTIONS = {"min_block_size": 1, "progress": False, "dynamic_max_size": 64}

pytestmark = pytest.mark.usefixtures("fresh_dynamo")


@pytest.fixture
def exports(monkeypatch):
    """The calls of export_aten (the slow path), recorded; export itself still runs."""
    calls = []
    real = _export.export_aten

    def spy(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(_export, "export_aten", spy)
    return calls


def _verify_calls(model, calls, dynamic=True):
    compiled = torch.compile(model, backend="tensorrt_rtx", dynamic=dynamic, options=OPTIONS)
    with trtx.compile_reports() as reports:
        for args in calls:
            verification = trtx.verify(compiled, *args, reference_module=model)
            assert verification.ok, str(verification)
            assert verification.engines, str(verification)
    return reports


@pytest.mark.parametrize("model,shape", [(MLP, (16,)), (SmallCNN, (3, 16, 16))])
def test_plain_model_is_traced_once_without_torch_export(model, shape, exports):
    torch.manual_seed(0)
    module = model().eval()
    reports = _verify_calls(module, [[torch.randn(b, *shape)] for b in (2, 5)])
    assert not exports, "the graph went through torch.export"
    assert len(reports) == 1 and not reports[0].fallback_ops, [r.format() for r in reports]
    assert reports[0].engines[0].input_ranges[0].startswith("{0: (2, 2, "), reports[0].format()
    assert reports[0].phase_seconds["export"] > 0  # the ATen trace is reported as the export phase


class AddToInput(nn.Module):
    def forward(self, x):
        x.add_(1)
        return torch.relu(x * 2 + 1)


class CountCalls(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.register_buffer("calls", torch.zeros(()))

    def forward(self, x):
        self.calls.add_(1)
        return torch.relu(self.fc(x)) + self.calls


def test_input_mutation_is_exported_and_reaches_the_callers_tensor(exports):
    model = AddToInput()
    x = torch.randn(4, 8)
    before = x.clone()
    _verify_calls(model, [[x]], dynamic=False)
    assert len(exports) == 1, "a mutating graph must take the export path"
    torch.testing.assert_close(x, before + 1)


def test_buffer_mutation_is_exported_and_updates_the_buffer(exports):
    torch.manual_seed(0)
    model = CountCalls().eval()
    reference = CountCalls().eval()
    reference.load_state_dict(model.state_dict())
    compiled = torch.compile(model, backend="tensorrt_rtx", options=OPTIONS)
    for _ in range(2):
        x = torch.randn(3, 8)
        verification = trtx.verify(compiled, x, reference_module=reference)
        assert verification.ok, str(verification)
    assert exports, "a graph that mutates a buffer must take the export path"
    assert model.calls.item() == reference.calls.item() == 2


class GradRegion(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        with torch.enable_grad():
            y = self.fc(x)
        return torch.relu(y) * 2


def test_grad_mode_region_is_exported(exports):
    torch.manual_seed(0)
    model = GradRegion().eval()
    reports = _verify_calls(model, [[torch.randn(3, 8)]], dynamic=False)
    assert exports, "a grad-mode region must take the export path"
    assert reports and reports[-1].engines, [r.format() for r in reports]


def test_guard_of_the_trace_fixes_only_the_dim_it_constrains():
    """A guard the ATen trace adds (``Ne(s1 // 4, 1)``, as adaptive pooling's decomposition adds)
    that does not hold over the engine range fixes that dim to its example size, with a guard in the
    shape environment; the other dim keeps its range."""
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.fx.experimental.symbolic_shapes import DimDynamic, ShapeEnv, StatelessSymbolicContext

    shape_env = ShapeEnv()
    context = StatelessSymbolicContext(dynamic_sizes=[DimDynamic.DYNAMIC, DimDynamic.DYNAMIC])
    fake = FakeTensorMode(shape_env=shape_env).from_tensor(torch.randn(4, 8), symbolic_context=context)
    assert fake.shape[1] // 4 != 1  # the trace meets the guard (true for 8, false for 4..7)
    spec = Input(min_shape=(2, 2), opt_shape=(4, 8), max_shape=(64, 64))
    ranges, notes = _dynamo_aten._ranges_after_trace([fake], [spec])
    assert list(ranges.values()) == [(2, 4, 64)], ranges
    assert fake.shape[1].node.expr == 8  # guarded: the shape environment now holds it at 8
    assert fake.shape[0].node.expr == list(ranges)[0]
    assert len(notes) == 1 and notes[0].startswith("input 0 dim 1 = 8 (not [2, 64]"), notes


class ScaledMLP(nn.Module):
    """An int argument: under dynamic=True dynamo passes it as a SymInt input, which the input
    mapping replaces by its value (an edit of the graph)."""

    def __init__(self):
        super().__init__()
        self.mlp = MLP()

    def forward(self, x, n):
        return self.mlp(x) * n


def test_the_copy_of_dynamos_graph_generates_its_code_once(monkeypatch):
    """The input mapping edits the backend's copy of dynamo's graph and recompiles it; its Python
    code is generated once, when the ATen trace first calls it (each generation costs ms)."""
    from torch_tensorrt_rtx.dynamo import backend

    copies, generated = [], []
    real_copy, real_python_code = backend._copy, torch.fx.Graph.python_code

    def copy(gm):
        copies.append(real_copy(gm))
        return copies[-1]

    def python_code(graph, *args, **kwargs):
        generated.append(graph)
        return real_python_code(graph, *args, **kwargs)

    monkeypatch.setattr(backend, "_copy", copy)
    monkeypatch.setattr(torch.fx.Graph, "python_code", python_code)
    torch.manual_seed(0)
    model = ScaledMLP().eval()
    reports = _verify_calls(model, [[torch.randn(3, 16), 3]], dynamic=True)
    assert len(copies) == 1 and len(reports) == 1 and not reports[0].fallback_ops
    assert sum(graph is copies[0].graph for graph in generated) == 1


@pytest.mark.parametrize("model,args,dynamic,copies_expected", [
    (MLP, (torch.randn(3, 16),), False, 0),               # traced as it is: nothing edits it
    (ScaledMLP, (torch.randn(3, 16), 3), True, 1),       # the int input is replaced by its value
    (CountCalls, (torch.randn(4, 8),), False, 1),         # exported: its weights frozen into the graph
])
def test_dynamos_graph_is_copied_only_when_edited_and_never_changes(model, args, dynamic, copies_expected,
                                                                     monkeypatch):
    """Dynamo reads the graph it hands the backend afterwards: the backend copies it before any
    edit (and only then: a copy of a large graph costs ms), and dynamo's graph stays as it was."""
    from torch_tensorrt_rtx.dynamo import backend

    seen, copies = [], []
    real_compile, real_copy = backend._compile_dynamo_graph, backend._copy

    def compile_dynamo_graph(gm, example_inputs, settings):
        before = [node.format_node() for node in gm.graph.nodes]
        try:
            return real_compile(gm, example_inputs, settings)
        finally:
            seen.append((before, [node.format_node() for node in gm.graph.nodes]))

    def copy(gm):
        copies.append(gm)
        return real_copy(gm)

    monkeypatch.setattr(backend, "_compile_dynamo_graph", compile_dynamo_graph)
    monkeypatch.setattr(backend, "_copy", copy)
    torch.manual_seed(0)
    module = model().eval()
    compiled = torch.compile(module, backend="tensorrt_rtx", dynamic=dynamic,
                             options={**OPTIONS, "pass_through_build_failures": True})
    reference = model().eval()
    reference.load_state_dict(module.state_dict())
    with trtx.compile_reports() as reports:
        verification = trtx.verify(compiled, *args, reference_module=reference)
    assert verification.ok, str(verification)
    assert len(seen) == 1 and len(reports) == 1, (len(seen), len(reports))
    before, after = seen[0]
    assert after == before, "the backend edited dynamo's graph"
    assert len(copies) == copies_expected
