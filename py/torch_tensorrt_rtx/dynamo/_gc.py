"""Keep full garbage collections out of a compile.

    with no_full_collections():
        ...  # export, lowering, partitioning, conversion, build, packaging

A compile allocates enough objects to set off CPython's collector many times, and now and then a
full (oldest-generation) collection, which walks every tracked object of the process: the user's
model, torch, the compile's own graphs. Measured with resnet50 on 2 cores: 0.1 to 0.36 s per full
collection, in about one compile in three; freezing the objects that existed before the compile
(`gc.freeze()`) halved a full collection at best, since the compile's own long-lived objects are
as many. Inside `no_full_collections()` the oldest generation's threshold is out of reach. Young
collections go on, every ten times as many allocations as the user's threshold says (resnet50:
0.029 -> 0.015 s of young collections per compile), so the compile's short-lived garbage is still
reclaimed as it goes. What moves to the oldest generation meanwhile waits for the first full
collection after the compile.

That wait is bounded. A full collection is also what frees the engines of compiled modules that
were dropped (a GraphModule is a reference cycle): BERT-base compiled four times in a row with no
full collection in between kept four engines, 440 MB each. So full collections are held back
in at most `_MAX_HELD` blocks (a compile is two: export, then the rest) in a row with no full
collection (automatic or `gc.collect()`) in between; after that, collections run as usual until
one has. Back-to-back compiles thus hold at most one compile's garbage more than they would.

On leaving, the thresholds are set back to what they were. Nested and concurrent compiles
(threads) share one change, undone when the last one leaves; a threshold someone else set while
a compile ran is left as they set it. Explicit `gc.collect()` calls run as always.
"""
from __future__ import annotations

import contextlib
import gc
import logging
import threading
from typing import Iterator, Optional, Tuple

logger = logging.getLogger(__name__)

_OUT_OF_REACH = 1 << 30  # young collections between two full ones: never reached by a compile
_YOUNG_FACTOR = 10  # the youngest generation's threshold (allocations between collections), times this
_lock = threading.Lock()
_depth = 0  # compiles inside no_full_collections(), in any thread
_saved: Optional[Tuple[int, int, int]] = None  # the thresholds before the outermost one entered
_ours: Optional[Tuple[int, int, int]] = None  # the thresholds it set; None when it left them alone
_MAX_HELD = 2  # blocks in a row that may hold full collections back: one compile's export and the rest
_held = 0  # blocks that held them back since the last full collection
_full_at = -1  # the number of full collections run when the last such block left


def _full_collections() -> int:
    return gc.get_stats()[-1]["collections"]


def _enter() -> None:
    global _depth, _saved, _ours, _held
    with _lock:
        _depth += 1
        if _depth > 1:
            return
        _saved = gc.get_threshold()
        if _full_collections() != _full_at:
            _held = 0
        if _held >= _MAX_HELD:
            _ours = None  # full collections were held back long enough: let them run in this block
            return
        _ours = (_saved[0] * _YOUNG_FACTOR, _saved[1], _OUT_OF_REACH)
        gc.set_threshold(*_ours)


def _leave() -> None:
    global _depth, _saved, _ours, _held, _full_at
    with _lock:
        _depth -= 1
        if _depth or _ours is None:
            return
        _held += 1
        _full_at = _full_collections()
        if gc.get_threshold() == _ours:
            gc.set_threshold(*_saved)
        else:  # someone set the thresholds meanwhile: theirs stand
            logger.debug("gc: thresholds changed during the compile (%s -> %s); left as they are", _ours,
                         gc.get_threshold())
        _saved = _ours = None


@contextlib.contextmanager
def no_full_collections() -> Iterator[None]:
    """No full garbage collection starts by itself until the block is left (see the module
    docstring), also when it raises; explicit `gc.collect()` calls still run."""
    _enter()
    try:
        yield
    finally:
        _leave()
