"""Work the compile hands to other threads yields to the compile itself.

    pool = ThreadPoolExecutor(1, initializer=background_thread)   # or call it first in Thread.run

Helper threads (weight copies while torch.export traces, file pages made ahead) are worth running
only on a core nobody else wants. On Linux the nice value is a per-thread attribute, so a thread
can lower its own priority: where a core is free it runs at full speed; where the compile's thread
(or another process) wants the core, the scheduler gives the helper about a tenth of it instead of
half. Elsewhere nothing changes.
"""
from __future__ import annotations

import logging
import os
import threading

logger = logging.getLogger(__name__)

BACKGROUND_NICENESS = 10


def background_thread() -> None:
    """Lower the calling thread's priority by BACKGROUND_NICENESS (Linux; elsewhere a no-op)."""
    if not hasattr(os, "setpriority") or not hasattr(threading, "get_native_id"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + BACKGROUND_NICENESS)
    except OSError as exc:  # e.g. a sandbox refusing it: the thread runs at the usual priority
        logger.debug("background thread keeps its priority: %s", exc)
