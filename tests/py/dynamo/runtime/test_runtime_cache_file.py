"""The cache file protocol with real files and real processes (no GPU)."""
from __future__ import annotations

import json
import logging
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from torch_tensorrt_rtx.runtime import LOCK_SUFFIX, RuntimeCacheFile, default_cache_path

sys.path.insert(0, str(Path(__file__).parent))
from cache_worker import blob_writer, make_blob  # noqa: E402

WORKER = str(Path(__file__).with_name("cache_worker.py"))
LOG = "torch_tensorrt_rtx.runtime.runtime_cache_file"


def _spawn(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, WORKER, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _load(store: RuntimeCacheFile):
    got = []
    ok = store.try_load(lambda b: got.append(blob_writer(b)) or got[-1] is not None)
    return ok, (got[-1] if got else None)


def _warnings(caplog) -> str:
    return "\n".join(r.getMessage() for r in caplog.records
                     if r.levelno == logging.WARNING and r.name == LOG)


def test_missing_file_starts_empty_quietly(tmp_path, caplog):
    store = RuntimeCacheFile(tmp_path / "c.bin")
    assert _load(store) == (False, None)
    assert _warnings(caplog) == ""
    assert not store.lock_path.exists()


def test_save_then_load_round_trip_and_lock_file_kept(tmp_path):
    store = RuntimeCacheFile(tmp_path / "deep" / "dir" / "c.bin")  # parents created
    assert store.try_save(lambda: make_blob("me", 1000))
    assert store.lock_path == store.path.with_name("c.bin" + LOCK_SUFFIX)
    assert store.lock_path.exists()
    assert _load(store) == (True, "me")
    leftovers = [p.name for p in store.path.parent.iterdir()]
    assert sorted(leftovers) == ["c.bin", "c.bin.lock"]  # no temp files left behind


def test_empty_or_failed_serialization_is_not_written(tmp_path, caplog):
    store = RuntimeCacheFile(tmp_path / "c.bin")
    store.try_save_bytes(make_blob("old", 10))
    assert not store.try_save(lambda: b"")
    assert not store.try_save(lambda: None)

    def boom():
        raise RuntimeError("serialize exploded")
    assert not store.try_save(boom)
    assert "serialize exploded" in _warnings(caplog)
    assert _load(store) == (True, "old")


@pytest.mark.parametrize("damage", ["corrupt", "truncated"])
def test_bad_file_warns_names_file_and_is_left_alone(tmp_path, caplog, damage):
    store = RuntimeCacheFile(tmp_path / "c.bin")
    good = make_blob("w", 5000)
    bad = good[:100] + b"X" + good[101:] if damage == "corrupt" else good[:len(good) // 2]
    store.path.write_bytes(bad)
    assert _load(store) == (False, None)
    assert str(store.path) in _warnings(caplog)
    assert store.path.read_bytes() == bad  # load never modifies the file
    assert store.try_save_bytes(good)  # and the next save replaces it
    assert _load(store) == (True, "w")


def test_symlinked_cache_path_is_refused_and_target_untouched(tmp_path, caplog):
    target = tmp_path / "elsewhere.bin"
    target.write_bytes(make_blob("target", 100))
    before = target.read_bytes()
    link = tmp_path / "c.bin"
    link.symlink_to(target)
    store = RuntimeCacheFile(link)
    assert _load(store) == (False, None)
    assert not store.try_save_bytes(make_blob("new", 100))
    assert "symlink" in _warnings(caplog) and str(link) in _warnings(caplog)
    assert link.is_symlink() and target.read_bytes() == before


def test_unwritable_directory_warns_and_carries_on(tmp_path, caplog):
    # Root ignores permission bits, so use a path whose "directory" is a regular file.
    blocker = tmp_path / "not_a_dir"
    blocker.write_bytes(b"x")
    store = RuntimeCacheFile(blocker / "c.bin")
    assert not store.try_save_bytes(make_blob("w", 10))
    assert str(store.path) in _warnings(caplog)
    assert blocker.read_bytes() == b"x"
    assert _load(store) == (False, None)


def test_read_only_cache_dir_for_non_root(tmp_path, caplog):
    if os.geteuid() == 0:
        pytest.skip("root bypasses directory permissions; covered by the not-a-directory test")
    store = RuntimeCacheFile(tmp_path / "c.bin")
    store.try_save_bytes(make_blob("old", 10))
    tmp_path.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        assert not store.try_save_bytes(make_blob("new", 10))
    finally:
        tmp_path.chmod(0o700)
    assert _load(store) == (True, "old")


def test_lock_held_longer_than_timeout(tmp_path, caplog):
    store = RuntimeCacheFile(tmp_path / "c.bin", lock_timeout=0.3)
    store.try_save_bytes(make_blob("old", 100))
    holder = _spawn("hold_lock", str(store.lock_path), "5")
    try:
        assert holder.stdout.readline().strip() == "locked"
        t0 = time.monotonic()
        assert not store.try_save_bytes(make_blob("new", 100))
        assert _load(store) == (False, None)
        assert time.monotonic() - t0 < 3.0  # both gave up after ~the timeout
    finally:
        holder.kill()
        holder.wait()
    assert "within 0.3 s" in _warnings(caplog)
    assert _load(store) == (True, "old")  # nothing lost once the lock is free


def test_sigkill_during_save_keeps_previous_file(tmp_path):
    store = RuntimeCacheFile(tmp_path / "c.bin")
    store.try_save_bytes(make_blob("previous", 20000))
    child = _spawn("stall_in_replace", str(store.path))
    try:
        assert child.stdout.readline().strip() == "in-replace", child.stderr.read()
        temps = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
        assert len(temps) == 1 and blob_writer(temps[0].read_bytes()) == "killed"
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert _load(store) == (True, "previous")
    assert store.lock_path.exists()
    # The lock died with the process: the next writer is not blocked.
    assert RuntimeCacheFile(store.path, lock_timeout=1).try_save_bytes(make_blob("next", 10))
    assert _load(store) == (True, "next")
    # ... and the killed writer's temp file was cleaned up under the lock.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.bin", "c.bin.lock"]


def test_eight_processes_fifty_cycles_each(tmp_path):
    path = tmp_path / "shared" / "c.bin"
    procs = [_spawn("cycles", str(path), "50", f"w{i}") for i in range(8)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert "Traceback" not in err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert all(r["bad"] == 0 for r in results), results  # every read was complete
    assert sum(r["written"] for r in results) == 400  # no save lost to a timeout
    seen = set().union(*(r["seen"] for r in results))
    assert len(seen) >= 2  # readers really saw other processes' writes
    assert blob_writer(path.read_bytes()) is not None
    assert path.with_name("c.bin.lock").exists()
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_default_path_is_per_user_with_private_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    p = default_cache_path()
    assert p.parent == tmp_path / "xdg" / "torch_tensorrt_rtx"
    assert stat.S_IMODE(p.parent.stat().st_mode) == 0o700
    # The missing XDG_CACHE_HOME itself is created private too, like save's parents.
    assert stat.S_IMODE(p.parent.parent.stat().st_mode) == 0o700
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/dir")  # invalid per the XDG spec
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_path(create_dir=False) == (
        tmp_path / "home" / ".cache" / "torch_tensorrt_rtx" / "runtime_cache.bin")
    assert not str(default_cache_path(create_dir=False)).startswith("/tmp/torch")


def test_os_error_while_checking_the_path_does_not_escape(tmp_path, caplog):
    # lstat/stat fail with ENAMETOOLONG (EACCES on an unsearchable directory is the same,
    # but root ignores permissions): the C++ runtime treats that as "missing" / "not a
    # symlink"; the try_ methods must not raise either.
    store = RuntimeCacheFile(tmp_path / ("x" * 300))
    assert _load(store) == (False, None)
    assert not store.try_save_bytes(make_blob("w", 10))
    assert str(store.path) in _warnings(caplog) or str(store.lock_path) in _warnings(caplog)


def test_every_missing_parent_directory_is_created_private(tmp_path):
    store = RuntimeCacheFile(tmp_path / "a" / "b" / "c.bin")
    assert store.try_save_bytes(make_blob("me", 10))
    for d in (tmp_path / "a", tmp_path / "a" / "b"):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d


def test_stale_temp_cleanup_spares_temp_files_of_other_caches(tmp_path):
    # "c.bin.gpu1" is another cache in the same directory, guarded by its own lock; its
    # in-flight temp file "c.bin.gpu1.<random>.tmp" is not a stale temp file of "c.bin".
    ours = tmp_path / "c.bin.abc123.tmp"
    theirs = tmp_path / "c.bin.gpu1.abc123.tmp"
    odd = tmp_path / "c.bin..tmp"  # not a name either runtime ever creates
    for p in (ours, theirs, odd):
        p.write_bytes(b"half written")
    assert RuntimeCacheFile(tmp_path / "c.bin").try_save_bytes(make_blob("me", 10))
    assert not ours.exists()
    assert theirs.exists() and odd.exists()
