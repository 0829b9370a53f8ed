"""export_aten's own unlift (_export._unlifted) builds what `program.module(check_guards=False)`
builds: the same graph, weights, hooks and calling convention, or declines."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from torch_tensorrt_rtx.dynamo._export import _unlifted


class _Weights(nn.Module):
    """A parameter, a persistent and a non-persistent buffer, a tensor constant, nested outputs
    and a keyword input."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 3)
        self.register_buffer("scale", torch.full((3,), 2.0))
        self.register_buffer("shift", torch.full((3,), 0.5), persistent=False)
        self.table = torch.arange(3, dtype=torch.float32)  # a plain tensor attribute: a lifted constant

    def forward(self, x, *, bias):
        y = self.linear(x) * self.scale + self.shift + self.table
        return {"sum": y + bias, "parts": (y, y.relu())}


def _program():
    batch = torch.export.Dim("batch", min=1, max=8)
    x, bias = torch.randn(2, 4), torch.randn(3)
    program = torch.export.export(_Weights().eval(), (x,), {"bias": bias},
                                  dynamic_shapes={"x": {0: batch}, "bias": None}, strict=False)
    return program, x, bias


def test_the_same_module_as_program_module():
    program, x, bias = _program()
    ours, theirs = _unlifted(program), program.module(check_guards=False)
    assert [(n.op, n.name, n.target) for n in ours.graph.nodes] == \
        [(n.op, n.name, n.target) for n in theirs.graph.nodes]
    assert ours.code == theirs.code
    ours_state, their_state = ours.state_dict(keep_vars=True), theirs.state_dict(keep_vars=True)
    assert list(ours_state) == list(their_state)
    assert all(ours_state[k] is their_state[k] for k in ours_state)  # shared, not copied
    assert dict(ours.named_buffers()).keys() == dict(theirs.named_buffers()).keys()
    assert torch.is_tensor(ours.table) and "table" not in dict(ours.named_buffers())  # a constant, as torch's
    assert type(ours).__mro__[1] is type(theirs).__mro__[1]  # torch's stateful graph module
    assert ours.range_constraints == theirs.range_constraints
    got, want = ours(torch.randn(5, 4), bias=bias), theirs(torch.randn(5, 4), bias=bias)
    assert got.keys() == want.keys() and len(got["parts"]) == 2
    x5 = torch.randn(5, 4)
    torch.testing.assert_close(ours(x5, bias=bias), theirs(x5, bias=bias))


def test_inputs_outside_the_range_are_refused_as_by_program_module():
    program, _x, bias = _program()
    ours, theirs = _unlifted(program), program.module(check_guards=False)
    for module in (ours, theirs):
        with pytest.raises(Exception, match="batch|<= 8|range"):
            module(torch.randn(9, 4), bias=bias)


def test_train_and_eval_are_refused_as_by_program_module():
    program, _x, _bias = _program()
    ours = _unlifted(program)
    for mode in ("train", "eval"):
        with pytest.raises(NotImplementedError, match=mode):
            getattr(ours, mode)()


def test_the_program_is_left_unchanged():
    program, x, bias = _program()
    before = [(n.op, n.name, n.target) for n in program.graph.nodes]
    ours = _unlifted(program)
    assert [(n.op, n.name, n.target) for n in program.graph.nodes] == before
    assert all(n.op != "get_attr" for n in program.graph.nodes)  # its weights are still lifted inputs
    torch.testing.assert_close(program.module()(x, bias=bias), ours(x, bias=bias))


class _Counter(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("calls", torch.zeros(()))

    def forward(self, x):
        self.calls.add_(1)
        return x * 2


def test_a_program_that_mutates_a_buffer_is_left_to_program_module():
    # functional (run_decompositions): the buffer's new value is an output the module copies back
    program = torch.export.export(_Counter(), (torch.randn(2),), strict=False).run_decompositions({})
    assert program.graph_signature.buffers_to_mutate
    assert _unlifted(program) is None


def test_an_in_place_update_of_a_buffer_behaves_as_in_program_module():
    program = torch.export.export(_Counter(), (torch.randn(2),), strict=False)  # add_ stays in the graph
    ours, theirs = _unlifted(program), program.module(check_guards=False)
    assert ours.calls is theirs.calls is program.state_dict["calls"]  # both share the program's buffer
    ours(torch.randn(2))
    assert ours.calls.item() == 1
    theirs(torch.randn(2))
    assert ours.calls.item() == 2


def test_without_generated_code_the_module_refuses_calls_until_recompiled():
    from torch_tensorrt_rtx.dynamo._export import CodeNotGeneratedYet

    program, x, bias = _program()
    ours, theirs = _unlifted(program, generate_code=False), program.module(check_guards=False)
    with pytest.raises(CodeNotGeneratedYet, match="before compile_graph generated"):
        ours(x, bias=bias)
    assert "_gen_python_code" not in vars(ours.graph._codegen)  # the stub is gone: the graph generates its own code
    ours.recompile()
    assert ours.code == theirs.code
    torch.testing.assert_close(ours(x, bias=bias), theirs(x, bias=bias))
