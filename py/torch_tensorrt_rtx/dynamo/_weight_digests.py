"""The engine cache key's weight digests, computed on worker threads, ahead of time where possible.

    digests = WeightDigests()
    digests.submit(module.parameters())   # e.g. while torch.export traces the module
    digest = digests.digest(tensor)       # the same SHA-256 as _engine_cache_key.tensor_digest

hashlib releases the GIL for large buffers, so while torch.export (Python, holding the GIL)
traces a module, worker threads hash its weights on the other core, and the key later finds
them ready; the key's own constants are submitted together too, so they are hashed in parallel.
The workers only hash bytes: the tensor is viewed as a flat uint8 array (no copy for a contiguous
CPU tensor) on the submitting thread, so no torch code runs on a worker.

A digest is used only for the very tensor it was submitted for, and only if its storage, its
place in it (data pointer, offset, dtype, shape, strides) and its version counter (which every
in-place torch op bumps) are unchanged since; the storage is held meanwhile, so its memory
cannot be handed to another tensor. Otherwise the tensor is hashed again.
"""
from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Dict, Iterable, NamedTuple, Optional

import torch

from torch_tensorrt_rtx.dynamo._engine_cache_key import digest_parts, hash_parts, tensor_digest

HASH_THREADS = max(1, min(2, os.cpu_count() or 1))


def tensor_state(tensor: torch.Tensor) -> tuple:
    """What must be unchanged for work done on `tensor`'s bytes (a digest, a cast copy) to still describe it."""
    return (tensor.device, tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tensor.dtype,
            tuple(tensor.shape), tensor.stride(), tensor._version)


class _Pending(NamedTuple):
    tensor: torch.Tensor
    storage: Any  # held: the memory hashed stays this tensor's
    state: tuple
    digest: Future


class WeightDigests:
    """Digests of tensors, hashed on up to HASH_THREADS worker threads; see the module docstring."""

    def __init__(self, threads: int = HASH_THREADS) -> None:
        self._threads = threads
        self._pool: Optional[ThreadPoolExecutor] = None
        self._pending: Dict[int, _Pending] = {}

    def submit(self, tensors: Iterable[Any]) -> None:
        """Start hashing every tensor of `tensors` not submitted yet (anything else is skipped:
        a tensor the key cannot use raises there, with its reason)."""
        for tensor in tensors:
            if not isinstance(tensor, torch.Tensor) or id(tensor) in self._pending:
                continue
            try:
                state, storage = tensor_state(tensor), tensor.untyped_storage()
                prefix, data = digest_parts(tensor)
            except Exception:  # noqa: BLE001 - uncacheable or exotic: the key path decides
                continue
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="trtx-weight-digest")
            self._pending[id(tensor)] = _Pending(tensor, storage, state, self._pool.submit(hash_parts, prefix, data))

    def digest(self, tensor: torch.Tensor) -> str:
        """`tensor_digest(tensor)`: the one submitted earlier if still valid, else hashed now."""
        pending = self._pending.get(id(tensor))
        if pending is None or pending.tensor is not tensor or pending.state != tensor_state(tensor):
            self._pending.pop(id(tensor), None)
            self.submit([tensor])
            pending = self._pending.get(id(tensor))
            if pending is None:  # not hashable ahead: let tensor_digest raise its reason
                return tensor_digest(tensor)
        return pending.digest.result()

    def close(self) -> None:
        """Stop the workers (digests not started yet are dropped); the object stays usable."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        self._pending = {k: p for k, p in self._pending.items() if p.digest.done() and not p.digest.cancelled()}
