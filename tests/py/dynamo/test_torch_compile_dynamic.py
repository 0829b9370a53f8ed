"""torch.compile(backend="tensorrt_rtx", dynamic=True): Python floats (BatchNorm/LayerNorm eps,
float arguments) that dynamo passes as graph inputs are specialized with a guard, and a dim the
ATen graph cannot keep dynamic is specialized with a guard; batch 1 gets its own engine unless
dynamo traces the size without 0/1 specialization. The engines are checked against eager
through the CPU reference executor at several sizes (no GPU)."""
from __future__ import annotations

import logging

import pytest
import torch
import torch.nn as nn

import torch_tensorrt_rtx as trtx
from torch_tensorrt_rtx.dynamo._summary import FallbackWarning

from examples.models import MLP, GPTBlock, SmallCNN, example_inputs

OPTIONS = {"min_block_size": 1, "progress": False, "dynamic_max_size": 64}


@pytest.fixture(autouse=True)
def _reset_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def _cnn_with_statistics() -> nn.Module:
    torch.manual_seed(0)
    model = SmallCNN().eval()
    for module in model.modules():  # non-trivial statistics and eps, so batch norm is really tested
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 1.5)
            module.eps = 0.1
    return model


def _compile_and_verify(model: nn.Module, calls, options=None, dynamic=True, mark=None):
    """torch.compile (dynamic=True by default), verify each call against eager; return the new
    reports. `mark(args)` runs before each call (e.g. mark_unbacked on an input)."""
    compiled = torch.compile(model, backend="tensorrt_rtx", dynamic=dynamic, options=options or OPTIONS)
    with trtx.compile_reports() as reports:
        for args in calls:
            if mark:
                mark(args)
            verification = trtx.verify(compiled, *args, reference_module=model)
            assert verification.ok, str(verification)
            assert verification.engines and all(e.calls == 1 for e in verification.engines), str(verification)
    return reports


def test_mlp_dynamic_batch_one_engine_no_fallback():
    torch.manual_seed(0)
    model = MLP().eval()
    reports = _compile_and_verify(model, [[torch.randn(b, 16)] for b in (2, 3, 7)])
    assert len(reports) == 1, [r.format() for r in reports]
    assert not reports[0].fallback_ops, reports[0].format()
    assert reports[0].engines[0].input_ranges == ["{0: (2, 2, 64)}"]


def test_cnn_with_batch_norm_dynamic_batch_and_new_image_size():
    # One compile covers the three batch sizes; batch norm's eps became a constant, not an input.
    # Adaptive pooling makes export guard on the image size, so height/width are specialized
    # (batch stays dynamic); a different size must recompile, and both must match eager.
    model = _cnn_with_statistics()
    reports = _compile_and_verify(model, [[torch.randn(b, 3, 16, 16)] for b in (2, 3, 5)] +
                                  [[torch.randn(2, 3, 12, 12)]])
    assert len(reports) == 2, [r.format() for r in reports]
    assert all(not r.fallback_ops and len(r.engines) == 1 for r in reports), [r.format() for r in reports]
    assert reports[0].engines[0].input_ranges[0].startswith("{0: (2, 2, "), reports[0].format()
    assert "aten.batch_norm" not in str(reports[0].fallback_reasons)


def test_gpt_block_dynamic_batch_and_sequence():
    torch.manual_seed(0)
    model = GPTBlock().eval()
    calls = [example_inputs("gpt_block", batch, seq) for batch, seq in ((2, 8), (3, 8), (4, 5))]
    reports = _compile_and_verify(model, calls)
    assert len(reports) == 1, [r.format() for r in reports]
    report = reports[0]
    assert not report.fallback_ops, report.format()
    assert len(report.engines) == 1
    ranges = report.engines[0].input_ranges[0]
    assert "0: (2, 2, " in ranges and "1: (2, 8, " in ranges, ranges  # batch and sequence both ranged


class _Scaled(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x, scale: float):
        return torch.relu(self.fc(x)) * scale + 1


def test_float_argument_is_specialized_with_a_guard():
    # dynamo makes `scale` a runtime input; the engine bakes it in, so a new value must
    # recompile (verify against eager fails if the old engine is reused).
    torch.manual_seed(0)
    model = _Scaled().eval()
    reports = _compile_and_verify(model, [[torch.randn(2, 8), 0.5], [torch.randn(3, 8), 0.5],
                                          [torch.randn(2, 8), 2.0]])
    assert len(reports) == 2, [r.format() for r in reports]
    assert all(not r.fallback_ops for r in reports)


class _IntArgument(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x, n: int):
        y = torch.relu(self.fc(x)) * n + n  # n in arithmetic,
        return y.repeat(1, n)[:, : n + 3]  # as a repeat count and in a slice bound


def test_int_argument_is_specialized_with_a_guard():
    # dynamo makes `n` a SymInt input that is no tensor size; the engine bakes it in (it was
    # run in PyTorch before), so a new value must recompile rather than reuse the engine.
    torch.manual_seed(0)
    model = _IntArgument().eval()
    reports = _compile_and_verify(model, [[torch.randn(2, 8), 3], [torch.randn(3, 8), 3],
                                          [torch.randn(2, 8), 5], [torch.randn(4, 8), 5]])
    assert len(reports) == 2, [r.format() for r in reports]
    for report in reports:
        assert not report.fallback_ops, report.format()
        assert len(report.engines) == 1 and report.engines[0].input_ranges[0].startswith("{0: (2, ")


def test_int_argument_equal_to_a_tensor_size_stays_symbolic():
    # An int dynamo ties to a tensor dim (here through view) is that dim's size, not a constant.
    class View(nn.Module):
        def forward(self, x, n: int):
            return (x * 2).view(n, -1)

    model = View().eval()
    reports = _compile_and_verify(model, [[torch.randn(3, 4), 3], [torch.randn(5, 4), 5]])
    assert len(reports) == 1, [r.format() for r in reports]
    assert not reports[0].fallback_ops, reports[0].format()


def test_size_above_dynamic_max_size_recompiles_instead_of_reaching_the_small_engine():
    # The engine for batch 2 is ranged [2, dynamic_max_size=8]; batch 16 fails dynamo's guard on
    # that range and recompiles an engine covering 16 (verify raises if an engine is run outside
    # its profile), while batch 5 still fits an existing engine.
    torch.manual_seed(0)
    model = MLP().eval()
    options = {**OPTIONS, "dynamic_max_size": 8}
    reports = _compile_and_verify(model, [[torch.randn(b, 16)] for b in (2, 16, 5)], options)
    assert len(reports) == 2, [r.format() for r in reports]
    assert [r.engines[0].input_ranges for r in reports] == [["{0: (2, 2, 8)}"], ["{0: (2, 16, 16)}"]]


# Batch 1. By default dynamo specializes sizes 0 and 1: a batch-1 call is traced again as a static
# graph and gets an engine of its own (the backend says so at INFO). When dynamo traces a size
# without that specialization (torch's backed_size_oblivious setting, or mark_unbacked on one
# dim), the engine's range starts at 1 and that one engine serves batch 1 too; verify raises if
# an input is outside an engine's profile, so each batch-1 result really came from that engine.

def _mlp():
    torch.manual_seed(0)
    return MLP().eval()


def test_default_dynamo_gives_batch_one_its_own_engine_and_says_why(caplog):
    with caplog.at_level(logging.INFO, logger="torch_tensorrt_rtx.dynamo.backend"):
        reports = _compile_and_verify(_mlp(), [[torch.randn(b, 16)] for b in (4, 1, 3)])
    assert [r.engines[0].input_ranges for r in reports] == [["{0: (2, 4, 64)}"], ["{}"]]
    hints = [r.getMessage() for r in caplog.records if "specializes sizes 0 and 1" in r.getMessage()]
    assert len(hints) == 1 and "input 0 dim 0" in hints[0] and "backed_size_oblivious" in hints[0], hints


def test_backed_size_oblivious_serves_batch_one_from_the_dynamic_engine(caplog):
    with torch.fx.experimental._config.patch(backed_size_oblivious=True), \
            caplog.at_level(logging.INFO, logger="torch_tensorrt_rtx.dynamo.backend"):
        reports = _compile_and_verify(_mlp(), [[torch.randn(b, 16)] for b in (4, 1, 3, 64)])
    assert len(reports) == 1, [r.format() for r in reports]
    assert reports[0].engines[0].input_ranges == ["{0: (1, 4, 64)}"]
    assert not reports[0].fallback_ops, reports[0].format()
    assert not [r for r in caplog.records if "specializes sizes 0 and 1" in r.getMessage()]


def test_mark_unbacked_dim_serves_batch_one_and_its_range_checks_are_not_fallback():
    reports = _compile_and_verify(_mlp(), [[torch.randn(b, 16)] for b in (4, 1, 16)], dynamic=None,
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
    reports = _compile_and_verify(model, [[torch.randn(b, 3, 16, 16)] for b in (2, 1, 5)], dynamic=None,
                   mark=lambda args: torch._dynamo.decorators.mark_unbacked(args[0], 0, min=1, max=8))
    assert len(reports) == 1, [r.format() for r in reports]
    assert reports[0].engines[0].input_ranges == ["{0: (1, 2, 8)}"], reports[0].format()
    assert not reports[0].fallback_ops, reports[0].format()


def test_gpt_block_batch_and_sequence_of_one_under_backed_size_oblivious():
    # Decoding calls a transformer block with sequence length 1: one engine covers it.
    torch.manual_seed(0)
    model = GPTBlock().eval()
    with torch.fx.experimental._config.patch(backed_size_oblivious=True):
        reports = _compile_and_verify(model, [example_inputs("gpt_block", b, s) for b, s in ((2, 5), (1, 1), (3, 7), (1, 9))])
    assert len(reports) == 1, [r.format() for r in reports]
    assert not reports[0].fallback_ops, reports[0].format()
    ranges = reports[0].engines[0].input_ranges[0]
    assert "0: (1, 2, " in ranges and "1: (1, 5, " in ranges, ranges


class _PairRows(torch.nn.Module):
    def forward(self, x):
        return x.reshape(x.shape[0] // 2, 2, 8).sum(1)


def test_unbacked_dim_the_exported_graph_cannot_keep_runs_in_pytorch_with_a_warning():
    # Pairing rows needs an even batch, which an unbacked size cannot be guarded on: the graph
    # runs in PyTorch (right results) and the warning names the dim and both ranges.
    model = _PairRows()
    compiled = torch.compile(model, backend="tensorrt_rtx", options=OPTIONS)
    x = torch.randn(4, 8)
    torch._dynamo.decorators.mark_unbacked(x, 0, min=1, max=64)
    with pytest.warns(FallbackWarning, match=r"export failed, so this graph runs in PyTorch: input 0 dim 0 was "
                      r"marked unbacked over \[1, 64\]"), trtx.compile_reports() as reports:
        out = compiled(x)
    torch.testing.assert_close(out, model(x))
    assert not reports, [r.format() for r in reports]
