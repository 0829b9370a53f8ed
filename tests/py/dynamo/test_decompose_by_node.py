"""export_aten decomposes node by node (lowering/_decompositions.py) instead of retracing the
whole program with run_decompositions; it falls back to the retrace where that cannot be done."""
from __future__ import annotations

import collections
import logging

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from torch_tensorrt_rtx import Input
from torch_tensorrt_rtx.dynamo._export import export_aten
from torch_tensorrt_rtx.dynamo.lowering import decomposition_table
from torch_tensorrt_rtx.dynamo.lowering._decompositions import WholeProgramNeeded, decompose
from torch_tensorrt_rtx.dynamo.lowering._rewrites import functional_variant

aten = torch.ops.aten


class _Mixed(nn.Module):
    """Every direct rewrite, an in-place op on a fresh tensor, and ops only tracing decomposes."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.drop = nn.Dropout(0.2)
        self.up = nn.ConvTranspose2d(8, 4, 2, stride=2)
        self.bn.running_mean.uniform_(-1, 1)
        self.bn.running_var.uniform_(0.5, 2)

    def forward(self, x):
        y = self.bn(self.conv(x))
        y += 1.0  # in place on a fresh tensor
        y = F.relu(y, inplace=True)
        a, b = self.drop(y).chunk(2, dim=1)
        tokens = (a * b).flatten(2).transpose(1, 2).contiguous()
        image = tokens.unflatten(1, (x.shape[2], x.shape[3])).permute(0, 3, 1, 2)
        mask = (image > 0) & (image < 1)
        return self.up(torch.cat([image, a], 1)) + torch.diff(x, dim=3).sum() + mask.to(torch.float32).mean()


_SPEC = Input(min_shape=(1, 3, 6, 6), opt_shape=(2, 3, 6, 6), max_shape=(4, 3, 6, 6))


def _ops(gm):
    return collections.Counter(n.target for n in gm.graph.nodes if n.op == "call_function")


@pytest.mark.parametrize("allow_specialization", [False, True])
def test_high_level_ops_become_what_their_decompositions_give_and_keep_values(allow_specialization):
    model = _Mixed().eval()
    exported = export_aten(model, [_SPEC], allow_specialization=allow_specialization)
    ops = _ops(exported.graph_module)
    for gone in (aten.conv2d.default, aten.conv_transpose2d.input, aten.dropout.default, aten.chunk.default,
                 aten.contiguous.default, aten.unflatten.int, aten.__and__.Tensor, aten.to.dtype, aten.diff.default,
                 aten.add_.Tensor, aten.relu_.default):
        assert gone not in ops, (gone, ops)
    assert ops[aten.convolution.default] == 2 and ops[aten.batch_norm.default] == 1  # batch norm has a converter
    assert ops[aten.split.Tensor] == 1 and ops[aten.bitwise_and.Tensor] == 1 and ops[aten._to_copy.default] == 1
    # one dynamic batch (the backend's export keeps sizes 0 and 1 for itself: its range starts at 2)
    assert exported.specialized() == {} and list(exported.symbol_ranges.values()) in ([(1, 2, 4)], [(2, 2, 4)])
    for batch in (1, 3):
        x = torch.randn(batch, 3, 6, 6)
        with torch.no_grad():
            torch.testing.assert_close(exported.graph_module(x), model(x))


def test_a_symbolic_size_in_a_rewrite_is_read_from_the_input():
    class Heads(nn.Module):
        def forward(self, x):  # (B, S, 8) -> (B, S, 2, 4): the batch and sequence stay symbolic
            return x.unflatten(-1, (2, 4)).sum(-1)

    spec = Input(min_shape=(1, 2, 8), opt_shape=(2, 5, 8), max_shape=(4, 9, 8))
    exported = export_aten(Heads().eval(), [spec])
    views = [n for n in exported.graph_module.graph.nodes if n.target == aten.view.default]
    assert len(views) == 1
    sizes = views[0].args[1]
    assert [s.target for s in sizes[:2]] == [aten.sym_size.int] * 2 and list(sizes[2:]) == [2, 4]
    x = torch.randn(3, 7, 8)
    torch.testing.assert_close(exported.graph_module(x), x.view(3, 7, 2, 4).sum(-1))


class _MutatesAView(nn.Module):
    def forward(self, x):
        y = x * 2
        view = y[:, :1]
        y.add_(1)  # seen through `view`: not a local rewrite
        return view + y


class _NoGradRegion(nn.Module):
    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm1d(4)

    def forward(self, x):
        with torch.no_grad():  # a grad-mode region: a higher-order op in export's graph
            y = x + 1
        return self.bn(y * 2)


@pytest.mark.parametrize("model, reason", [(_MutatesAView(), "alias"), (_NoGradRegion(), "higher-order")])
def test_what_cannot_be_done_by_node_is_decomposed_whole(model, reason, caplog):
    exported_program = torch.export.export(model.eval(), (torch.randn(3, 4),), strict=False)
    with pytest.raises(WholeProgramNeeded, match=reason):
        decompose(exported_program.module(), decomposition_table())
    with caplog.at_level(logging.INFO, logger="torch_tensorrt_rtx.dynamo._export"):
        exported = export_aten(model.eval(), [Input(shape=(3, 4))])
    assert "whole program is decomposed" in caplog.text
    ops = _ops(exported.graph_module)
    assert aten.add_.Tensor not in ops and aten.batch_norm.default not in ops  # retraced: core ATen
    x = torch.randn(3, 4)
    with torch.no_grad():
        torch.testing.assert_close(exported.graph_module(x), model(x))


def test_in_place_ops_map_to_their_functional_variants():
    assert functional_variant(aten.add_.Tensor) is aten.add.Tensor
    assert functional_variant(aten.relu_.default) is aten.relu.default
    assert functional_variant(aten.add.Tensor) is None  # not in place
    assert functional_variant(aten.add.out) is None  # writes an out= argument


def test_the_decomposed_batch_norm_still_converts_when_the_program_is_retraced():
    from tests.py.dynamo.conversion.harness import compile_and_verify

    model = _NoGradRegion().eval()
    model.bn.running_var.uniform_(0.5, 2)
    compile_and_verify(model, [torch.randn(3, 4)], expect_ops=["aten._native_batch_norm_legit_no_training.default"],
                       full=True)
