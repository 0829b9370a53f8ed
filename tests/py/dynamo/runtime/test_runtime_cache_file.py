"""The Python runtime cache store with real files and real processes (no GPU).

What both runtimes share is tested once for both in tests/py/cross_runtime/
test_cache_store_conformance.py; this file holds the Python side's own cases: killed
writers, many processes, the platform branches, the default location, the size setting.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from torch_tensorrt_rtx.runtime import RuntimeCacheFile, default_cache_path, engine_key
from torch_tensorrt_rtx.runtime import cache_file_io as io
from torch_tensorrt_rtx.runtime.runtime_cache_file import max_bytes_from_env

sys.path.insert(0, str(Path(__file__).parent))
from cache_worker import blob_writer, make_blob  # noqa: E402

WORKER = str(Path(__file__).with_name("cache_worker.py"))
KEY = engine_key(b"engine")


def _spawn(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, WORKER, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _writer(store: RuntimeCacheFile, key: bytes = KEY):
    found = store.try_load_entry(key)
    return None if found is None else blob_writer(found.data)


def test_sigkill_during_save_keeps_previous_file(tmp_path):
    store = RuntimeCacheFile(tmp_path / "c.bin")
    assert store.try_save_entry(engine_key(b"killed"), make_blob("previous", 20000))
    child = _spawn("stall_in_replace", str(store.path))
    try:
        assert child.stdout.readline().strip() == "in-replace", child.stderr.read()
        temps = [p for p in tmp_path.iterdir() if io.is_own_temp_name("c.bin", p.name)]
        assert len(temps) == 1
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert _writer(store, engine_key(b"killed")) == "previous"
    # The lock died with the process: the next writer is not blocked, and it cleans up
    # the killed writer's temp file under the lock.
    assert RuntimeCacheFile(store.path, lock_timeout=1).try_save_entry(KEY, make_blob("next", 10))
    assert _writer(store) == "next"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.bin", "c.bin.lock"]


def test_eight_processes_fifty_cycles_each_keep_every_entry(tmp_path):
    path = tmp_path / "shared" / "c.bin"
    procs = [_spawn("cycles", str(path), "50", f"w{i}") for i in range(8)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
        assert "Traceback" not in err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert all(r["bad"] == 0 for r in results), results  # every read was complete
    assert sum(r["written"] for r in results) == 400  # no save lost to a timeout
    assert set().union(*(r["seen"] for r in results)) == {f"w{i}" for i in range(8)}
    store = RuntimeCacheFile(path)
    assert sorted(blob_writer(store.try_load_entry(e.key).data).split(":")[0]
                  for e in store.try_read_index()) == [f"w{i}" for i in range(8)]
    assert [p.name for p in path.parent.iterdir() if "tmp" in p.name] == []


def test_default_path_is_per_user_with_private_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    p = default_cache_path()
    assert p.parent == tmp_path / "xdg" / "torch_tensorrt_rtx"
    assert stat.S_IMODE(p.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(p.parent.parent.stat().st_mode) == 0o700
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/dir")  # invalid per the XDG spec
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_path(create_dir=False) == (
        tmp_path / "home" / ".cache" / "torch_tensorrt_rtx" / "runtime_cache.bin")


def test_default_path_without_home_uses_the_password_database(monkeypatch):
    import pwd

    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv("HOME", raising=False)
    home = pwd.getpwuid(os.geteuid()).pw_dir
    assert str(default_cache_path(create_dir=False)) == f"{home}/.cache/torch_tensorrt_rtx/runtime_cache.bin"


@pytest.mark.parametrize("environ, expected", [
    ({"LOCALAPPDATA": "C:\\Users\\me\\AppData\\Local"},
     "C:\\Users\\me\\AppData\\Local\\torch_tensorrt_rtx\\runtime_cache.bin"),
    ({"USERPROFILE": "C:\\Users\\me"},
     "C:\\Users\\me\\AppData\\Local\\torch_tensorrt_rtx\\runtime_cache.bin"),
])
def test_windows_default_path_is_under_localappdata(environ, expected):
    # The platform is an argument, so the Windows branch runs here too.
    got = default_cache_path(create_dir=False, platform=io.WINDOWS, environ=environ)
    assert str(got) == expected


def test_windows_skips_directory_fsync_and_ownership_checks(tmp_path):
    io.fsync_directory(tmp_path / "does-not-exist", platform=io.WINDOWS)  # nothing to open
    with pytest.raises(FileNotFoundError):
        io.fsync_directory(tmp_path / "does-not-exist", platform=io.POSIX)
    info = os.stat(tmp_path)
    planted = os.stat_result((info.st_mode | 0o777,) + tuple(info)[1:])
    assert io.untrusted_reason(planted, "dir", platform=io.WINDOWS) == ""
    assert "writable by every user" in io.untrusted_reason(planted, "dir", platform=io.POSIX)


def test_replace_is_os_replace_which_overwrites_an_existing_file(tmp_path):
    (tmp_path / "a").write_bytes(b"new")
    (tmp_path / "b").write_bytes(b"old")
    io.replace_file(tmp_path / "a", tmp_path / "b")  # os.rename would fail here on Windows
    assert (tmp_path / "b").read_bytes() == b"new" and not (tmp_path / "a").exists()


def test_os_error_while_checking_the_path_does_not_escape(tmp_path, caplog):
    store = RuntimeCacheFile(tmp_path / ("x" * 300))  # ENAMETOOLONG on every call
    assert store.try_load_entry(KEY) is None
    assert not store.try_save_entry(KEY, make_blob("w", 10))
    assert any(r.levelno == logging.WARNING for r in caplog.records)


def test_unwritable_directory_warns_and_carries_on(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_bytes(b"not a directory")
    store = RuntimeCacheFile(blocker / "c.bin")
    assert not store.try_save_entry(KEY, b"x")
    assert "cannot write" in caplog.text


def test_size_cap_comes_from_the_environment(monkeypatch, caplog):
    monkeypatch.setenv("TORCH_TENSORRT_RTX_CACHE_MAX_BYTES", "4096")
    assert max_bytes_from_env() == 4096
    monkeypatch.setenv("TORCH_TENSORRT_RTX_CACHE_MAX_BYTES", "lots")
    assert max_bytes_from_env() == 1 << 30
    assert "ignoring TORCH_TENSORRT_RTX_CACHE_MAX_BYTES='lots'" in caplog.text


def test_a_refusal_reaches_warnings_once_per_path_and_reason(tmp_path):
    import hashlib
    import warnings

    from torch_tensorrt_rtx.runtime import RuntimeCacheWarning

    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # other users can write here: the cache is refused
    key = hashlib.sha256(b"engine").digest()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        store = RuntimeCacheFile(shared / "c.bin")
        assert not store.try_save_entry(key, b"kernels") and not store.try_save_entry(key, b"kernels")
        other = RuntimeCacheFile(shared / "d.bin")
        assert not other.try_save_entry(key, b"kernels")
        assert RuntimeCacheFile(tmp_path / "e.bin", max_bytes=64).try_save_entry(key, b"x" * 100) is False
    texts = [str(w.message) for w in caught if issubclass(w.category, RuntimeCacheWarning)]
    assert len(texts) == 3, texts  # c.bin once (twice refused), d.bin once, e.bin's over-cap entry once
    assert "c.bin" in texts[0] and "writable by every user" in texts[0] and "once per cache path" in texts[0], texts
    assert "d.bin" in texts[1] and "exceeds the cache size cap" in texts[2], texts
