"""The engine cache (dynamo/_engine_cache.py): reuse across compiles and processes, a miss for
every change of a key part, the off switches, LRU eviction, hostile or damaged entries."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import torch_tensorrt_rtx as trtx
from torch_tensorrt_rtx.dynamo._engine_cache import (
    _HEADER,
    OFF_SWITCH_ENV,
    SUFFIX,
    EngineCache,
    EngineCacheSession,
    EngineCacheWarning,
)
from torch_tensorrt_rtx.dynamo._engine_cache_key import ENGINE_SETTINGS, SETTINGS_NOT_IN_KEY
from torch_tensorrt_rtx.dynamo._settings import CompilationSettings
from torch_tensorrt_rtx.runtime.runtime_cache_file import engine_key as runtime_cache_key

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def cache_enabled(monkeypatch):
    monkeypatch.delenv(OFF_SWITCH_ENV, raising=False)  # tests/py/conftest.py switches it off
    # Engines only: a recompile that hit the program cache (test_program_cache.py) would never look one up.
    monkeypatch.setenv("TORCH_TENSORRT_RTX_PROGRAM_CACHE", "0")



class Mlp(torch.nn.Module):
    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.fc1, self.fc2 = torch.nn.Linear(width, 32), torch.nn.Linear(32, 8)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


class RenamedMlp(torch.nn.Module):
    """Mlp with other attribute names: the same graph and weights, so the same engine."""

    def __init__(self, mlp: Mlp) -> None:
        super().__init__()
        self.first, self.second = mlp.fc1, mlp.fc2

    def forward(self, x):
        return self.second(torch.relu(self.first(x)))


def _model(seed: int = 0) -> Mlp:
    torch.manual_seed(seed)
    return Mlp().eval()


def _compile(model, cache_dir, max_batch: int = 8, **options):
    spec = trtx.Input(min_shape=(1, 16), opt_shape=(4, 16), max_shape=(max_batch, 16))
    return trtx.compile(model, [spec], engine_cache_dir=cache_dir, progress=False, **options)


def _engine_bytes(compiled) -> bytes:
    (record,) = trtx.engine_records(compiled).values()
    return bytes(record.engine)


def _entries(directory) -> list:
    """Every entry of the cache (one per engine)."""
    return sorted(p.name for p in Path(directory).glob(f"*{SUFFIX}"))


def _engine_entries(directory) -> list:
    return list(Path(directory).glob(f"*{SUFFIX}"))


# -- reuse ---------------------------------------------------------------------------------
def test_recompile_reuses_the_engine_bytes_and_keeps_the_runtime_cache_key(tmp_path, builds):
    first = _compile(_model(), tmp_path)
    second = _compile(_model(), tmp_path)
    assert len(builds) == 1, "the second compile built the engine again"
    assert (first.compile_report.engine_cache_hits, second.compile_report.engine_cache_hits) == (0, 1)
    assert _engine_bytes(first) == _engine_bytes(second)
    assert runtime_cache_key(_engine_bytes(first)) == runtime_cache_key(_engine_bytes(second))
    verification = trtx.verify(second, torch.randn(3, 16), reference_module=_model())
    assert verification.ok, str(verification)


def test_the_key_ignores_attribute_names(tmp_path, builds):
    _compile(_model(), tmp_path)
    renamed = _compile(RenamedMlp(_model()).eval(), tmp_path)
    assert len(builds) == 1 and renamed.compile_report.engine_cache_hits == 1


# -- every key part misses -----------------------------------------------------------------
def test_changed_weights_miss(tmp_path, builds):
    _compile(_model(), tmp_path)
    changed = _model()
    with torch.no_grad():
        changed.fc2.bias[3] += 1.0
    report = _compile(changed, tmp_path).compile_report
    assert len(builds) == 2 and report.engine_cache_hits == 0
    assert len(_entries(tmp_path)) == 2


def test_weights_changed_in_place_between_compiles_miss(tmp_path, builds):
    """Each compile hashes its module's weights anew, even through `.data` (no version bump)."""
    model = _model()
    _compile(model, tmp_path)
    model.fc2.bias.data[3] += 1.0
    assert _compile(model, tmp_path).compile_report.engine_cache_hits == 0
    assert len(builds) == 2


def test_a_weight_changed_after_its_early_hash_is_hashed_again(tmp_path, builds, monkeypatch):
    """Weights are hashed while torch.export runs; one changed in place meanwhile is keyed by
    its new bytes, so the engine is the one of the changed model, not of the original."""
    from torch_tensorrt_rtx import _compile as compile_module

    real_export = compile_module.export_aten

    def export_then_change(module, *args, **kwargs):
        exported = real_export(module, *args, **kwargs)
        with torch.no_grad():
            module.fc2.bias[3] += 1.0  # the exported graph reads the same tensor
        return exported

    monkeypatch.setattr(compile_module, "export_aten", export_then_change)
    _compile(_model(), tmp_path)
    monkeypatch.setattr(compile_module, "export_aten", real_export)
    changed = _model()
    with torch.no_grad():
        changed.fc2.bias[3] += 1.0
    assert _compile(changed, tmp_path).compile_report.engine_cache_hits == 1
    assert _compile(_model(), tmp_path).compile_report.engine_cache_hits == 0
    assert len(builds) == 2


def test_changed_ranges_miss(tmp_path, builds):
    _compile(_model(), tmp_path, max_batch=8)
    assert _compile(_model(), tmp_path, max_batch=9).compile_report.engine_cache_hits == 0
    assert len(builds) == 2


@pytest.mark.parametrize("change", [{"enabled_precisions": {torch.float16}}, {"compute_capabilities": ("SM89",)}])
def test_changed_engine_settings_miss(tmp_path, builds, change):
    _compile(_model(), tmp_path)
    assert _compile(_model(), tmp_path, **change).compile_report.engine_cache_hits == 0
    assert len(builds) == 2


def test_settings_that_do_not_change_engines_hit(tmp_path, builds):
    _compile(_model(), tmp_path)
    report = _compile(_model(), tmp_path, keep_networks=False, min_block_size=2).compile_report
    assert report.engine_cache_hits == 1 and len(builds) == 1


def test_every_setting_is_either_in_the_key_or_documented_as_not():
    fields = {f.name for f in dataclasses.fields(CompilationSettings)}
    assert set(ENGINE_SETTINGS) | set(SETTINGS_NOT_IN_KEY) == fields
    assert not set(ENGINE_SETTINGS) & set(SETTINGS_NOT_IN_KEY)


def test_a_fault_computing_the_key_means_a_build_not_a_fallback(tmp_path, builds, monkeypatch, caplog):
    from torch_tensorrt_rtx.dynamo import _engine_cache_key

    def broken(*args, **kwargs):
        raise KeyError("val")

    monkeypatch.setattr(_engine_cache_key, "engine_key", broken)
    report = _compile(_model(), tmp_path).compile_report
    assert len(builds) == 1 and len(report.engines) == 1 and not report.fallback_ops
    assert "no key for this partition" in caplog.text


# -- off switches --------------------------------------------------------------------------
def test_cache_built_engines_false_writes_nothing(tmp_path, builds):
    _compile(_model(), tmp_path / "cache", cache_built_engines=False)
    _compile(_model(), tmp_path / "cache", cache_built_engines=False)
    assert len(builds) == 2 and not (tmp_path / "cache").exists()


def test_reuse_cached_engines_false_builds_anew(tmp_path, builds):
    _compile(_model(), tmp_path)
    report = _compile(_model(), tmp_path, reuse_cached_engines=False).compile_report
    assert len(builds) == 2 and report.engine_cache_hits == 0


def test_environment_switches_the_cache_off(tmp_path, builds, monkeypatch):
    monkeypatch.setenv(OFF_SWITCH_ENV, "0")
    _compile(_model(), tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize("bad", [{"engine_cache_size": 0}, {"engine_cache_size": "1GB"},
                                 {"engine_cache_dir": "a\0b"}, {"cache_built_engines": "yes"}])
def test_bad_cache_settings_are_refused(bad):
    name = next(iter(bad))
    with pytest.raises(ValueError, match=name):
        CompilationSettings(**bad)


# -- the store: LRU eviction and hostile entries -------------------------------------------
KEYS = [hashlib.sha256(bytes([i])).hexdigest() for i in range(4)]


def test_lru_eviction_keeps_recently_used_entries_and_the_one_written(tmp_path):
    cache = EngineCache(tmp_path, max_bytes=3 * 1100)
    for i, key in enumerate(KEYS[:3]):
        assert cache.try_save(key, bytes([i]) * 1000, now=1000 + i)
    os.utime(cache.entry_path(KEYS[0]), (900, 900))
    assert cache.try_load(KEYS[0]) == bytes(1000)  # a hit makes KEYS[0] the most recently used
    assert cache.try_save(KEYS[3], b"\3" * 1000)
    assert [k for k, _, _ in cache.entries()] == [KEYS[2], KEYS[0], KEYS[3]]  # KEYS[1] evicted
    assert cache.try_load(KEYS[1]) is None
    # An entry that fills the cap alone evicts everything else, never itself.
    assert cache.try_save(KEYS[1], b"\1" * 3000)
    assert [k for k, _, _ in cache.entries()] == [KEYS[1]]


def test_an_engine_over_the_cap_is_not_stored(tmp_path):
    cache = EngineCache(tmp_path, max_bytes=500)
    with pytest.warns(EngineCacheWarning, match="exceeds engine_cache_size"):
        assert not cache.try_save(KEYS[0], bytes(1000))
    assert cache.entries() == []


def _damage(path: Path, how: str) -> None:
    if how == "flipped byte":
        data = bytearray(path.read_bytes())
        data[-1] ^= 0xFF
        path.write_bytes(data)
    elif how == "truncated":
        path.write_bytes(path.read_bytes()[:-10])
    elif how == "not an entry":
        path.write_bytes(b"PK\3\4" + bytes(200))
    elif how == "other key":
        path.write_bytes(path.with_name(KEYS[1] + SUFFIX).read_bytes())
    elif how == "fifo":
        path.unlink()
        os.mkfifo(path)
    elif how == "symlink":
        target = path.with_name("elsewhere")
        path.rename(target)
        path.symlink_to(target)


@pytest.mark.parametrize("how", ["flipped byte", "truncated", "not an entry", "other key", "fifo", "symlink"])
def test_a_damaged_or_hostile_entry_is_ignored_with_a_warning(tmp_path, how):
    cache = EngineCache(tmp_path, max_bytes=1 << 20)
    cache.try_save(KEYS[0], b"engine-0" * 100)
    cache.try_save(KEYS[1], b"engine-1" * 100)
    _damage(cache.entry_path(KEYS[0]), how)
    with pytest.warns(EngineCacheWarning):
        assert cache.try_load(KEYS[0]) is None
    assert cache.try_load(KEYS[1]) == b"engine-1" * 100


@pytest.mark.parametrize("where", [0, 130, 399])
def test_damage_anywhere_in_an_entry_read_in_chunks_is_found(tmp_path, monkeypatch, where):
    from torch_tensorrt_rtx.dynamo import _engine_cache

    monkeypatch.setattr(_engine_cache, "_VERIFY_CHUNK", 64)  # the entry spans 7 chunks
    cache = EngineCache(tmp_path, max_bytes=1 << 20)
    engine = bytes(range(200)) * 2
    cache.try_save(KEYS[0], engine)
    assert cache.try_load(KEYS[0]) == engine
    path = cache.entry_path(KEYS[0])
    data = bytearray(path.read_bytes())
    data[len(data) - len(engine) + where] ^= 0x01
    path.write_bytes(data)
    with pytest.warns(EngineCacheWarning, match="checksum"):
        assert cache.try_load_engine(KEYS[0]) is None


def _read_whole(engine) -> bytearray:
    out = bytearray(engine.nbytes)
    engine.readinto(out)
    return out


@pytest.mark.parametrize("where", [None, 0, 130, 399])
def test_try_read_engine_reads_each_byte_once_and_checks_it_in_the_same_pass(tmp_path, monkeypatch, where):
    from torch_tensorrt_rtx.dynamo import _engine_cache

    monkeypatch.setattr(_engine_cache, "_VERIFY_CHUNK", 64)  # the entry spans 7 chunks
    cache = EngineCache(tmp_path, max_bytes=1 << 20)
    engine = bytes(range(200)) * 2
    cache.try_save(KEYS[0], engine)
    path = cache.entry_path(KEYS[0])
    if where is not None:
        data = bytearray(path.read_bytes())
        data[len(data) - len(engine) + where] ^= 0x01
        path.write_bytes(data)
    read = []
    original = _engine_cache.io.read_into
    monkeypatch.setattr(_engine_cache.io, "read_into",
                        lambda fd, offset, view, p: read.append(view.nbytes) or original(fd, offset, view, p))
    if where is None:
        assert cache.try_read_engine(KEYS[0], _read_whole) == engine
        assert sum(read) == len(engine) + _HEADER.size, "every byte read once: no separate verifying pass"
    else:
        with pytest.warns(EngineCacheWarning, match="checksum"):
            assert cache.try_read_engine(KEYS[0], _read_whole) is None


def test_try_read_engine_refuses_an_engine_not_read_whole_and_passes_other_errors_through(tmp_path):
    cache = EngineCache(tmp_path, max_bytes=1 << 20)
    cache.try_save(KEYS[0], b"engine-0" * 100)
    assert cache.try_read_engine(KEYS[1], _read_whole) is None  # no entry: nothing read, no warning
    with pytest.warns(EngineCacheWarning, match="not read whole"):
        assert cache.try_read_engine(KEYS[0], lambda engine: "unchecked") is None

    class Stop(Exception):
        pass

    def stop(engine):
        raise Stop(engine.sha256)

    with pytest.raises(Stop, match=hashlib.sha256(b"engine-0" * 100).hexdigest()):
        cache.try_read_engine(KEYS[0], stop)
    assert cache.try_read_engine(KEYS[0], _read_whole) == b"engine-0" * 100


def test_a_loaded_engine_reads_the_verified_file_even_after_its_entry_is_replaced(tmp_path):
    cache = EngineCache(tmp_path, max_bytes=1 << 20)
    cache.try_save(KEYS[0], b"engine-0" * 100)
    found = cache.try_load_engine(KEYS[0])
    assert (found.nbytes, found.sha256) == (800, hashlib.sha256(b"engine-0" * 100).hexdigest())
    cache.try_save(KEYS[0], b"other-00" * 100)  # a peer replaces the entry (new file + rename)
    out = bytearray(found.nbytes)
    found.readinto(out)
    assert out == b"engine-0" * 100
    with pytest.raises(ValueError, match="expected 800"):
        found.readinto(bytearray(10))
    found.close()
    assert cache.try_load(KEYS[0]) == b"other-00" * 100


def _session_keyed(tmp_path, monkeypatch, key):
    """An EngineCacheSession on tmp_path whose every partition has `key`."""
    monkeypatch.setattr(EngineCacheSession, "key", lambda self, sub, ranges: key)
    return EngineCacheSession(CompilationSettings(engine_cache_dir=str(tmp_path)), {})


def test_a_look_up_started_early_is_what_build_returns(tmp_path, monkeypatch):
    EngineCache(tmp_path, 1 << 20).try_save(KEYS[0], b"engine-0" * 100)
    session = _session_keyed(tmp_path, monkeypatch, KEYS[0])
    session.look_up(None, [])

    def no_build():
        raise AssertionError("built although the cache has the engine")

    found, seconds = session.build(None, [], "_run_on_trt_0", no_build)
    out = bytearray(found.nbytes)
    found.readinto(out)
    assert out == b"engine-0" * 100 and session.hits == 1 and seconds == 0.0
    found.close()
    session.close()


def test_a_look_up_never_used_is_closed_with_the_session(tmp_path, monkeypatch):
    EngineCache(tmp_path, 1 << 20).try_save(KEYS[0], b"engine-0" * 100)
    session = _session_keyed(tmp_path, monkeypatch, KEYS[0])
    session.look_up(None, [])
    found = next(iter(session._lookups.values())).result()
    session.close()
    with pytest.raises(ValueError, match="closed"):
        found.readinto(bytearray(found.nbytes))


def test_an_untrusted_directory_is_neither_read_nor_written(tmp_path):
    cache = EngineCache(tmp_path / "shared", max_bytes=1 << 20)
    assert cache.try_save(KEYS[0], b"x" * 100)
    os.chmod(cache.directory, 0o777)
    with pytest.warns(EngineCacheWarning, match="writable by every user"):
        assert cache.try_load(KEYS[0]) is None
    assert not cache.try_save(KEYS[1], b"y" * 100)
    assert not cache.entry_path(KEYS[1]).exists()


def test_a_damaged_entry_means_a_rebuild_and_is_replaced(tmp_path, builds):
    first = _compile(_model(), tmp_path)
    (entry,) = _engine_entries(tmp_path)
    _damage(entry, "flipped byte")
    with pytest.warns(EngineCacheWarning, match="checksum"):
        second = _compile(_model(), tmp_path)
    assert len(builds) == 2 and second.compile_report.engine_cache_hits == 0
    assert _compile(_model(), tmp_path).compile_report.engine_cache_hits == 1  # replaced by the rebuild
    assert len(builds) == 2 and _engine_bytes(first)


def test_stale_temp_files_of_killed_writers_are_removed(tmp_path):
    cache = EngineCache(tmp_path, max_bytes=1 << 20)
    from torch_tensorrt_rtx.runtime.cache_file_io import TEMP_MARKER

    stale = tmp_path / f"{KEYS[2]}{SUFFIX}{TEMP_MARKER}abc123"
    stale.write_bytes(b"partial")
    users_file = tmp_path / f"{KEYS[2]}{SUFFIX}.backup"
    users_file.write_bytes(b"mine")
    assert cache.try_save(KEYS[0], b"x" * 10)
    assert not stale.exists() and users_file.exists()


# -- processes -----------------------------------------------------------------------------
_WORKER = textwrap.dedent("""
    import hashlib, json, sys, torch
    import torch_tensorrt_rtx as trtx
    sys.path.insert(0, {tests!r})
    from test_engine_cache import _compile, _engine_bytes, _model
    compiled = _compile(_model(), sys.argv[1])
    print(json.dumps({{"hits": compiled.compile_report.engine_cache_hits,
                      "sha": hashlib.sha256(_engine_bytes(compiled)).hexdigest()}}))
""").format(tests=str(Path(__file__).parent))


def _start_worker(cache_dir) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != OFF_SWITCH_ENV}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "py"), str(REPO), env.get("PYTHONPATH", "")])
    return subprocess.Popen([sys.executable, "-c", _WORKER, str(cache_dir)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _result(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def test_concurrent_writers_leave_a_cache_another_process_reuses(tmp_path):
    writers = [_start_worker(tmp_path) for _ in range(2)]
    results = [_result(w) for w in writers]
    (engine,) = _engine_entries(tmp_path)
    assert sorted(os.listdir(tmp_path)) == sorted([engine.name, "engine_cache.lock"]), "temp files left"
    reader = _result(_start_worker(tmp_path))
    assert reader["hits"] == 1
    assert reader["sha"] in {r["sha"] for r in results}


def test_torch_compile_reuses_cached_engines(tmp_path, builds):
    from torch_tensorrt_rtx.dynamo.backend import compile_reports

    options = {"engine_cache_dir": str(tmp_path), "progress": False}
    reports = []
    for _ in range(2):
        torch._dynamo.reset()
        with compile_reports() as collected:
            compiled = torch.compile(_model(), backend="tensorrt_rtx", dynamic=True, options=options)
            verification = trtx.verify(compiled, torch.randn(4, 16), reference_module=_model())
            assert verification.ok, str(verification)
        reports += collected
    torch._dynamo.reset()
    assert [r.engine_cache_hits for r in reports] == [0, 1]
    assert len(builds) == 1
