"""No full garbage collection starts inside a compile (dynamo/_gc.py), and the user's collector
settings are as they were afterwards: after a compile, a failed compile, nested and concurrent
blocks, and when someone changes them meanwhile."""
from __future__ import annotations

import gc
import threading

import pytest
import torch
import torch.nn as nn

import torch_tensorrt_rtx as trtx
from torch_tensorrt_rtx.dynamo import _gc
from torch_tensorrt_rtx.dynamo._gc import no_full_collections

_USER = (555, 7, 9)


@pytest.fixture
def user_thresholds():
    saved = gc.get_threshold()
    gc.collect()  # a full collection: the next blocks may hold full collections back again
    gc.set_threshold(*_USER)
    yield
    gc.set_threshold(*saved)


_SEEN = []  # module level: torch.export restores a module's own attributes after tracing


class _Probe(nn.Module):
    """Records the collector's thresholds while torch.export runs its forward."""

    def __init__(self, fail: bool = False):
        super().__init__()
        self.linear, self.fail = nn.Linear(4, 4), fail
        _SEEN.clear()

    @property
    def seen(self):
        return list(_SEEN)

    def forward(self, x):
        _SEEN.append(gc.get_threshold())
        if self.fail:
            raise ValueError("probe: forward fails on purpose")
        return torch.relu(self.linear(x))


def test_a_compile_holds_full_collections_back_and_restores_the_thresholds(user_thresholds):
    probe = _Probe().eval()
    compiled = trtx.compile(probe, [torch.randn(2, 4)], min_block_size=1, progress=False, cache_built_engines=False,
                            reuse_cached_engines=False)
    held = (_USER[0] * _gc._YOUNG_FACTOR, _USER[1])  # young collections rarer, still on
    assert probe.seen and all(seen[:2] == held and seen[2] > 10**6 for seen in probe.seen)
    assert gc.get_threshold() == _USER
    assert compiled.compile_report.engines


def test_a_failing_compile_restores_the_thresholds(user_thresholds):
    probe = _Probe(fail=True).eval()
    with pytest.raises(Exception, match="on purpose"):
        trtx.compile(probe, [torch.randn(2, 4)], progress=False)
    assert probe.seen and probe.seen[0][2] > 10**6
    assert gc.get_threshold() == _USER


def test_a_disabled_collector_stays_disabled(user_thresholds):
    gc.disable()
    try:
        with no_full_collections():
            assert not gc.isenabled()
        assert not gc.isenabled() and gc.get_threshold() == _USER
    finally:
        gc.enable()


def test_nested_blocks_restore_when_the_outermost_leaves(user_thresholds):
    with no_full_collections():
        with no_full_collections():
            pass
        assert gc.get_threshold()[2] > 10**6
    assert gc.get_threshold() == _USER


def test_concurrent_blocks_restore_when_the_last_leaves(user_thresholds):
    inside, release = threading.Event(), threading.Event()

    def other():
        with no_full_collections():
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=other)
    thread.start()
    assert inside.wait(10)
    with no_full_collections():
        pass
    assert gc.get_threshold()[2] > 10**6  # the other thread is still inside
    release.set()
    thread.join(10)
    assert gc.get_threshold() == _USER


def test_thresholds_someone_sets_meanwhile_stand(user_thresholds):
    with no_full_collections():
        gc.set_threshold(1000, 20, 30)
    assert gc.get_threshold() == (1000, 20, 30)


def test_a_block_that_raises_restores(user_thresholds):
    with pytest.raises(KeyError):
        with no_full_collections():
            raise KeyError("x")
    assert gc.get_threshold() == _USER


def test_full_collections_are_held_back_only_for_a_bounded_run_of_blocks(user_thresholds):
    """A full collection frees the engines of dropped compiled modules: back-to-back compiles may
    not starve it. After _MAX_HELD blocks with none in between, blocks leave the thresholds alone
    until one has run."""
    seen = []
    for _ in range(_gc._MAX_HELD + 1):
        with no_full_collections():
            seen.append(gc.get_threshold())
    assert all(t[2] > 10**6 for t in seen[:-1]) and seen[-1] == _USER
    gc.collect()
    with no_full_collections():
        assert gc.get_threshold()[2] > 10**6
