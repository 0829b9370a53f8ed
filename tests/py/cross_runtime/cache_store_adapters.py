"""One interface over both runtime cache stores, so one suite tests both.

``make_store(impl, path, **kw)`` gives an object with ``save(key, blob, now=None) -> bool``,
``load(key) -> (bytes, last_use) | None``, ``index() -> [(key, last_use, size)] | None``.
``impl`` is ``"python"`` (torch_tensorrt_rtx.runtime.RuntimeCacheFile) or ``"cxx"``
(the C++ store through torch_tensorrt_rtx._C). Warnings: Python's go to logging, C++'s to
stderr; tests read both (``caplog`` + ``capfd``). Both also raise a RuntimeCacheWarning once
per path and reason.
"""
from __future__ import annotations

from typing import Optional

from torch_tensorrt_rtx.runtime import RuntimeCacheFile

IMPLS = ("python", "cxx")


class PythonStore:
    def __init__(self, path, timeout: float = 10.0, max_bytes: Optional[int] = None) -> None:
        self.store = RuntimeCacheFile(path, lock_timeout=timeout, max_bytes=max_bytes)
        self.path, self.lock_path = self.store.path, self.store.lock_path

    def save(self, key: bytes, blob: bytes, now: Optional[int] = None) -> bool:
        return self.store.try_save_entry(key, blob, now=now)

    def load(self, key: bytes):
        entry = self.store.try_load_entry(key)
        return None if entry is None else (entry.data, entry.last_use)

    def index(self):
        entries = self.store.try_read_index()
        return None if entries is None else [(e.key, e.last_use, e.size) for e in entries]


class CxxStore:
    def __init__(self, path, timeout: float = 10.0, max_bytes: Optional[int] = None) -> None:
        from torch_tensorrt_rtx import _C

        self.store = _C.RuntimeCacheFile(str(path), timeout=timeout, max_bytes=max_bytes)
        self.path, self.lock_path = self.store.path, self.store.lock_path

    def save(self, key: bytes, blob: bytes, now: Optional[int] = None) -> bool:
        return self.store.try_save_entry(key, bytes(blob), now)

    def load(self, key: bytes):
        found = self.store.try_load_entry(key)
        return None if found is None else (found[0], found[1])

    def index(self):
        entries = self.store.try_read_index()
        return None if entries is None else [(k, t, s) for k, t, s, _, _ in entries]


def make_store(impl: str, path, **kwargs):
    return {"python": PythonStore, "cxx": CxxStore}[impl](path, **kwargs)


# A child process that saves `rounds` growing entries for its own engine, with either store.
WRITER = r"""
import sys
sys.path.insert(0, sys.argv[1])
from cache_store_adapters import make_store
impl, path, name, rounds = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
import hashlib
key = hashlib.sha256(name.encode()).digest()
store = make_store(impl, path)
kernels = []
failed = 0
for r in range(rounds):
    kernels.append(f"{name}/kernel{r}")
    failed += not store.save(key, "\n".join(kernels).encode())
print(failed)
"""
