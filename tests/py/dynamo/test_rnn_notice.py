"""torch.compile with dynamo's default allow_rnn=False never hands an nn.LSTM/GRU/RNN to the
backend (the whole frame runs eagerly and no backend is called): a FallbackWarning says so and how
to enable it, instead of a silent no-op."""
from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn as nn

import torch_tensorrt_rtx as trtx
from torch_tensorrt_rtx.dynamo._summary import FallbackWarning

OPTIONS = {"min_block_size": 1, "progress": False}


pytestmark = pytest.mark.usefixtures("fresh_dynamo")


class Tagger(nn.Module):
    def __init__(self, cell=nn.LSTM):
        super().__init__()
        self.rnn = cell(8, 16, batch_first=True)
        self.head = nn.Linear(16, 4)

    def forward(self, x):
        return self.head(self.rnn(x.relu() * 2)[0]).tanh()


def _rnn_notices(model, x):
    fast = torch.compile(model, backend="tensorrt_rtx", options=OPTIONS)
    with warnings.catch_warnings(record=True) as caught, trtx.compile_reports() as reports:
        warnings.simplefilter("always")
        trtx.verify(fast, x, reference_module=model)
    notices = [str(w.message) for w in caught if issubclass(w.category, FallbackWarning) and "allow_rnn" in str(w.message)]
    return notices, reports


@pytest.mark.parametrize("cell", [nn.LSTM, nn.GRU])
def test_skipped_rnn_is_named_with_the_fix(cell):
    assert torch._dynamo.config.allow_rnn is False  # torch's default, the case the notice is for
    notices, reports = _rnn_notices(Tagger(cell).eval(), torch.randn(2, 5, 8))
    assert not reports  # dynamo called no backend: nothing was compiled
    assert len(notices) == 1, notices
    assert f"{cell.__name__}(8, 16, batch_first=True)" in notices[0]
    assert "torch._dynamo.config.allow_rnn = True" in notices[0]


def test_no_notice_when_rnns_are_allowed():
    with torch._dynamo.config.patch(allow_rnn=True):
        notices, reports = _rnn_notices(Tagger().eval(), torch.randn(2, 5, 8))
    assert not notices
    assert reports  # the backend got the graph


def test_notice_is_registered_again_after_dynamo_reset():
    from torch._dynamo.callback import callback_handler

    from torch_tensorrt_rtx.dynamo import _rnn_notice

    torch._dynamo.reset()  # drops every dynamo callback
    assert _rnn_notice._on_end not in callback_handler.end_callbacks
    with trtx.compile_reports():
        assert _rnn_notice._on_end in callback_handler.end_callbacks
    _rnn_notice.install()
    assert callback_handler.end_callbacks.count(_rnn_notice._on_end) == 1
