"""In-process handles on what each engine was built from, for `torch_tensorrt_rtx.verify`.

Keyed by the engine's sha256, so any graph holding the engine (an AOT-compiled module, a
torch.compile graph) finds them. The compiled module owns its sources (attribute
`_engine_sources`); this index holds them weakly, so they die with the module. They are not
saved: a program loaded from disk has only its engine records, and verify says so. The network
is converted on first use (`network`) when the compile took the engine from the engine cache.
"""
from __future__ import annotations

import dataclasses
import threading
import weakref
from typing import Any, Optional

from torch.fx import GraphModule


@dataclasses.dataclass
class EngineSource:
    fx_module: GraphModule  # the partition as a PyTorch graph (runs eagerly)
    lazy_network: Optional[Any]  # a LazyNetwork, or None when settings.keep_networks is False

    @property
    def network(self) -> Optional[Any]:
        """The NetworkDefinition (converted now if the compile did not need it), or None."""
        return None if self.lazy_network is None else self.lazy_network.get()


# A module from the program cache has no sources; this attribute holds a function that compiles the
# model again (its engines come from the engine cache, with the same bytes) and returns them.
ON_DEMAND_ATTR = "_torch_tensorrt_rtx_sources_on_demand"

_SOURCES: "weakref.WeakValueDictionary[str, EngineSource]" = weakref.WeakValueDictionary()
_LOCK = threading.Lock()


def remember(sha256: str, fx_module: GraphModule, lazy_network: Optional[Any]) -> EngineSource:
    """Index a source; the caller must keep the returned object alive (e.g. on the module)."""
    source = EngineSource(fx_module, lazy_network)
    with _LOCK:
        _SOURCES[sha256] = source
    return source


def lookup(sha256: str) -> Optional[EngineSource]:
    with _LOCK:
        return _SOURCES.get(sha256)


def make_available(module: Any) -> None:
    """Give a program-cache hit its engine sources (by compiling its model again), once."""
    make = getattr(module, ON_DEMAND_ATTR, None)
    if make is not None and getattr(module, "_engine_sources", None) is None:
        module._engine_sources = make()
