"""Host folding has a size bound: an all-constant op whose result is larger than its inputs (an
expand or repeat of a weight) is built in the network, so the engine stores the small weight,
not the large result. Engines are measured in bytes; numerics by the reference executor."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from torch_tensorrt_rtx.dynamo.conversion._context import ConversionContext
from torch_tensorrt_rtx.dynamo.conversion._interpreter import HOST_FOLD_LIMIT_BYTES, HOST_THREADS

from tests.py.dynamo.conversion.harness import compile_and_verify

ROWS, WIDTH = 2048, 256  # the grown weight: 2 MiB in fp32, far above the fold limit
GROWN_BYTES = ROWS * WIDTH * 4

GROW = {
    "expand": lambda w: w.expand(ROWS, WIDTH),
    "repeat": lambda w: w.repeat(ROWS, 1),
}


class GrownWeight(nn.Module):
    """x + a [1, WIDTH] weight grown to [ROWS, WIDTH]; the weight itself is 1 KiB."""

    def __init__(self, grow: str) -> None:
        super().__init__()
        self.grow = GROW[grow]
        self.weight = nn.Parameter(torch.randn(1, WIDTH), requires_grad=False)

    def forward(self, x):
        return x * self.grow(self.weight)


class TransposedWeight(nn.Module):
    """A result no larger than its input is still folded: the engine holds the weight once."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(WIDTH, ROWS), requires_grad=False)

    def forward(self, x):
        return x * self.weight.t()


@pytest.mark.parametrize("grow", sorted(GROW))
def test_grown_weight_is_not_stored_at_its_grown_size(grow):
    assert GROWN_BYTES > 8 * HOST_FOLD_LIMIT_BYTES
    _, report, _ = compile_and_verify(GrownWeight(grow), [torch.randn(ROWS, WIDTH)], full=True)
    engine_bytes = sum(e.engine_bytes for e in report.engines)
    assert engine_bytes < GROWN_BYTES // 8, f"{engine_bytes} bytes: the grown weight was stored\n{report.format()}"


def test_result_no_larger_than_its_input_is_folded():
    _, report, _ = compile_and_verify(TransposedWeight(), [torch.randn(ROWS, WIDTH)], full=True)
    engine_bytes = sum(e.engine_bytes for e in report.engines)
    # One copy of the 2 MiB weight (transposed on the host), not two.
    assert GROWN_BYTES <= engine_bytes < 1.5 * GROWN_BYTES, report.format()


def test_host_work_runs_on_one_thread_and_the_callers_setting_is_restored(monkeypatch):
    """Folds and weight constants are made on HOST_THREADS intra-op threads (small parallel ops stall
    on a loaded machine); the caller's thread count is back after the compile."""
    seen = []
    real = ConversionContext.constant

    def recording(self, *args, **kwargs):
        seen.append(torch.get_num_threads())
        return real(self, *args, **kwargs)

    monkeypatch.setattr(ConversionContext, "constant", recording)
    previous = torch.get_num_threads()
    torch.set_num_threads(HOST_THREADS + 1)
    try:
        compile_and_verify(TransposedWeight(), [torch.randn(ROWS, WIDTH)])
        after = torch.get_num_threads()
    finally:
        torch.set_num_threads(previous)
    assert seen and set(seen) == {HOST_THREADS}, seen
    assert after == HOST_THREADS + 1
