"""The engine cache's spare entry file (dynamo/_engine_cache.py, SpareEntryFile): an unnamed file in the
cache directory whose pages are made while the compile goes on, into which the first stored engine is
written, then named under the exclusive lock. The entry is the one a plain save writes; nothing named
exists before the lock is held; any failure to name it falls back to the plain save."""
from __future__ import annotations

import hashlib
import os
import sys
import threading

import pytest
import torch

import torch_tensorrt_rtx as trtx
from torch_tensorrt_rtx.dynamo import _engine_cache
from torch_tensorrt_rtx.dynamo._engine_cache import (
    _HEADER,
    OFF_SWITCH_ENV,
    SUFFIX,
    EngineCache,
    SpareEntryFile,
    expected_engine_bytes,
    start_spare_entry,
)
from torch_tensorrt_rtx.dynamo._settings import CompilationSettings
from torch_tensorrt_rtx.runtime.cache_file_io import TEMP_MARKER

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="O_TMPFILE files are Linux's")

KEY = hashlib.sha256(b"spare").hexdigest()
ENGINE = bytes(range(256)) * 4096  # 1 MiB


@pytest.fixture(autouse=True)
def cache_enabled(monkeypatch):
    monkeypatch.delenv(OFF_SWITCH_ENV, raising=False)  # tests/py/conftest.py switches it off
    monkeypatch.setenv("TORCH_TENSORRT_RTX_PROGRAM_CACHE", "0")


def _names(directory) -> list:
    return sorted(os.listdir(directory))


@pytest.mark.parametrize("expected", [len(ENGINE) // 3, len(ENGINE), 3 * len(ENGINE)])
def test_an_entry_written_into_the_spare_file_is_the_plain_entry(tmp_path, expected):
    plain = EngineCache(tmp_path / "plain", 1 << 30)
    assert plain.try_save(KEY, ENGINE, now=1234)
    cache = EngineCache(tmp_path / "spare", 1 << 30)
    spare = cache.spare_entry_file(expected)
    assert spare is not None
    spare.make_pages()
    spare._prefault.join()  # every zero written: the entry must cut those beyond it
    assert os.fstat(spare.fd).st_size == _HEADER.size + expected
    assert _names(cache.directory) == []  # unnamed while its pages are made
    assert cache.try_save(KEY, ENGINE, now=1234, spare=spare)
    assert spare.fd == -1  # used up
    entry = cache.entry_path(KEY)
    assert entry.read_bytes() == plain.entry_path(KEY).read_bytes()  # zeros beyond a smaller entry cut off
    assert os.stat(entry).st_mtime == 1234 and (os.stat(entry).st_mode & 0o777) == 0o600
    assert _names(cache.directory) == sorted([entry.name, "engine_cache.lock"])  # no temp file left
    assert cache.try_load(KEY) == ENGINE


def test_nothing_named_appears_before_the_lock_is_held(tmp_path, monkeypatch):
    cache = EngineCache(tmp_path, 1 << 30)
    seen = []
    real = SpareEntryFile.install

    def install(self, path, *args):
        seen.append(_names(tmp_path))  # under the lock, before the file is named
        return real(self, path, *args)

    monkeypatch.setattr(SpareEntryFile, "install", install)
    spare = cache.spare_entry_file(len(ENGINE))
    spare.make_pages()
    assert not any(TEMP_MARKER in name for name in _names(tmp_path))
    assert cache.try_save(KEY, ENGINE, spare=spare)
    assert seen == [["engine_cache.lock"]]


def test_a_file_that_cannot_be_named_falls_back_to_the_plain_save(tmp_path, monkeypatch):
    cache = EngineCache(tmp_path, 1 << 30)
    spare = cache.spare_entry_file(len(ENGINE))

    def refuse(*args, **kwargs):
        raise OSError(1, "no links here")

    monkeypatch.setattr(_engine_cache.os, "link", refuse)
    assert cache.try_save(KEY, ENGINE, spare=spare)
    assert cache.try_load(KEY) == ENGINE
    assert spare.fd == -1
    assert not any(TEMP_MARKER in name for name in _names(tmp_path))


def test_a_spare_file_is_used_up_even_when_the_engine_is_over_the_cap(tmp_path):
    cache = EngineCache(tmp_path, max_bytes=1000)
    spare = cache.spare_entry_file(500)
    with pytest.warns(_engine_cache.EngineCacheWarning, match="exceeds"):
        assert not cache.try_save(KEY, ENGINE, spare=spare)
    assert spare.fd == -1 and cache.entries() == []


def test_the_pages_are_made_on_a_thread_that_stops_before_the_entry_is_written(tmp_path, monkeypatch):
    from torch_tensorrt_rtx.dynamo._file_prefault import FilePrefault

    monkeypatch.setattr(FilePrefault, "_STEP", 4096)
    started = threading.Event()
    release = threading.Event()
    real_run = FilePrefault.run

    def slow_run(self):
        started.set()
        release.wait(5)
        real_run(self)

    monkeypatch.setattr(FilePrefault, "run", slow_run)
    cache = EngineCache(tmp_path, 1 << 30)
    spare = cache.spare_entry_file(64 << 20)  # 16k steps: far from done when the save comes
    assert not started.wait(0.2)  # nothing written before the build asks
    spare.make_pages()
    assert started.wait(5)
    release.set()
    assert cache.try_save(KEY, ENGINE, spare=spare)
    assert cache.try_load(KEY) == ENGINE  # no zero landed on the entry
    assert os.path.getsize(cache.entry_path(KEY)) == _HEADER.size + len(ENGINE)


def test_no_spare_file_where_no_engine_will_be_stored(tmp_path):
    model = torch.nn.Linear(64, 64)
    assert start_spare_entry(model, CompilationSettings.from_options({"engine_cache_dir": str(tmp_path),
                                                                     "cache_built_engines": False})) is None
    assert start_spare_entry(model, CompilationSettings.from_options({"engine_cache_dir": str(tmp_path)})) is not None
    assert EngineCache(tmp_path, 1 << 30).spare_entry_file(0) is None


def test_the_expected_size_counts_each_weight_once_at_the_compiled_precision():
    layer = torch.nn.Linear(64, 64)
    tied = torch.nn.ModuleDict({"a": layer, "b": layer})
    fp32 = (64 * 64 + 64) * 4
    assert expected_engine_bytes(tied, None) == fp32
    assert expected_engine_bytes(tied, torch.float16) == fp32 // 2


def test_a_compile_stores_its_engine_through_the_spare_file_and_a_recompile_reuses_it(tmp_path, monkeypatch):
    installed = []
    real = SpareEntryFile.install

    def install(self, *args):
        installed.append(real(self, *args))
        return installed[-1]

    monkeypatch.setattr(SpareEntryFile, "install", install)
    made = []
    real_make = SpareEntryFile.make_pages
    monkeypatch.setattr(SpareEntryFile, "make_pages", lambda self: made.append(real_make(self)))
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 8)).eval()
    spec = trtx.Input(min_shape=(1, 64), opt_shape=(2, 64), max_shape=(4, 64))
    first = trtx.compile(model, [spec], engine_cache_dir=str(tmp_path), progress=False)
    assert installed == [True] and len(made) == 1  # pages made for the one build, entry written into them
    assert first.compile_report.phase_seconds["engine cache store"] > 0  # the store's time is reported
    assert [p.name for p in tmp_path.glob(f"*{SUFFIX}")] != []
    second = trtx.compile(model, [spec], engine_cache_dir=str(tmp_path), progress=False)
    assert second.compile_report.engine_cache_hits == 1
    (a,), (b,) = trtx.engine_records(first).values(), trtx.engine_records(second).values()
    assert bytes(a.engine) == bytes(b.engine)
