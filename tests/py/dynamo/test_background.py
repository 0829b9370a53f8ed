"""Helper threads of a compile lower their own priority (dynamo/_background.py): the thread that calls
background_thread gets BACKGROUND_NICENESS more niceness, the other threads keep theirs."""
from __future__ import annotations

import os
import sys
import threading

import pytest

from torch_tensorrt_rtx.dynamo._background import BACKGROUND_NICENESS, background_thread

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")


def _nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def test_only_the_calling_thread_is_lowered():
    before = _nice()
    seen = []

    def helper():
        background_thread()
        seen.append(_nice())

    thread = threading.Thread(target=helper)
    thread.start()
    thread.join()
    assert seen == [min(before + BACKGROUND_NICENESS, 19)]
    assert _nice() == before  # the caller's thread is untouched
