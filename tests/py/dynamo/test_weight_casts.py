"""fp16 copies of the weights made on a worker thread while torch.export runs (conversion/_weight_casts.py):
the very bits torch's cast gives, used only for the bytes they were made from, and taken by an fp16
compile's folds (whose engine then verifies against eager PyTorch)."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import tensorrt_rtx as trt
import torch
import torch.nn as nn

import torch_tensorrt_rtx._compile as compile_module
from torch_tensorrt_rtx.dynamo._export import export_aten
from torch_tensorrt_rtx.dynamo.conversion._interpreter import build_network
from torch_tensorrt_rtx.dynamo.conversion import _weight_casts
from torch_tensorrt_rtx.dynamo.conversion._weight_casts import MIN_BYTES, WeightCasts, start_weight_casts
from torch_tensorrt_rtx.dynamo.lowering import lower

from tests.py.dynamo.conversion.harness import batch_spec, compile_and_verify

WIDTH = 256  # a 256 x 256 fp32 weight is 256 KiB: copied ahead
assert WIDTH * WIDTH * 4 >= MIN_BYTES


class TwoLinear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Linear(WIDTH, WIDTH)
        self.second = nn.Linear(WIDTH, WIDTH)

    def forward(self, x):
        return self.second(torch.relu(self.first(x)))


def _bits(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.view(torch.int16)


def test_copies_have_the_bits_of_torchs_cast_including_overflow_subnormals_and_nan():
    specials = torch.tensor([0.0, -0.0, 1e-8, 2.98e-8, 3e-8, 5.96e-8, 6.1e-5, 65504.0, 65519.0, 65520.0, 1e10,
                             -1e10, float("inf"), float("-inf"), float("nan"), 1 / 3, 2049.0, 2051.0])
    weight = torch.cat([torch.randn(WIDTH * WIDTH) * 1000, specials.repeat(64)])
    casts = WeightCasts(torch.float16)
    casts.submit([weight])
    copy = casts.take(weight, torch.float16)
    assert copy is not None and copy.dtype == torch.float16 and copy.shape == weight.shape
    assert torch.equal(_bits(copy), _bits(weight.to(torch.float16)))
    casts.close()


def test_only_the_same_bytes_unchanged_in_the_asked_dtype_get_a_copy():
    big, other = torch.randn(WIDTH, WIDTH), torch.randn(WIDTH, WIDTH)
    small = torch.randn(8, 8)
    casts = WeightCasts(torch.float16)
    casts.submit([big, small, big.t(), torch.randn(WIDTH, WIDTH, dtype=torch.float64)])
    assert casts.take(small, torch.float16) is None  # below MIN_BYTES: folded as before
    assert casts.take(other, torch.float16) is None  # never submitted
    assert casts.take(big, torch.bfloat16) is None  # another dtype
    assert casts.take(big[:, :128], torch.float16) is None  # other bytes of the same storage
    assert casts.take(big.detach(), torch.float16) is not None  # same bytes, another tensor object
    assert casts.take(big, torch.float16) is None  # each copy is taken once (the fold shares it after)
    changed = torch.randn(WIDTH, WIDTH)
    casts.submit([changed])
    changed.mul_(2)  # in place after the copy was started: the copy is stale
    assert casts.take(changed, torch.float16) is None
    casts.close()


def test_tied_weights_are_copied_once():
    table = nn.Parameter(torch.randn(WIDTH, WIDTH))
    casts = WeightCasts(torch.float16)
    casts.submit([table, table, table.data])
    assert len(casts._pending) == 1
    casts.close()
    assert not casts._pending  # closed: nothing held


def test_a_copy_the_worker_has_not_started_is_cancelled_and_left_to_the_fold(monkeypatch):
    slow_start = _weight_casts.background_thread
    monkeypatch.setattr(_weight_casts, "background_thread", lambda: (time.sleep(0.3), slow_start()))  # starts late, as on a busy machine
    first, second = torch.randn(WIDTH, WIDTH), torch.randn(WIDTH, WIDTH)
    casts = WeightCasts(torch.float16)
    casts.submit([first])
    busy, release = threading.Event(), threading.Event()

    def block() -> None:
        busy.set()
        release.wait()

    casts._pool.submit(block)  # the one worker is busy until released
    # The worker takes jobs in order: once it runs block, first's copy is made (not cancellable).
    assert busy.wait(timeout=60)
    casts.submit([second])
    assert casts.take(second, torch.float16) is None  # not started: cancelled, not waited for
    release.set()
    assert casts.take(first, torch.float16) is not None
    casts.close()


def test_nothing_to_copy_ahead_without_fp16_or_without_large_fp32_weights():
    assert start_weight_casts(TwoLinear(), None) is None
    assert start_weight_casts(TwoLinear(), torch.bfloat16) is None  # numpy has no bfloat16
    assert start_weight_casts(nn.Linear(4, 4), torch.float16) is None
    with pytest.raises(ValueError, match="bfloat16"):
        WeightCasts(torch.bfloat16)


def _constants(network) -> list:
    """The bytes of the network's fp16 constants, in a fixed order."""
    found = []
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        if layer.type == trt.LayerType.CONSTANT and layer.get_output(0).dtype == trt.float16:
            layer.__class__ = trt.IConstantLayer  # the binding hands out the base class
            found.append(np.asarray(layer.weights).tobytes())
    return sorted(found, key=lambda b: (len(b), b))


def test_conversion_takes_the_copies_and_builds_the_same_constants():
    model = TwoLinear().eval()
    spec = batch_spec((2, WIDTH))
    ranges = [{0: (1, 2, 8)}]
    gm = lower(export_aten(model, [spec]).graph_module, torch.float16)
    folded = build_network(gm, ranges)
    casts = _made(start_weight_casts(model, torch.float16))
    with casts.in_use():
        ahead = build_network(gm, ranges)
    assert casts.taken == 2  # both weights (the biases are too small to copy ahead)
    casts.close()
    assert len(_constants(ahead.network)) >= 2
    assert _constants(ahead.network) == _constants(folded.network)


def _made(casts: WeightCasts) -> WeightCasts:
    """`casts` once the worker made every copy (a tiny model converts faster than they are made)."""
    for pending in casts._pending.values():
        pending.copy.result()
    return casts


def test_an_fp16_compile_uses_the_copies_and_matches_eager(monkeypatch):
    started = []

    def recording(module, dtype):
        started.append(_made(start_weight_casts(module, dtype)))
        return started[-1]

    monkeypatch.setattr(compile_module, "start_weight_casts", recording)
    monkeypatch.setenv("TORCH_TENSORRT_RTX_ENGINE_CACHE", "0")
    _, report, _ = compile_and_verify(TwoLinear().eval(), [batch_spec((2, WIDTH))],
                                      enabled_precisions={torch.float16})
    assert not report.fallback_ops
    assert len(started) == 1 and started[0] is not None and started[0].taken == 2
    assert not started[0]._pending  # closed after the compile
