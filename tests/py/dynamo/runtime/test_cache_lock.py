"""The Python store's lock (runtime/cache_lock.py) behaves as the C++ FileLock on the same file:
it interoperates with py-filelock holders, never deletes the lock file, never swaps the kernel
lock for an existence ("soft") lock where flock is missing, and retakes a lock whose file a
peer deleted."""
from __future__ import annotations

import errno
import fcntl
import logging
import os

import filelock
import pytest

from torch_tensorrt_rtx.runtime import cache_lock
from torch_tensorrt_rtx.runtime.runtime_cache_file import RuntimeCacheFile, engine_key

KEY = engine_key(b"engine")


def test_a_py_filelock_holder_keeps_loads_and_saves_out(tmp_path, caplog):
    store = RuntimeCacheFile(tmp_path / "cache.bin", lock_timeout=0.2)
    assert store.try_save_entry(KEY, b"kernels")
    with filelock.FileLock(str(store.lock_path)):
        with caplog.at_level(logging.WARNING):
            assert store.try_load_entry(KEY) is None
            assert not store.try_save_entry(KEY, b"other")
    assert caplog.text.count("could not lock") == 2
    assert store.try_load_entry(KEY).data == b"kernels"


def test_the_lock_file_outlives_every_operation(tmp_path):
    store = RuntimeCacheFile(tmp_path / "cache.bin")
    assert store.try_save_entry(KEY, b"kernels")
    assert store.try_load_entry(KEY) is not None
    assert store.lock_path.is_file()


def test_a_file_system_without_flock_is_refused_not_soft_locked(tmp_path, monkeypatch, caplog):
    store = RuntimeCacheFile(tmp_path / "cache.bin", lock_timeout=1.0)

    def flock(fd, operation):
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(fcntl, "flock", flock)
    with caplog.at_level(logging.WARNING):
        assert not store.try_save_entry(KEY, b"kernels")
    assert str(store.path) in caplog.text and "left untouched" in caplog.text
    assert not store.path.exists()
    assert store.lock_path.exists()  # nobody deleted it


def test_a_lock_whose_file_a_peer_deleted_is_taken_again(tmp_path, monkeypatch):
    path = tmp_path / "cache.bin.lock"
    lock = cache_lock.CacheFileLock.open(path, shared=False)
    real_try_lock, calls = cache_lock._try_lock, []

    def try_lock_then_delete(fd, shared):
        calls.append(fd)
        taken = real_try_lock(fd, shared)
        if len(calls) == 1:
            os.unlink(path)  # a peer that deletes the lock file on release, just now
        return taken

    monkeypatch.setattr(cache_lock, "_try_lock", try_lock_then_delete)
    with lock:
        lock.acquire(1.0)
        assert len(calls) == 2 and path.is_file()
        assert os.fstat(lock._fd).st_ino == os.stat(path).st_ino


@pytest.mark.parametrize("planted", ["fifo", "directory"])
def test_something_else_at_the_lock_path_is_refused(tmp_path, planted):
    path = tmp_path / "cache.bin.lock"
    os.mkfifo(path) if planted == "fifo" else path.mkdir()
    with pytest.raises(cache_lock.CacheFileRefused, match="not a regular file"):
        cache_lock.CacheFileLock.open(path, shared=True)
