"""no_user_frame_lookups: the loading thread gets a fixed range location, other threads torch's own."""
from __future__ import annotations

import threading

import pytest
from torch.fx.experimental import symbolic_shapes

from torch_tensorrt_rtx.dynamo import _no_user_frames
from torch_tensorrt_rtx.dynamo._no_user_frames import LOCATION, no_user_frame_lookups


@pytest.fixture
def costly_lookup(monkeypatch):
    """As in a fresh process: torch has not listed its uninteresting files yet."""
    monkeypatch.setattr(_no_user_frames, "_lookup_is_costly", lambda module: True)


def test_only_the_loading_thread_skips_the_lookup_and_torch_is_restored(costly_lookup):
    original = symbolic_shapes.ShapeEnv._get_sloc
    env = symbolic_shapes.ShapeEnv()
    seen = {}

    def other_thread():
        seen["other"] = env._get_sloc()

    with no_user_frame_lookups():
        assert symbolic_shapes.ShapeEnv._get_sloc is not original
        seen["mine"] = env._get_sloc()
        seen["framework"] = env._get_sloc("given by torch")
        with no_user_frame_lookups():  # nested: still skipped, not restored early
            seen["nested"] = env._get_sloc()
        assert symbolic_shapes.ShapeEnv._get_sloc is not original
        worker = threading.Thread(target=other_thread)
        worker.start()
        worker.join()
    assert symbolic_shapes.ShapeEnv._get_sloc is original
    assert seen["mine"].framework_loc == seen["nested"].framework_loc == LOCATION
    assert seen["framework"].framework_loc == "given by torch"
    assert seen["other"].framework_loc != LOCATION
    assert env._get_sloc().framework_loc != LOCATION


def test_two_loading_threads_restore_torch_when_the_last_leaves(costly_lookup):
    original = symbolic_shapes.ShapeEnv._get_sloc
    inside, release = threading.Barrier(2), threading.Event()
    found = []

    def load():
        with no_user_frame_lookups():
            inside.wait()
            release.wait()
            found.append(symbolic_shapes.ShapeEnv()._get_sloc().framework_loc)

    threads = [threading.Thread(target=load) for _ in range(2)]
    for thread in threads:
        thread.start()
    release.set()
    for thread in threads:
        thread.join()
    assert found == [LOCATION, LOCATION]
    assert symbolic_shapes.ShapeEnv._get_sloc is original


def test_nothing_is_replaced_when_the_lookup_is_cheap():
    original = symbolic_shapes.ShapeEnv._get_sloc
    symbolic_shapes.uninteresting_files()  # listed now: the lookup costs nothing more
    with no_user_frame_lookups():
        assert symbolic_shapes.ShapeEnv._get_sloc is original
