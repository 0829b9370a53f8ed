"""Refitting a weightless (or refittable) engine from the program's weights, through TensorRT-RTX's
``IRefitter``: ``set_named_weights`` for every weight the engine knows, then ``refit_cuda_engine``.

A weightless engine (``compile(..., strip_engine_weights=True)``) is built with STRIP_PLAN + REFIT;
the program keeps each weight once, as a buffer, and passes it to the engine op as a trailing
input. The output spec names them (``OutputSpec.refit_weights``). The runtime refits before the
engine's first run and again only after ``refit_module_weights`` marked the engine stale.
The C++ runtime does the same, with the same error words: ``core/runtime/refit_engine.cpp``.
"""
from __future__ import annotations

import logging
from typing import Any, List, Sequence

import numpy as np
import torch

logger = logging.getLogger(__name__)


class RefitError(RuntimeError):
    """The engine could not be refitted from the program's weights."""


def _host_array(weight: torch.Tensor) -> np.ndarray:
    host = weight.detach().cpu()
    if host.dtype == torch.bfloat16:  # stored as fp32 at build time (numpy has no bfloat16)
        host = host.float()
    return np.ascontiguousarray(host.numpy())


def refit_engine(api: Any, engine: Any, names: Sequence[str], weights: Sequence[torch.Tensor], what: str) -> int:
    """Refits ``engine`` with ``weights`` (by TensorRT weight name); returns how many were set.
    Names the engine does not list as refittable (folded away) are skipped; a weight the engine
    still misses afterwards, or one TensorRT-RTX refuses (wrong size), raises RefitError."""
    if len(names) != len(weights):
        raise RefitError(f"{what}: {len(names)} refit weight names but {len(weights)} weight tensors")
    refitter = api.Refitter(engine, api.Logger(api.Logger.WARNING))
    known = set(refitter.get_all_weights())
    keepalive: List[np.ndarray] = []
    for name, weight in zip(names, weights):
        if name not in known:
            logger.debug("%s: weight %r is not refittable in the engine (folded); skipped", what, name)
            continue
        array = _host_array(weight)
        keepalive.append(array)
        if not refitter.set_named_weights(name, api.Weights(array)):
            raise RefitError(f"{what}: TensorRT-RTX refused weight {name!r} (shape {tuple(weight.shape)}, "
                             f"{weight.dtype}); expected the shape and dtype the engine was built with")
    missing = sorted(refitter.get_missing_weights())
    if missing:
        raise RefitError(f"{what}: the engine still needs weights {missing[:8]}{' ...' if len(missing) > 8 else ''} "
                         f"({len(missing)} missing); the program does not provide them")
    if not refitter.refit_cuda_engine():
        raise RefitError(f"{what}: TensorRT-RTX refit_cuda_engine failed")
    logger.info("%s: refitted %d weights", what, len(keepalive))
    return len(keepalive)
