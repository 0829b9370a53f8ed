"""torch.compile(dynamic=True) and batch 1. By default dynamo specializes sizes 0 and 1: a batch-1
call is traced again as a static graph and gets an engine of its own (the backend says so at
INFO). When dynamo traces a size without that specialization (torch's backed_size_oblivious
setting, or mark_unbacked on one dim), the engine's range starts at 1 and that one engine serves
batch 1 too. `verify` runs every engine on the CPU reference executor and raises if an input is
outside the engine's profile, so each batch-1 result below really came from the ranged engine."""
from __future__ import annotations

import logging

import pytest
import torch

import torch_tensorrt_rtx as trtx

from examples.models import MLP, GPTBlock, SmallCNN, example_inputs

OPTIONS = {"min_block_size": 1, "progress": False, "dynamic_max_size": 64}


@pytest.fixture(autouse=True)
def _reset_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def _run(model, calls, dynamic=True, mark=None):
    """Compile once, call with each input list (verified against eager); return the reports."""
    compiled = torch.compile(model, backend="tensorrt_rtx", dynamic=dynamic, options=OPTIONS)
    with trtx.compile_reports() as reports:
        for args in calls:
            if mark:
                mark(args)
            verification = trtx.verify(compiled, *args, reference_module=model)
            assert verification.ok, str(verification)
            assert verification.engines and all(e.calls == 1 for e in verification.engines), str(verification)
    return reports


def _mlp():
    torch.manual_seed(0)
    return MLP().eval()


def test_default_dynamo_gives_batch_one_its_own_engine_and_says_why(caplog):
    with caplog.at_level(logging.INFO, logger="torch_tensorrt_rtx.dynamo.backend"):
        reports = _run(_mlp(), [[torch.randn(b, 16)] for b in (4, 1, 3)])
    assert [r.engines[0].input_ranges for r in reports] == [["{0: (2, 4, 64)}"], ["{}"]]
    hints = [r.getMessage() for r in caplog.records if "specializes sizes 0 and 1" in r.getMessage()]
    assert len(hints) == 1 and "input 0 dim 0" in hints[0] and "backed_size_oblivious" in hints[0], hints


def test_backed_size_oblivious_serves_batch_one_from_the_dynamic_engine(caplog):
    with torch.fx.experimental._config.patch(backed_size_oblivious=True), \
            caplog.at_level(logging.INFO, logger="torch_tensorrt_rtx.dynamo.backend"):
        reports = _run(_mlp(), [[torch.randn(b, 16)] for b in (4, 1, 3, 64)])
    assert len(reports) == 1, [r.format() for r in reports]
    assert reports[0].engines[0].input_ranges == ["{0: (1, 4, 64)}"]
    assert not reports[0].fallback_ops, reports[0].format()
    assert not [r for r in caplog.records if "specializes sizes 0 and 1" in r.getMessage()]


def test_mark_unbacked_dim_serves_batch_one_and_its_range_checks_are_not_fallback():
    reports = _run(_mlp(), [[torch.randn(b, 16)] for b in (4, 1, 16)], dynamic=None,
                   mark=lambda args: torch._dynamo.decorators.mark_unbacked(args[0], 0, min=1, max=16))
    assert len(reports) == 1, [r.format() for r in reports]
    assert reports[0].engines[0].input_ranges == ["{0: (1, 4, 16)}"]
    assert not reports[0].fallback_ops, reports[0].format()  # export's u0 <= 16 checks are bookkeeping


def test_cnn_batch_one_with_an_unbacked_batch_dim():
    # mark_unbacked picks the batch alone: the image size stays static, so adaptive pooling
    # converts, and the batch range starts at 1. (backed_size_oblivious would make the image
    # size oblivious too, and adaptive pooling over a dynamic size stays in PyTorch.)
    torch.manual_seed(0)
    model = SmallCNN().eval()
    reports = _run(model, [[torch.randn(b, 3, 16, 16)] for b in (2, 1, 5)], dynamic=None,
                   mark=lambda args: torch._dynamo.decorators.mark_unbacked(args[0], 0, min=1, max=8))
    assert len(reports) == 1, [r.format() for r in reports]
    assert reports[0].engines[0].input_ranges == ["{0: (1, 2, 8)}"], reports[0].format()
    assert not reports[0].fallback_ops, reports[0].format()


def test_gpt_block_batch_and_sequence_of_one_under_backed_size_oblivious():
    # Decoding calls a transformer block with sequence length 1: one engine covers it.
    torch.manual_seed(0)
    model = GPTBlock().eval()
    with torch.fx.experimental._config.patch(backed_size_oblivious=True):
        reports = _run(model, [example_inputs("gpt_block", b, s) for b, s in ((2, 5), (1, 1), (3, 7), (1, 9))])
    assert len(reports) == 1, [r.format() for r in reports]
    assert not reports[0].fallback_ops, reports[0].format()
    ranges = reports[0].engines[0].input_ranges[0]
    assert "0: (1, 2, " in ranges and "1: (1, 5, " in ranges, ranges


class _PairRows(torch.nn.Module):
    def forward(self, x):
        return x.reshape(x.shape[0] // 2, 2, 8).sum(1)


def test_unbacked_dim_the_exported_graph_cannot_keep_runs_in_pytorch_with_a_warning(caplog):
    # Pairing rows needs an even batch, which an unbacked size cannot be guarded on: the graph
    # runs in PyTorch (right results) and the warning names the dim and both ranges.
    model = _PairRows()
    compiled = torch.compile(model, backend="tensorrt_rtx", options=OPTIONS)
    x = torch.randn(4, 8)
    torch._dynamo.decorators.mark_unbacked(x, 0, min=1, max=64)
    with caplog.at_level(logging.WARNING, logger="torch_tensorrt_rtx.dynamo.backend"), \
            trtx.compile_reports() as reports:
        out = compiled(x)
    torch.testing.assert_close(out, model(x))
    assert not reports, [r.format() for r in reports]
    messages = [r.getMessage() for r in caplog.records]
    assert any("input 0 dim 0 was marked unbacked over [1, 64]" in m and "running this graph in PyTorch" in m
               for m in messages), messages
