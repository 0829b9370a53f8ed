"""py-filelock is held to the protocol the C++ runtime follows on the same lock file: it never
deletes the lock file (Windows releases otherwise do) and never swaps the kernel lock for an
existence ("soft") lock where flock is missing. Both options are passed only where the
installed filelock has them."""
from __future__ import annotations

import errno
import fcntl
import logging

import filelock
import pytest

from torch_tensorrt_rtx.runtime import cache_file_io as io
from torch_tensorrt_rtx.runtime import runtime_cache_file as store_module
from torch_tensorrt_rtx.runtime.runtime_cache_file import RuntimeCacheFile, engine_key, filelock_options

KEY = engine_key(b"engine")
BOTH = {"preserve_lock_file": True, "fallback_to_soft": False}


def test_options_are_passed_only_where_the_release_has_them():
    class Before330:  # filelock 3.29.x: neither option
        def __init__(self, lock_file, timeout=-1, mode=0o644, thread_local=True, **kwargs):
            pass

    class Since330:
        def __init__(self, lock_file, timeout=-1, fallback_to_soft=True, preserve_lock_file=False, **kwargs):
            pass

    assert filelock_options(Before330) == {}  # **kwargs is no promise that the option exists
    assert filelock_options(Since330) == BOTH


def test_the_installed_filelock_gets_both():
    if "preserve_lock_file" not in filelock_options(filelock.FileLock):
        pytest.skip(f"filelock {filelock.__version__} predates preserve_lock_file (3.30.0)")
    assert store_module._FILELOCK_OPTIONS == BOTH
    lock = store_module._exclusive_lock("/tmp/unused.lock", 1.0)
    assert (lock.preserve_lock_file, lock.fallback_to_soft) == (True, False)


class _Recording:
    """Stands in for filelock.FileLock and records how the store builds its locks."""

    def __init__(self, made: list) -> None:
        self.made = made
        self.real = filelock.FileLock

    def __call__(self, path, **kwargs):
        self.made.append((path, kwargs))
        return self.real(path, **kwargs)


@pytest.mark.parametrize("platform", [io.POSIX, io.WINDOWS])
def test_save_and_the_windows_load_lock_use_the_options(tmp_path, monkeypatch, platform):
    made: list = []
    monkeypatch.setattr(filelock, "FileLock", _Recording(made))
    store = RuntimeCacheFile(tmp_path / "cache.bin", lock_timeout=1.0)
    assert store.try_save_entry(KEY, b"kernels")
    monkeypatch.setattr(io, "current_platform", lambda: platform)
    with store_module._SharedLock(store.lock_path, 1.0):
        pass
    expected_locks = 2 if platform == io.WINDOWS else 1  # Unix loads take flock(LOCK_SH) directly
    assert [path for path, _ in made] == [str(store.lock_path)] * expected_locks
    for _, kwargs in made:
        assert {k: kwargs.get(k) for k in store_module._FILELOCK_OPTIONS} == store_module._FILELOCK_OPTIONS
    assert store.lock_path.exists()


def _flock_is_not_implemented(monkeypatch):
    def flock(fd, operation):
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(fcntl, "flock", flock)


def test_a_file_system_without_flock_is_refused_not_soft_locked(tmp_path, monkeypatch, caplog):
    if "fallback_to_soft" not in store_module._FILELOCK_OPTIONS:
        pytest.skip(f"filelock {filelock.__version__} has no soft fallback to refuse")
    store = RuntimeCacheFile(tmp_path / "cache.bin", lock_timeout=1.0)
    _flock_is_not_implemented(monkeypatch)
    with caplog.at_level(logging.WARNING):
        assert not store.try_save_entry(KEY, b"kernels")
    assert str(store.path) in caplog.text and "left untouched" in caplog.text
    assert not store.path.exists()
    assert store.lock_path.exists()  # nobody deleted it


def test_without_the_option_filelock_would_soft_lock_and_delete_the_lock_file(tmp_path, monkeypatch):
    # What the option prevents: the save "succeeds" under an existence lock the C++ runtime's
    # flock cannot see, and the release deletes the lock file.
    if "fallback_to_soft" not in store_module._FILELOCK_OPTIONS:
        pytest.skip(f"filelock {filelock.__version__} has no soft fallback")
    monkeypatch.setattr(store_module, "_FILELOCK_OPTIONS", {})
    store = RuntimeCacheFile(tmp_path / "cache.bin", lock_timeout=1.0)
    _flock_is_not_implemented(monkeypatch)
    with pytest.warns(UserWarning, match="(?i)soft"):
        assert store.try_save_entry(KEY, b"kernels")
    assert not store.lock_path.exists()
