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


# -- Damaged containers: every intact entry survives, nothing damaged reaches the runtime --------
KEYS64 = [hashlib.sha256(b"engine%d" % i).digest() for i in range(64)]


def _sixty_four_entries(path) -> bytes:
    data = container.encode([(k, i, bytes([i]) * (100 + i)) for i, k in enumerate(KEYS64)])
    path.write_bytes(data)
    return data


def _damage(data: bytes, how: str) -> bytes:
    if how == "truncated":
        return data[:-5]  # into the last entry's bytes
    record = container.HEADER_SIZE + 10 * container.INDEX_ENTRY_SIZE  # entry 10's index record
    if how == "size bit":
        return data[:record + 48] + bytes([data[record + 48] ^ 0x04]) + data[record + 49:]
    if how == "data byte":
        offset = container.decode(data)[1][20].offset + 7
        return data[:offset] + bytes([data[offset] ^ 0x01]) + data[offset + 1:]
    if how == "count":
        return data[:12] + (7).to_bytes(4, "little") + data[16:]
    raise AssertionError(how)


@pytest.mark.parametrize("how, lost", [("truncated", {63}), ("size bit", {10}), ("data byte", {20}), ("count", set())])
def test_one_damaged_byte_costs_at_most_its_own_entry(impl, tmp_path, warned, how, lost):
    path = tmp_path / "c.bin"
    path.write_bytes(_damage(_sixty_four_entries(tmp_path / "intact.bin"), how))
    store = make_store(impl, path)
    for i, key in enumerate(KEYS64):  # loads: intact entries as written, the damaged one never
        assert store.load(key) == (None if i in lost else (bytes([i]) * (100 + i), i)), (how, i)
    assert "damaged" in warned()
    assert store.save(A, b"new kernels", now=99)
    verdict, entries = container.decode(path.read_bytes())
    assert verdict == "container"
    assert {e.key for e in entries} == {k for i, k in enumerate(KEYS64) if i not in lost} | {A}


def test_a_version_1_file_is_read_and_migrated_by_the_next_save(impl, tmp_path):
    path = tmp_path / "c.bin"
    path.write_bytes(container.encode_v1([(A, 1, b"old a"), (B, 2, b"old b")]))
    store = make_store(impl, path)
    assert store.load(B) == (b"old b", 2)
    assert store.save(C, b"c", now=3)
    data = path.read_bytes()
    assert int.from_bytes(data[8:12], "little") == container.VERSION == 2
    assert container.decode(data) == ("container", container.decode(data)[1])
    assert [(e.key, e.last_use) for e in container.decode(data)[1]] == [(A, 1), (B, 2), (C, 3)]
    assert store.load(A) == (b"old a", 1)


@pytest.mark.parametrize("index, message", [
    ([(A, 1, 0, 0)], "size 0"),
    ([(A, 1, 5, 0)] * (container.MAX_ENTRIES + 1), "more than the limit"),
])
def test_both_encoders_refuse_a_bad_index_alike(native, index, message):
    with pytest.raises(ValueError, match=message) as python_error:
        container.encode_prefix(index)
    with pytest.raises(ValueError, match=message) as cxx_error:
        native.encode_cache_prefix(index)
    assert str(python_error.value) == str(cxx_error.value)
    with pytest.raises(ValueError, match="key of 31 bytes"):
        container.encode_prefix([(A[:31], 1, 5, 0)])
    with pytest.raises(ValueError, match="32 bytes"):
        native.encode_cache_prefix([(A[:31], 1, 5, 0)])


def test_both_encoders_write_the_same_index(native):
    index = [(A, 1, 5, 123), (B, 2**64 - 1, 2**40, 2**32 - 1)]
    assert native.encode_cache_prefix(index) == container.encode_prefix(index)


# -- The eight differences the two stores used to have -------------------------------------------
@pytest.mark.parametrize("value, expected", [
    ("18446744073709551615", 2**64 - 1), ("18446744073709551616", 1 << 30),
    ("18446744073709551610", 2**64 - 6), ("99999999999999999999", 1 << 30), ("0018446744073709551615", 2**64 - 1),
])
def test_the_size_cap_accepts_the_same_range_up_to_2_pow_64_with_the_same_text(impl, tmp_path, monkeypatch, warned,
                                                                               value, expected):
    monkeypatch.setenv("TORCH_TENSORRT_RTX_CACHE_MAX_BYTES", value)
    assert make_store(impl, tmp_path / "c.bin").store.max_bytes == expected
    text = warned()
    if expected == 1 << 30:
        assert (f"runtime cache: ignoring TORCH_TENSORRT_RTX_CACHE_MAX_BYTES='{value}' (expected a positive "
                f"number of bytes); using {1 << 30}") in text
    else:
        assert "ignoring" not in text


def test_path_and_size_cap_are_fixed_when_the_store_is_made(impl, tmp_path, monkeypatch):
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    monkeypatch.chdir(tmp_path / "first")
    monkeypatch.setenv("TORCH_TENSORRT_RTX_CACHE_MAX_BYTES", "100000")
    store = make_store(impl, "c.bin")
    monkeypatch.chdir(tmp_path / "second")
    monkeypatch.setenv("TORCH_TENSORRT_RTX_CACHE_MAX_BYTES", "10")
    assert store.save(A, b"kernels" * 100)  # the cap is still 100000
    assert (tmp_path / "first" / "c.bin").exists() and not (tmp_path / "second" / "c.bin").exists()
    assert store.load(A)[0] == b"kernels" * 100


HOLD_LOCK = r"""
import sys, time
from torch_tensorrt_rtx import _C
lock = _C.FileLock(sys.argv[1], shared=sys.argv[2] == "shared")
assert lock.acquire(10.0)
print("locked", flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize("holder", ["shared", "exclusive"])
def test_loads_take_a_shared_lock_and_saves_an_exclusive_one(impl, tmp_path, warned, holder):
    store = make_store(impl, tmp_path / "c.bin", timeout=0.3)
    assert store.save(A, b"kernels", now=1)
    process = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(store.lock_path), holder],
                               stdout=subprocess.PIPE, text=True, env=child_env())
    try:
        assert process.stdout.readline().strip() == "locked"
        # Another reader never keeps a load out; any holder keeps a save out.
        assert store.load(A) == ((b"kernels", 1) if holder == "shared" else None)
        assert not store.save(A, b"other")
    finally:
        process.kill()
        process.wait()
    assert "could not lock" in warned()


AS_NOBODY = r"""
import os, sys
sys.path.insert(0, sys.argv[1])
from cache_store_adapters import make_store
store = make_store(sys.argv[2], sys.argv[3], timeout=30.0)
os.setgid(65534); os.setuid(65534)
print("saved" if store.save(bytes(32), b"kernels") else "not saved", flush=True)
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping to another user needs root")
@pytest.mark.parametrize("lock_mode, outcome", [(0o444, "saved"), (0o000, "not saved")])
def test_a_read_only_lock_file_is_locked_read_only_and_a_denied_one_fails_at_once(impl, lock_mode, outcome):
    # 0o444: opened read-only and locked, by loads and saves alike. 0o000: a permission error,
    # reported at once (never read as "busy" and retried until the 30 s timeout).
    directory = Path(tempfile.mkdtemp(prefix="ro_lock_"))
    try:
        os.chmod(directory, 0o755)
        os.chown(directory, 65534, 65534)
        lock = directory / "c.bin.lock"
        lock.write_bytes(b"")
        os.chmod(lock, lock_mode)  # owned by root: nobody cannot change it
        result = subprocess.run([sys.executable, "-c", AS_NOBODY, HERE, impl, str(directory / "c.bin")],
                                capture_output=True, text=True, timeout=25, env=child_env())
        assert result.stdout.strip() == outcome, result.stderr
        if outcome == "not saved":
            assert "Permission denied" in result.stderr and "could not lock" not in result.stderr
    finally:
        for p in directory.iterdir():
            p.unlink()
        directory.rmdir()


LOAD_WITHOUT_MEMORY = r"""
import resource, sys
sys.path.insert(0, sys.argv[1])
from cache_store_adapters import make_store
store = make_store(sys.argv[2], sys.argv[3], max_bytes=2**50)
size_kb = int(next(l for l in open("/proc/self/status") if l.startswith("VmSize:")).split()[1])
limit = (size_kb << 10) + (1 << 30)  # 1 GiB more address space than now
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
print("loaded" if store.load(bytes.fromhex(sys.argv[4])) else "not loaded", flush=True)
"""


def test_any_failure_is_a_warning_never_an_exception(impl, tmp_path):
    # An entry of 1 TiB in a sparse file, read with 1 GiB of address space left: the allocation
    # fails (MemoryError / std::bad_alloc), a failure of neither the I/O nor the container kind.
    path = tmp_path / "c.bin"
    prefix = container.encode_prefix([(A, 1, 2**40, 0)])
    with open(path, "wb") as f:
        f.write(prefix)
        f.truncate(len(prefix) + 2**40)
    result = subprocess.run([sys.executable, "-c", LOAD_WITHOUT_MEMORY, HERE, impl, str(path), A.hex()],
                            capture_output=True, text=True, timeout=60, env=child_env())
    assert result.stdout.strip() == "not loaded", result.stderr
    assert "runtime cache: cannot read" in result.stderr and "Traceback" not in result.stderr


def test_zero_lock_timeout_means_one_try_for_loads_and_saves_alike(impl, tmp_path, warned):
    store = make_store(impl, tmp_path / "c.bin", timeout=0.0)
    assert store.save(A, b"kernels", now=1)
    process = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(store.lock_path), "exclusive"],
                               stdout=subprocess.PIPE, text=True, env=child_env())
    try:
        assert process.stdout.readline().strip() == "locked"
        assert store.load(A) is None and not store.save(A, b"x")
    finally:
        process.kill()
        process.wait()
    assert warned().count("could not lock") >= 2


def test_refusals_reach_python_warnings_once_per_path_and_reason(impl, tmp_path):
    from torch_tensorrt_rtx.runtime import RuntimeCacheWarning

    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "c.bin").write_bytes(container.encode([(A, 1, b"planted")]))
    os.chmod(shared, 0o777)
    store = make_store(impl, shared / "c.bin")
    with pytest.warns(RuntimeCacheWarning, match="writable by every user") as caught:
        assert store.load(A) is None
        assert store.load(A) is None  # the same path and reason: logged, not warned again
    assert len([w for w in caught if "writable by every user" in str(w.message)]) == 1
    big = make_store(impl, tmp_path / "small.bin", max_bytes=64)
    with pytest.warns(RuntimeCacheWarning, match="exceeds the cache size cap"):
        assert not big.save(A, b"x" * 100)


def test_a_non_utf8_path_works_in_both(impl, tmp_path):
    directory = os.fsdecode(bytes(tmp_path) + b"/caf\xe9")  # Latin-1, not UTF-8
    store = make_store(impl, os.path.join(directory, "c.bin"))
    assert store.save(A, b"kernels", now=4) and store.load(A) == (b"kernels", 4)
    assert os.listdir(bytes(tmp_path)) == [b"caf\xe9"]


def test_a_non_utf8_default_cache_home_resolves_alike(native, tmp_path):
    script = ("from torch_tensorrt_rtx import _C\n"
              "from torch_tensorrt_rtx.runtime import default_cache_path\n"
              "import os\n"
              "python_path = str(default_cache_path(create_dir=False))\n"
              "print(os.fsencode(python_path).hex(), os.fsencode(_C.default_cache_path()).hex())")
    env = child_env()
    env_bytes = {os.fsencode(k): os.fsencode(v) for k, v in env.items()}
    env_bytes[b"XDG_CACHE_HOME"] = bytes(tmp_path) + b"/x\xff"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env_bytes, timeout=60)
    python_path, cxx_path = out.stdout.split()
    assert python_path == cxx_path, out.stderr
    assert bytes.fromhex(python_path).startswith(bytes(tmp_path) + b"/x\xff/")


LOAD_PEAK = r"""
import sys
from torch_tensorrt_rtx import _C
def peak_bytes():  # VmHWM: this process's peak RSS (ru_maxrss would carry the parent's over exec)
    return int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) << 10
store = _C.RuntimeCacheFile(sys.argv[1], max_bytes=1 << 40)
before = peak_bytes()
data, _ = store.try_load_entry(bytes.fromhex(sys.argv[2]))
print(len(data), peak_bytes() - before)
"""


def test_the_cxx_store_loads_a_large_entry_with_one_copy(native, tmp_path):
    size = 256 << 20
    path = tmp_path / "c.bin"
    assert make_store("python", path, max_bytes=1 << 40).save(A, b"k" * size)
    out = subprocess.run([sys.executable, "-c", LOAD_PEAK, str(path), A.hex()], capture_output=True, text=True,
                         env=child_env(), timeout=120)
    loaded, growth = map(int, out.stdout.split())
    assert loaded == size, out.stderr
    print(f"peak RSS growth loading {size >> 20} MB through _C: {growth / size:.2f}x the entry")
    assert 0.9 * size < growth < 1.5 * size  # the entry itself, once; two copies were 2x


def test_the_op_librarys_cache_warnings_reach_python_warnings_once(scripted_ops, tmp_path):
    # The engine op (C++) loads and saves the cache itself; its refusals come back as the
    # Python store's do: a RuntimeCacheWarning once per path and reason, besides stderr.
    from cross_runtime_helpers import run
    from torch_tensorrt_rtx.runtime import EngineRecord

    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    record = EngineRecord.new(b"SCRIPTED-ENGINE v1\ninput x\noutput y\n", name="blk0", input_names=["x"],
                              output_names=["y"])
    (tmp_path / "record.bin").write_bytes(record.pack())
    result = run("""
import sys, warnings, torch
from torch_tensorrt_rtx import runtime
from torch_tensorrt_rtx.dynamo._engine_op import NATIVE, OutputSpec, TensorSpec
record = runtime.EngineRecord.unpack(bytearray(open(sys.argv[1], "rb").read())).to_tensor()
spec = OutputSpec("blk0", "sha", [TensorSpec("float32", ["i0_0"])], [TensorSpec("float32", ["i0_0"])],
                  ["y:relu"]).to_json()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    with runtime.settings(cache_path=sys.argv[2]):
        torch.ops.tensorrt_rtx.execute_engine([torch.arange(4.0)], record, spec)
    del record
    import gc; gc.collect()
print(NATIVE, [(w.category.__name__, "writable by every user" in str(w.message)) for w in caught], flush=True)
""", tmp_path / "record.bin", shared / "c.bin", TORCH_TENSORRT_RTX_RUNTIME_LIBRARY=str(scripted_ops))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True [('RuntimeCacheWarning', True)]", (result.stdout, result.stderr)
    assert result.stderr.count("writable by every user") >= 2  # load and save, each on stderr


SCOPE_WITH_PATH = r"""
import os, sys, torch
from torch_tensorrt_rtx import runtime
from torch_tensorrt_rtx.runtime import _native
print(_native.runtime_available(), flush=True)
try:
    with runtime.settings(cache_path=os.fsdecode(bytes.fromhex(sys.argv[1]))):
        pass
except ValueError as exc:
    print("ValueError:", exc)
"""


@pytest.mark.parametrize("library", ["loaded", "not loaded"])
def test_a_non_utf8_cache_path_is_refused_alike_with_or_without_the_cxx_library(runtime_library, tmp_path, library):
    # With the C++ op library loaded, the scope used to fail in torch's schema check instead.
    env = child_env(**({} if library == "loaded" else {"TORCH_TENSORRT_RTX_RUNTIME_LIBRARY": ""}))
    path = bytes(tmp_path) + b"/caf\xe9.bin"
    result = subprocess.run([sys.executable, "-c", SCOPE_WITH_PATH, path.hex()], capture_output=True, text=True,
                            env=env, timeout=120)
    loaded, refusal = result.stdout.strip().splitlines()
    assert loaded == str(library == "loaded"), result.stderr
    assert refusal.startswith("ValueError: cache_path") and "is not valid UTF-8" in refusal, result.stderr


def test_a_relative_cache_path_is_resolved_once_when_the_setting_is_made(tmp_path, monkeypatch):
    from torch_tensorrt_rtx.runtime import RuntimeSettings, TRTModule, EngineRecord

    monkeypatch.chdir(tmp_path)
    settings = RuntimeSettings(cache_path="c.bin")
    module = TRTModule(EngineRecord.new(b"e", name="blk0", input_names=["x"], output_names=["y"]))
    module.set_runtime_settings(cache_path="m.bin")
    monkeypatch.chdir("/")
    assert settings.cache_path == str(tmp_path / "c.bin")
    assert module.effective_settings().cache_path == str(tmp_path / "m.bin")
