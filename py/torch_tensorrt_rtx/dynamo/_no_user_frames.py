"""Load a saved program without torch's search for the "user frame" of each symbol range.

    with no_user_frame_lookups():
        program = torch.export.load(archive)

Deserializing a program with dynamic shapes sets each symbol's range on a new ShapeEnv, which
records where in user code the range came from (``ShapeEnv._get_sloc``, a debugging aid). Finding
that frame calls ``torch.fx.experimental.symbolic_shapes.uninteresting_files()``, whose first call
imports torch.export's tracer, dynamo, inductor and AOT autograd only to learn which files are not
user code: about 0.4 s of a program cache hit that needs none of them (measured on resnet50). A
loaded program has no user frame to point at anyway.

Meanwhile, on the loading thread only, a range's location is the fixed text ``LOCATION`` (torch's
type for it, ``SLoc``); every other thread gets torch's own lookup. The class attribute is put back
when the last loading thread leaves. Where torch has already computed the list of files (its cache
is filled) or lacks these names, nothing is replaced: the lookup is cheap then, or unknown.
"""
from __future__ import annotations

import contextlib
import threading
from typing import Any, Optional, Set

LOCATION = "torch_tensorrt_rtx: loaded from the program cache"
_lock = threading.Lock()
_loading: Set[int] = set()  # thread ids inside no_user_frame_lookups
_original: Optional[Any] = None  # ShapeEnv._get_sloc while replaced


def _lookup_is_costly(symbolic_shapes: Any) -> bool:
    files = getattr(symbolic_shapes, "uninteresting_files", None)
    cache_info = getattr(files, "cache_info", None)
    return (callable(cache_info) and cache_info().currsize == 0 and hasattr(symbolic_shapes, "SLoc")
            and callable(getattr(getattr(symbolic_shapes, "ShapeEnv", None), "_get_sloc", None)))


def _install(symbolic_shapes: Any) -> None:
    global _original
    original = symbolic_shapes.ShapeEnv._get_sloc
    sloc_type = symbolic_shapes.SLoc

    def _get_sloc(self: Any, framework_loc: Optional[str] = None) -> Any:
        if threading.get_ident() in _loading:
            return sloc_type(framework_loc or LOCATION, None)
        return original(self, framework_loc)

    _original = original
    symbolic_shapes.ShapeEnv._get_sloc = _get_sloc


@contextlib.contextmanager
def no_user_frame_lookups():
    """See the module docstring."""
    from torch.fx.experimental import symbolic_shapes

    me = threading.get_ident()
    with _lock:
        if me in _loading or (_original is None and not _lookup_is_costly(symbolic_shapes)):
            entered = False
        else:
            if _original is None:
                _install(symbolic_shapes)
            _loading.add(me)
            entered = True
    try:
        yield
    finally:
        if entered:
            _leave(symbolic_shapes, me)


def _leave(symbolic_shapes: Any, me: int) -> None:
    global _original
    with _lock:
        _loading.discard(me)
        if not _loading and _original is not None:
            symbolic_shapes.ShapeEnv._get_sloc = _original
            _original = None
