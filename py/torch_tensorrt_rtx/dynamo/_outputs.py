"""Why a model's outputs cannot be exported: values torch.export cannot flatten into tensors.

    message = unexportable_outputs(model, args, kwargs)   # None when every output is fine

Called by `compile` after torch.export has failed (never before: it runs the model once in
eager mode). The typical case is a Hugging Face model with `use_cache=True`, whose forward
returns a `DynamicCache` object next to its logits: export has no pytree rule for it, and its
own error ("Found <class ...DynamicCache> in output, which is not a known type") says nothing
about the setting that produces it. The message here names the output, its type and the fix.
"""
from __future__ import annotations

import logging
from typing import Any, Dict, Optional, Sequence

import torch
import torch.utils._pytree as pytree

logger = logging.getLogger(__name__)

_PLAIN = (torch.Tensor, int, float, bool, str, type(None), torch.SymInt, torch.SymFloat, torch.SymBool)


def _is_kv_cache(value: Any) -> bool:
    cls = type(value)
    return cls.__module__.startswith("transformers") and any("Cache" in c.__name__ for c in cls.__mro__)


def unexportable_outputs(module: torch.nn.Module, args: Sequence[Any], kwargs: Dict[str, Any]) -> Optional[str]:
    """A one-paragraph explanation when `module(*args, **kwargs)` returns something torch.export
    cannot flatten into tensors; None when every output is a tensor, a scalar or a registered
    container of them (or when running the model fails: the export error then says more)."""
    try:
        with torch.no_grad():
            out = module(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - the original export error is the one to show
        logger.debug("running %s eagerly to inspect its outputs failed: %s", type(module).__name__, exc)
        return None
    leaves, _ = pytree.tree_flatten_with_path(out)
    bad = [(pytree.keystr(path) or "the output", leaf) for path, leaf in leaves if not isinstance(leaf, _PLAIN)]
    if not bad:
        return None
    where, value = bad[0]
    name = f"{type(module).__name__}.forward"
    kind = f"{type(value).__module__}.{type(value).__name__}"
    if _is_kv_cache(value):
        return (f"{name} returns a {kind} at output{where}: the key/value cache of a transformers model run with "
                "use_cache=True, which torch.export cannot flatten into tensors. Turn the cache off before "
                "compiling: model.config.use_cache = False (or use_cache=False in the model's config), or use "
                "torch.compile(model, backend=\"tensorrt_rtx\"), which keeps the cache in Python.")
    others = f" (and {len(bad) - 1} more such output(s))" if len(bad) > 1 else ""
    return (f"{name} returns a {kind} at output{where}{others}, which torch.export cannot flatten into tensors. "
            "Return tensors (or tuples/lists/dicts of them), or register the type with "
            "torch.utils._pytree.register_pytree_node, or use torch.compile(model, backend=\"tensorrt_rtx\").")
