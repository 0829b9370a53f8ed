"""nn.LSTM and nn.GRU convert fully with a dynamic batch, through both entry points.

torch.export unrolls them over the (static) sequence length into linear/sigmoid/tanh/split
ops; the reverse direction of a bidirectional RNN flips the sequence (aten.flip). Every call
is checked against eager through the CPU reference executor."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import torch_tensorrt_rtx as trtx
from torch_tensorrt_rtx import Input

from tests.py.dynamo.conversion.harness import compile_and_verify

SEQ, FEATURES, HIDDEN = 4, 6, 5
# (cell, bidirectional, layers, batch_first): each cell uni- and bidirectional, 1 and 2 layers,
# batch first and sequence first.
CONFIGS = [(nn.LSTM, False, 1, True), (nn.LSTM, True, 2, False), (nn.GRU, True, 1, True), (nn.GRU, False, 2, False)]


def _rnn(cell, bidirectional, layers, batch_first):
    return cell(FEATURES, HIDDEN, num_layers=layers, bidirectional=bidirectional, batch_first=batch_first).eval()


def _shape(batch, batch_first):
    return (batch, SEQ, FEATURES) if batch_first else (SEQ, batch, FEATURES)


@pytest.mark.parametrize("cell,bidirectional,layers,batch_first", CONFIGS,
                         ids=[f"{c.__name__}-{'bi' if b else 'uni'}-{n}layer-{'bf' if f else 'sf'}"
                              for c, b, n, f in CONFIGS])
def test_rnn_dynamic_batch_converts_fully(cell, bidirectional, layers, batch_first):
    model = _rnn(cell, bidirectional, layers, batch_first)
    spec = Input(min_shape=_shape(1, batch_first), opt_shape=_shape(2, batch_first), max_shape=_shape(8, batch_first))
    runs = [[torch.randn(*_shape(b, batch_first))] for b in (1, 6)]
    expect = ["aten.flip.default"] if bidirectional else []
    _, report, _ = compile_and_verify(model, [spec], runs, expect_ops=expect, full=True)
    assert len(report.engines) == 1 and not report.failed_nodes, report.format()


def test_half_lstm_dynamic_batch_converts_fully():
    model = _rnn(nn.LSTM, True, 1, True).half()
    spec = Input(min_shape=_shape(1, True), opt_shape=_shape(2, True), max_shape=_shape(8, True), dtype=torch.float16)
    runs = [[torch.randn(*_shape(b, True)).half()] for b in (1, 5)]
    compile_and_verify(model, [spec], runs, expect_ops=["aten.flip.default"], full=True)


class _Decoder(nn.Module):
    """An LSTM fed the caller's initial state (h0, c0), whose batch is dim 1."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.LSTM(FEATURES, HIDDEN, num_layers=2, batch_first=True)

    def forward(self, x, h, c):
        return self.rnn(x, (h, c))


def test_lstm_with_initial_state_dynamic_batch():
    batch = ("b", None, None)
    specs = [Input(min_shape=_shape(1, True), opt_shape=_shape(2, True), max_shape=_shape(8, True), dim_names=batch)]
    specs += [Input(min_shape=(2, 1, HIDDEN), opt_shape=(2, 2, HIDDEN), max_shape=(2, 8, HIDDEN),
                    dim_names=(None, "b", None)) for _ in range(2)]
    runs = [[torch.randn(*_shape(b, True)), torch.randn(2, b, HIDDEN), torch.randn(2, b, HIDDEN)] for b in (1, 5)]
    compile_and_verify(_Decoder().eval(), specs, runs, full=True)


@pytest.fixture
def allow_rnn():
    torch._dynamo.reset()
    before = torch._dynamo.config.allow_rnn
    torch._dynamo.config.allow_rnn = True
    yield
    torch._dynamo.config.allow_rnn = before
    torch._dynamo.reset()


def test_torch_compile_with_allow_rnn_builds_one_dynamic_engine(allow_rnn):
    model = _rnn(nn.LSTM, True, 2, True)
    compiled = torch.compile(model, backend="tensorrt_rtx", options={"min_block_size": 1, "progress": False})
    with trtx.compile_reports() as reports:
        for batch in (2, 3, 7):
            x = torch.randn(*_shape(batch, True))
            torch._dynamo.mark_dynamic(x, 0)
            verification = trtx.verify(compiled, x, reference_module=model)
            assert verification.ok and verification.engines, str(verification)
    assert len(reports) == 1, [r.format() for r in reports]
    assert not reports[0].fallback_ops and len(reports[0].engines) == 1, reports[0].format()
    assert reports[0].engines[0].input_ranges[0].startswith("{0: (2,"), reports[0].format()
