"""Half-precision copies of a module's weights, made on a worker thread before conversion needs them.

    casts = start_weight_casts(module, torch.float16)   # before torch.export, which runs meanwhile
    with casts.in_use():                                # around conversion
        ...                                             # see ahead_cast
    casts.close()                                       # copies nobody took are freed

An fp16 compile of an fp32 model casts its weights on the host: the precision pass puts
`aten._to_copy(weight, dtype=float16)` before the layers that compute in fp16, and conversion folds
those casts with torch (BERT-base: 75 casts of 110 M values, 0.16 s of a 0.18 s conversion, most of
it faulting in fresh memory for the results). Here a worker thread makes those copies while
torch.export traces the module on the main thread, so the fold finds them made.

The worker runs numpy only (`astype`, which releases the GIL), no torch code: the tensors are viewed
as numpy arrays on the submitting thread. numpy's fp32 -> fp16 conversion rounds to nearest even, as
torch's does, so a copy has the very bits `_to_copy` gives (tested, including overflow to inf,
subnormals and NaN).

A copy is used only for a tensor viewing the same bytes as the weight it was made from (storage,
offset, dtype, shape, strides) whose version counter is unchanged since; the storage is held
meanwhile. A cast the worker has not started yet is cancelled and folded with torch (faster than
waiting behind the others); one it is making is waited for.
"""
from __future__ import annotations

import contextlib
import contextvars
import logging
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Dict, Iterable, Iterator, NamedTuple, Optional

import numpy as np
import torch
from torch.fx import Node

from torch_tensorrt_rtx.dynamo._background import background_thread
from torch_tensorrt_rtx.dynamo._weight_digests import tensor_state

logger = logging.getLogger(__name__)

aten = torch.ops.aten

# Smaller weights are cast when folded: the worker's bookkeeping would cost more than the cast.
MIN_BYTES = 64 << 10

_NUMPY_DTYPES = {torch.float16: np.float16}
_CURRENT: contextvars.ContextVar[Optional["WeightCasts"]] = contextvars.ContextVar("trtx_weight_casts",
                                                                                   default=None)


def _castable(tensor: Any) -> bool:
    return (type(tensor) in (torch.Tensor, torch.nn.Parameter) and tensor.device.type == "cpu"
            and tensor.dtype == torch.float32 and tensor.is_contiguous()
            and tensor.numel() * tensor.element_size() >= MIN_BYTES)


def _cast(array: np.ndarray, dtype: Any) -> np.ndarray:
    with np.errstate(over="ignore"):  # values beyond fp16's range become inf, as in torch
        return array.astype(dtype)


class _Pending(NamedTuple):
    storage: Any  # held: the bytes cast stay this weight's
    copy: Future


class WeightCasts:
    """Copies of tensors in `dtype` (torch.float16), made on one worker thread; see the module docstring."""

    def __init__(self, dtype: torch.dtype) -> None:
        if dtype not in _NUMPY_DTYPES:
            raise ValueError(f"WeightCasts: no host copy for dtype {dtype}; expected one of {list(_NUMPY_DTYPES)}")
        self.dtype = dtype
        self._pool: Optional[ThreadPoolExecutor] = None
        self._pending: Dict[tuple, _Pending] = {}
        self.taken = 0  # copies the fold used (for tests and debug logging)

    def submit(self, tensors: Iterable[Any]) -> None:
        """Start copying every fp32, contiguous CPU tensor of at least MIN_BYTES of `tensors`
        (each bytes once: tied weights are one copy); anything else is left to the fold."""
        for tensor in tensors:
            if not _castable(tensor):
                continue
            state = tensor_state(tensor)  # its bytes, their layout and its version counter
            if state in self._pending:
                continue
            array = tensor.detach().numpy()
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="trtx-weight-cast", initializer=background_thread)
            copy = self._pool.submit(_cast, array, _NUMPY_DTYPES[self.dtype])
            self._pending[state] = _Pending(tensor.untyped_storage(), copy)

    def take(self, tensor: torch.Tensor, dtype: torch.dtype) -> Optional[torch.Tensor]:
        """`tensor` in `dtype` when a copy was made (or is being made) for it, else None."""
        if dtype != self.dtype or not isinstance(tensor, torch.Tensor) or tensor.device.type != "cpu":
            return None
        pending = self._pending.pop(tensor_state(tensor), None)  # none for other bytes or a changed version
        if pending is None or pending.copy.cancel():
            return None
        try:
            copy = pending.copy.result()
        except Exception as exc:  # noqa: BLE001 - e.g. out of memory on the worker: the fold casts instead
            logger.debug("weight cast ahead failed (%s: %s); casting when folded", type(exc).__name__, exc)
            return None
        self.taken += 1
        return torch.from_numpy(copy)

    @contextlib.contextmanager
    def in_use(self) -> Iterator["WeightCasts"]:
        """Folds in this thread and context take their casts from here."""
        token = _CURRENT.set(self)
        try:
            yield self
        finally:
            _CURRENT.reset(token)

    def close(self) -> None:
        """Stop the worker; copies not taken are dropped (their memory freed once made)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        if self._pending:
            logger.debug("%d weight copies made ahead were not used", len(self._pending))
        self._pending.clear()


def start_weight_casts(module: Any, dtype: Optional[torch.dtype]) -> Optional[WeightCasts]:
    """A WeightCasts already copying `module`'s fp32 weights into `dtype` (call it before torch.export),
    or None when there is nothing to copy ahead (no reduced precision, or one numpy has no type for)."""
    if dtype not in _NUMPY_DTYPES or not isinstance(module, torch.nn.Module):
        return None
    casts = WeightCasts(dtype)
    casts.submit(tensor for _, tensor in module.named_parameters(remove_duplicate=True))
    casts.submit(tensor for _, tensor in module.named_buffers(remove_duplicate=True))
    return casts if casts._pending else None


def ahead_cast(node: Node, args: Any, kwargs: Any) -> Optional[torch.Tensor]:
    """The fold of `node` made ahead, when `node` is a plain dtype cast of a weight the WeightCasts
    in use copied; else None (the caller folds it)."""
    casts = _CURRENT.get()
    if casts is None or node.target is not aten._to_copy.default or len(args) != 1 or set(kwargs) != {"dtype"}:
        return None
    return casts.take(args[0], kwargs["dtype"])
