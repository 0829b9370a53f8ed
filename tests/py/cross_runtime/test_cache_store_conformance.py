"""The runtime cache store protocol, one suite run against both runtimes' stores.

Every test is parametrised over the Python store and the C++ store (through ``_C``), so
the two cannot drift: same bytes, same verdicts, same refusals.
"""
from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from cache_store_adapters import IMPLS, WRITER, make_store
from cross_runtime_helpers import child_env
from torch_tensorrt_rtx.runtime import cache_container as container

HERE = str(Path(__file__).parent)
A, B, C, D = (hashlib.sha256(n).digest() for n in (b"A", b"B", b"C", b"D"))


@pytest.fixture(params=IMPLS)
def impl(request, native):
    return request.param


@pytest.fixture
def warned(caplog, capfd):
    """All warnings so far, from Python logging and from the C++ runtime's stderr."""
    def read() -> str:
        return "\n".join(r.getMessage() for r in caplog.records) + capfd.readouterr().err
    return read


def test_missing_file_loads_nothing_quietly_and_creates_no_lock(impl, tmp_path, warned):
    store = make_store(impl, tmp_path / "c.bin")
    assert store.load(A) is None
    assert not Path(store.lock_path).exists()
    assert "runtime cache" not in warned()


def test_round_trip_keeps_the_lock_file_and_leaves_no_temp_files(impl, tmp_path):
    store = make_store(impl, tmp_path / "deep" / "c.bin")
    assert store.save(A, b"kernels\0A", now=1234)
    assert store.load(A) == (b"kernels\0A", 1234)
    assert sorted(p.name for p in (tmp_path / "deep").iterdir()) == ["c.bin", "c.bin.lock"]
    assert stat.S_IMODE((tmp_path / "deep").stat().st_mode) == 0o700


def test_engines_sharing_one_path_keep_each_others_entries(impl, tmp_path):
    first, second = make_store(impl, tmp_path / "c.bin"), make_store(impl, tmp_path / "c.bin")
    assert first.save(A, b"a1", now=1)
    assert second.save(B, b"b1", now=2)
    assert first.save(A, b"a2", now=3)
    assert first.load(B) == (b"b1", 2) and second.load(A) == (b"a2", 3)
    assert [k for k, _, _ in first.index()] == [B, A]  # kept ones first, the saved one last


def test_both_runtimes_write_identical_bytes(native, tmp_path):
    files = {}
    for impl in IMPLS:
        store = make_store(impl, tmp_path / impl / "c.bin")
        for key, blob, now in ((A, b"x" * 10, 5), (B, b"yy", 6), (A, b"zzz", 7)):
            assert store.save(key, blob, now=now)
        files[impl] = (tmp_path / impl / "c.bin").read_bytes()
    assert files["python"] == files["cxx"]
    assert container.decode(files["python"])[0] == "container"


def test_a_file_written_by_one_runtime_loads_in_the_other(native, tmp_path):
    path = tmp_path / "c.bin"
    assert make_store("python", path).save(A, b"from python", now=9)
    assert make_store("cxx", path).save(B, b"from c++", now=10)
    assert make_store("python", path).load(B) == (b"from c++", 10)
    assert make_store("cxx", path).load(A) == (b"from python", 9)


def test_eviction_drops_least_recently_used_entries_only_for_the_cap(impl, tmp_path, warned):
    entry = container.INDEX_ENTRY_SIZE + 100
    cap = container.HEADER_SIZE + 3 * entry  # room for three 100-byte entries
    store = make_store(impl, tmp_path / "c.bin", max_bytes=cap)
    for key, now in ((A, 30), (B, 10), (C, 20)):
        assert store.save(key, bytes([now]) * 100, now=now)
    assert sorted(k for k, _, _ in store.index()) == sorted([A, B, C])  # nothing dropped yet
    assert store.save(D, b"d" * 100, now=40)  # needs room: B (oldest) goes
    assert {k for k, _, _ in store.index()} == {A, C, D}
    assert store.save(A, b"a" * 150, now=50)  # bigger: C (now the oldest other) goes
    assert {k for k, _, _ in store.index()} == {A, D}
    assert not store.save(B, b"b" * cap, now=60)  # alone above the cap: refused
    assert "exceeds the cache size cap" in warned()
    assert {k for k, _, _ in store.index()} == {A, D}


def test_empty_serialization_is_never_written(impl, tmp_path):
    store = make_store(impl, tmp_path / "c.bin")
    assert store.save(A, b"old")
    assert not store.save(A, b"")
    assert store.load(A)[0] == b"old"


@pytest.mark.parametrize("content, verdict", [
    (b"PK\x03\x04 this is a zip, e.g. a .pt2 given by mistake", "foreign"),
    (container.MAGIC + (container.VERSION + 1).to_bytes(4, "little") + bytes(4), "version"),
])
def test_a_file_that_is_not_our_container_is_never_overwritten(impl, tmp_path, warned, content, verdict):
    assert container.decode(content)[0] == verdict
    path = tmp_path / "c.bin"
    path.write_bytes(content)
    store = make_store(impl, path)
    assert store.load(A) is None
    assert not store.save(A, b"kernels")
    assert path.read_bytes() == content
    assert "not saving" in warned()


def test_a_corrupt_container_is_not_loaded_and_is_replaced_by_the_next_save(impl, tmp_path, warned):
    path = tmp_path / "c.bin"
    path.write_bytes(container.encode([(A, 1, b"aaaa")])[:-1])  # truncated entry
    store = make_store(impl, path)
    assert store.load(A) is None
    assert "runs past the end" in warned()
    assert store.save(B, b"bb", now=2)
    assert container.decode(path.read_bytes())[0] == "container"
    assert store.load(B) == (b"bb", 2)


def _returns_within(seconds: float, call) -> bool:
    done = threading.Event()
    thread = threading.Thread(target=lambda: (call(), done.set()), daemon=True)
    thread.start()
    return done.wait(seconds)


def test_a_fifo_at_the_path_never_blocks(impl, tmp_path, warned):
    path = tmp_path / "c.bin"
    os.mkfifo(path)
    store = make_store(impl, path, timeout=1.0)
    assert _returns_within(10, lambda: store.load(A)), "load blocked on a FIFO"
    assert _returns_within(10, lambda: store.save(A, b"x")), "save blocked on a FIFO"
    assert stat.S_ISFIFO(os.lstat(path).st_mode)  # left alone
    assert "not a regular file" in warned()


@pytest.mark.parametrize("planted", ["fifo", "directory"])
def test_something_else_at_the_lock_path_never_blocks(impl, tmp_path, warned, planted):
    path = tmp_path / "c.bin"
    store = make_store(impl, path, timeout=1.0)
    store.save(A, b"kernels")
    lock_path = tmp_path / "c.bin.lock"
    lock_path.unlink()
    os.mkfifo(lock_path) if planted == "fifo" else lock_path.mkdir()
    # The loads opened the lock file again read-only, and that open blocked on a FIFO forever.
    assert _returns_within(10, lambda: store.load(A)), "load blocked on a FIFO lock file"
    assert _returns_within(10, lambda: store.save(A, b"other kernels")), "save blocked on a FIFO lock file"
    assert not stat.S_ISREG(os.lstat(lock_path).st_mode)  # left alone
    assert "not a regular file" in warned()
    assert path.read_bytes().count(b"kernels") == 1 and b"other" not in path.read_bytes()


@pytest.mark.skipif(os.geteuid() != 0, reason="creating a device node needs root")
def test_a_device_at_the_path_is_refused_without_reading_it(impl, tmp_path, warned):
    path = tmp_path / "c.bin"
    os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 5))  # /dev/zero: endless zeros
    store = make_store(impl, path)
    assert store.load(A) is None and not store.save(A, b"x")
    assert "not a regular file" in warned()


def test_a_file_above_the_cap_is_not_loaded(impl, tmp_path, warned):
    path = tmp_path / "c.bin"
    path.write_bytes(container.encode([(A, 1, b"k" * 5000)]))
    assert make_store(impl, path, max_bytes=4096).load(A) is None
    assert "more than the cache size cap" in warned()
    assert make_store(impl, path).load(A) == (b"k" * 5000, 1)


def test_a_directory_other_users_can_write_is_refused(impl, tmp_path, warned):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "c.bin").write_bytes(container.encode([(A, 1, b"planted")]))
    os.chmod(shared, 0o777)
    store = make_store(impl, shared / "c.bin")
    assert store.load(A) is None
    assert not store.save(B, b"mine")
    assert "writable by every user" in warned()
    assert container.decode((shared / "c.bin").read_bytes())[1][0].key == A


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_a_file_owned_by_another_user_is_refused(impl, tmp_path, warned):
    path = tmp_path / "c.bin"
    path.write_bytes(container.encode([(A, 1, b"planted")]))
    os.chown(path, 12345, 12345)
    store = make_store(impl, path)
    assert store.load(A) is None and not store.save(A, b"mine")
    assert "owned by user id 12345" in warned()


def test_a_symlink_at_the_cache_path_is_refused(impl, tmp_path, warned):
    target = tmp_path / "target"
    target.write_bytes(b"keep me")
    (tmp_path / "c.bin").symlink_to(target)
    store = make_store(impl, tmp_path / "c.bin")
    assert store.load(A) is None and not store.save(A, b"x")
    assert target.read_bytes() == b"keep me"
    assert "symlink" in warned()


def test_an_embedded_nul_in_the_path_is_a_clear_error(impl, tmp_path):
    with pytest.raises(ValueError, match="NUL"):
        make_store(impl, str(tmp_path / "c.bin") + "\0tail")
    assert list(tmp_path.iterdir()) == []


def test_stale_temp_cleanup_removes_only_names_this_project_creates(impl, tmp_path):
    ours = tmp_path / "c.bin.trtx-tmp-abc123"
    spared = [tmp_path / n for n in ("c.bin.backup.tmp", "c.bin.abc123.tmp",
                                     "c.bin.gpu1.trtx-tmp-abc123", "c.bin.trtx-tmp-x")]
    for p in [ours, *spared]:
        p.write_bytes(b"data")
    assert make_store(impl, tmp_path / "c.bin").save(A, b"x")
    assert not ours.exists()
    assert all(p.exists() for p in spared)


def test_lock_timeout_leaves_the_file_untouched(impl, tmp_path, warned):
    import filelock

    store = make_store(impl, tmp_path / "c.bin", timeout=0.3)
    assert store.save(A, b"old")
    before = (tmp_path / "c.bin").stat()
    holder = subprocess.Popen([sys.executable, "-c",
                               "import filelock,sys,time\n"
                               "with filelock.FileLock(sys.argv[1]):\n"
                               "    print('locked', flush=True); time.sleep(30)",
                               str(store.lock_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert not store.save(A, b"new")
        assert store.load(A) is None  # py-filelock's lock is exclusive: readers wait too
    finally:
        holder.kill()
        holder.wait()
    after = (tmp_path / "c.bin").stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert "could not lock" in warned()
    assert store.load(A)[0] == b"old"


READ_ONLY_LOAD = r"""
import fcntl, os, sys
sys.path.insert(0, sys.argv[1])
from cache_store_adapters import make_store
store = make_store(sys.argv[2], sys.argv[3])  # imports everything while still root
os.setgid(65534); os.setuid(65534)  # drop root: nobody cannot write the directory or lock
found = store.load(bytes.fromhex(sys.argv[4]))
print("loaded" if found and found[0] == b"warm kernels" else f"not loaded: {found!r}")
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping to another user needs root")
@pytest.mark.parametrize("lock_file", ["present", "absent"])
def test_a_read_only_warm_cache_loads(impl, lock_file):
    directory = Path(tempfile.mkdtemp(prefix="ro_cache_"))  # reachable by another user
    try:
        os.chmod(directory, 0o755)
        assert make_store(impl, directory / "c.bin").save(A, b"warm kernels")
        if lock_file == "absent":
            os.unlink(directory / "c.bin.lock")
        os.chmod(directory / "c.bin", 0o644)
        result = subprocess.run([sys.executable, "-c", READ_ONLY_LOAD, HERE, impl,
                                 str(directory / "c.bin"), A.hex()], capture_output=True,
                                text=True, timeout=60, env=child_env())
        assert result.stdout.strip() == "loaded", result.stderr
        assert (directory / "c.bin.lock").exists() == (lock_file == "present")
    finally:
        for p in directory.iterdir():
            p.unlink()
        directory.rmdir()


def test_both_runtimes_resolve_the_same_default_path_without_home(native, tmp_path):
    script = ("from torch_tensorrt_rtx import _C\n"
              "from torch_tensorrt_rtx.runtime import default_cache_path\n"
              "print(default_cache_path(create_dir=False)); print(_C.default_cache_path())")
    for env_change in ({"HOME": None, "XDG_CACHE_HOME": None},
                       {"HOME": str(tmp_path / "h"), "XDG_CACHE_HOME": None},
                       {"XDG_CACHE_HOME": str(tmp_path / "x")}):
        env = child_env()
        for name, value in env_change.items():
            env.pop(name, None)
            if value is not None:
                env[name] = value
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                             env=env, timeout=60)
        python_path, cxx_path = out.stdout.split()
        assert python_path == cxx_path, (env_change, out.stderr)
        assert python_path.endswith("/torch_tensorrt_rtx/runtime_cache.bin")
        assert not python_path.startswith("/.cache")


def test_eight_processes_of_both_runtimes_keep_every_engines_kernels(native, tmp_path):
    path = tmp_path / "c.bin"
    rounds = 5
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, HERE, IMPLS[i % 2], str(path),
                               f"engine{i}", str(rounds)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=child_env())
             for i in range(8)]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0 and out.strip() == "0", err
    for impl in IMPLS:
        store = make_store(impl, path)
        for i in range(8):
            key = hashlib.sha256(f"engine{i}".encode()).digest()
            kernels = store.load(key)[0].decode().split("\n")
            assert kernels == [f"engine{i}/kernel{r}" for r in range(rounds)], (impl, i)
    assert len(make_store("python", path).index()) == 8


def test_decoders_of_both_runtimes_agree_on_mutated_containers(native):
    import random

    from torch_tensorrt_rtx import _C

    rng = random.Random(1234)
    seeds = [container.encode([(A, 1, b"a" * 7), (B, 2, b"bb")]), container.encode([]), b"",
             container.encode([(C, 2**63, bytes(range(40)))]),
             container.encode([(hashlib.sha256(bytes([i])).digest(), i, bytes([i]) * (i + 1)) for i in range(8)]),
             container.encode_v1([(A, 1, b"a" * 7), (B, 2, b"bb")]), container.encode_v1([(C, 5, b"c")])]
    disagreements, verdicts, partial = [], set(), 0
    for i in range(8000):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            op = rng.randrange(4)
            if op == 0 and data:
                data[rng.randrange(len(data))] = rng.randrange(256)
            elif op == 1 and data:
                del data[rng.randrange(len(data)):]
            elif op == 2:
                data[rng.randrange(len(data) + 1):0] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 60)))
            elif len(data) >= 16:
                data[12:16] = rng.randrange(6).to_bytes(4, "little")  # plausible counts
        py_verdict, py_entries = container.decode(bytes(data))
        cxx_verdict, cxx_entries = _C.decode_cache_container(bytes(data))
        verdicts.add(py_verdict)
        partial += py_verdict == "corrupt" and bool(py_entries)
        py_view = [(e.key, e.last_use, e.size, e.offset, e.checksum) for e in py_entries]
        if (py_verdict, py_view) != (cxx_verdict, [tuple(e) for e in cxx_entries]):
            disagreements.append((bytes(data).hex(), py_verdict, cxx_verdict))
    assert not disagreements, disagreements[:3]
    assert {"container", "foreign", "corrupt", "version"} <= verdicts  # the mutations reached every path
    assert partial > 100  # damaged files whose intact entries both decoders kept


def test_engine_keys_agree(native):
    from torch_tensorrt_rtx import _C
    from torch_tensorrt_rtx.runtime import engine_key

    for blob in (b"", b"abc", bytes(range(256)) * 1000):
        assert _C.engine_key(blob) == engine_key(blob) == hashlib.sha256(blob).digest()


@pytest.mark.parametrize("value, expected", [
    ("4096", 4096), ("0", 1 << 30), ("-5", 1 << 30), (" 12", 1 << 30), ("1_000", 1 << 30),
    ("12MB", 1 << 30), ("99999999999999999999999", 1 << 30), ("", 1 << 30),
])
def test_both_runtimes_read_the_size_cap_setting_alike(impl, tmp_path, monkeypatch, value, expected):
    monkeypatch.setenv("TORCH_TENSORRT_RTX_CACHE_MAX_BYTES", value)
    assert make_store(impl, tmp_path / "c.bin").store.max_bytes == expected


@pytest.mark.parametrize("timeout", [-1.0, -0.001, float("nan")])
def test_a_negative_lock_timeout_is_refused_by_both(impl, tmp_path, timeout):
    # Python's save used to wait forever on -1 while its load and the C++ store gave up at once.
    with pytest.raises(ValueError, match="lock_timeout must be a number of seconds >= 0"):
        make_store(impl, tmp_path / "c.bin", timeout=timeout)


def test_a_zero_lock_timeout_means_one_try(impl, tmp_path):
    store = make_store(impl, tmp_path / "c.bin", timeout=0.0)
    assert store.save(A, b"kernels") and store.load(A)[0] == b"kernels"
