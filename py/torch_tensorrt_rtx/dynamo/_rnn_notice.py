"""Say so when dynamo leaves an nn.LSTM/GRU/RNN out of torch.compile.

With ``torch._dynamo.config.allow_rnn = False`` (torch's default) dynamo does not trace RNN
modules: the frame that calls one runs in eager PyTorch, and no backend is ever called for it, so
the tensorrt_rtx backend cannot report anything, and `compile_reports()` stays empty. Dynamo
records why only in its `counters["unimplemented"]`. A compile-end callback (dynamo's
`callback_handler`, run for every frame dynamo tries, whatever the outcome) compares those counters
before and after each frame and turns a new RNN entry into a FallbackWarning saying how to enable
it. The callback never raises.

Installed when the backend module is imported (dynamo imports it to resolve
``backend="tensorrt_rtx"``), and again by every backend call and every `compile_reports()` block:
``torch._dynamo.reset()`` drops all of dynamo's callbacks.
"""
from __future__ import annotations

import logging
import re
import threading
import warnings
from typing import Any, Dict

logger = logging.getLogger(__name__)

_MARK = "allow_rnn"  # dynamo's hint names the flag in every torch version that has it
_lock = threading.Lock()
_before: Dict[str, int] = {}


def _rnn_entries() -> Dict[str, int]:
    from torch._dynamo.utils import counters

    return {key: count for key, count in counters["unimplemented"].items() if _MARK in key}


def _module_named(key: str) -> str:
    match = re.search(r"Developer debug context:\s*(.+)", key)
    return match.group(1).strip() if match else "an nn.RNN/LSTM/GRU module"


def _on_start(_args: Any) -> None:
    try:
        _before.clear()
        _before.update(_rnn_entries())
    except Exception:  # noqa: BLE001 - a notice must never break compilation
        logger.debug("RNN notice: cannot read dynamo's counters", exc_info=True)


def _on_end(_args: Any) -> None:
    try:
        import torch

        if torch._dynamo.config.allow_rnn:
            return
        new = [key for key, count in _rnn_entries().items() if count > _before.get(key, 0)]
    except Exception:  # noqa: BLE001
        logger.debug("RNN notice: cannot read dynamo's counters", exc_info=True)
        return
    if not new:
        return
    from torch_tensorrt_rtx.dynamo._summary import FallbackWarning

    for key in new:
        warnings.warn(f"torch_tensorrt_rtx: torch.compile did not trace {_module_named(key)} "
                      "(torch._dynamo.config.allow_rnn is False): the code around it runs in eager PyTorch and "
                      "no TensorRT-RTX engine is built for it. Set torch._dynamo.config.allow_rnn = True before "
                      "the first call, or use torch_tensorrt_rtx.compile.", FallbackWarning, stacklevel=2)


def install() -> None:
    """Register the callbacks with dynamo, unless they are registered already."""
    with _lock:
        try:
            from torch._dynamo.callback import callback_handler

            if _on_end not in callback_handler.end_callbacks:
                callback_handler.register_start_callback(_on_start)
                callback_handler.register_end_callback(_on_end)
        except Exception:  # noqa: BLE001 - an older/newer torch without the handler: docs only
            logger.debug("RNN notice: dynamo has no callback_handler", exc_info=True)
