"""The program cache (_program_cache.py, dynamo/_program_key.py): a recompile with the same module,
weights, settings and inputs loads the compiled program without torch.export, in any process; every
change of what the fast key covers misses; a forward it cannot describe takes the normal path and
leaves the module as it was; damaged or foreign entries are dropped with a warning; the switches."""
from __future__ import annotations

import functools
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
from torch_tensorrt_rtx.dynamo._engine_cache import _HEADER, OFF_SWITCH_ENV, SUFFIX, EngineCache, EngineCacheWarning
from torch_tensorrt_rtx._program_cache import OFF_SWITCH_ENV as PROGRAM_OFF_ENV
from torch_tensorrt_rtx._program_key_pending import MARKER_PAYLOAD
from torch_tensorrt_rtx.dynamo._program_key import NoFastKey, fast_key
from torch_tensorrt_rtx.dynamo._settings import CompilationSettings
from torch_tensorrt_rtx.dynamo._weight_digests import WeightDigests

REPO = Path(__file__).resolve().parents[3]
PROGRAM_MAGIC = b"TRTXPRG1"


@pytest.fixture(autouse=True)
def cache_enabled(monkeypatch):
    monkeypatch.delenv(OFF_SWITCH_ENV, raising=False)  # tests/py/conftest.py switches it off
    monkeypatch.delenv(PROGRAM_OFF_ENV, raising=False)


class ScaledMlp(torch.nn.Module):
    """`scale` is a Python float used in forward: part of the trace, so part of the key."""

    def __init__(self, scale: float = 2.0) -> None:
        super().__init__()
        self.fc1, self.fc2 = torch.nn.Linear(16, 32), torch.nn.Linear(32, 8)
        self.scale = scale

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)) * self.scale)


class KeywordMlp(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(16, 8)

    def forward(self, x, mask):
        return torch.relu(self.fc(x)) * mask


class StoresOnSelf(ScaledMlp):
    """A cache kept on the module, set in forward (as rotary-embedding caches are)."""

    def forward(self, x):
        self.last = torch.relu(self.fc1(x))
        return self.fc2(self.last)


class DataDependent(ScaledMlp):
    def forward(self, x):
        y = torch.relu(self.fc1(x))
        return self.fc2(y), torch.nonzero(y)


def _model(seed: int = 0, cls=ScaledMlp) -> torch.nn.Module:
    torch.manual_seed(seed)
    return cls().eval()


SPEC = trtx.Input(min_shape=(1, 16), opt_shape=(4, 16), max_shape=(8, 16))
BATCH = {"min_shape": (1, 16), "opt_shape": (4, 16), "max_shape": (8, 16), "dim_names": ("batch", None)}
KEYWORD_SPECS = ([trtx.Input(**BATCH)], {"mask": trtx.Input(**dict(BATCH, min_shape=(1, 8), opt_shape=(4, 8),
                                                                    max_shape=(8, 8)))})


def _compile(model, cache_dir, spec=SPEC, **options):
    return trtx.compile(model, [spec], engine_cache_dir=str(cache_dir), progress=False, **options)


def _entries(directory, magic: bytes) -> list:
    found = []
    for path in sorted(Path(directory).glob(f"*{SUFFIX}")):
        with open(path, "rb") as entry:
            entry.seek(_HEADER.size)
            if entry.read(len(magic)) == magic:
                found.append(path)
    return found


def _program_entries(directory) -> list:
    """The cache entries that hold a compiled program."""
    return _entries(directory, PROGRAM_MAGIC)


def _engine_entries(directory) -> set:
    """The cache entries that hold one engine each (not a program, nor a program's marker)."""
    others = _program_entries(directory) + _entries(directory, MARKER_PAYLOAD)
    return set(Path(directory).glob(f"*{SUFFIX}")) - set(others)


def _engine_shas(compiled) -> dict:
    return {name: hashlib.sha256(record.engine).hexdigest() for name, record in trtx.engine_records(compiled).items()}


def _hit(compiled) -> bool:
    return compiled.compile_report.program_cache_hit


_CHILD = textwrap.dedent("""
    import importlib, json, sys
    import torch
    import torch_tensorrt_rtx as trtx
    here = importlib.import_module(sys.argv[3])  # this file, under the name pytest gave it (the classes' module)
    KEYWORD_SPECS, SPEC, KeywordMlp, _engine_shas, _model = (
        here.KEYWORD_SPECS, here.SPEC, here.KeywordMlp, here._engine_shas, here._model)

    exports = []
    original = torch.export.export
    torch.export.export = lambda *a, **k: exports.append(1) or original(*a, **k)
    model = _model()
    compiled = trtx.compile(model, [SPEC], engine_cache_dir=sys.argv[1], progress=False)
    keyword_model = _model(cls=KeywordMlp)
    keyword = trtx.compile(keyword_model, KEYWORD_SPECS[0], kwarg_inputs=KEYWORD_SPECS[1],
                           engine_cache_dir=sys.argv[1], progress=False)
    exports_before_verify = len(exports)
    heavy_imports = sorted(m for m in ("torch.export._trace", "torch._inductor.sizevars") if m in sys.modules)
    x, mask = torch.randn(3, 16), torch.rand(3, 8)
    checks = [trtx.verify(compiled, x, reference_module=model),
              trtx.verify(keyword, x, mask=mask, reference_module=keyword_model)]
    trtx.save(compiled, sys.argv[2])
    saved = trtx.load(sys.argv[2]).module()
    print(json.dumps({
        "hits": [compiled.compile_report.program_cache_hit, keyword.compile_report.program_cache_hit],
        "exports": exports_before_verify, "heavy_imports": heavy_imports, "ok": [c.ok and c.end_to_end_ok for c in checks],
        "shas": _engine_shas(compiled), "saved_shas": _engine_shas(saved),
        "report": compiled.compile_report.format()}))
""")


def _run_child(cache_dir, saved_path) -> dict:
    env = dict(os.environ)
    base = Path(__file__).resolve().parents[__name__.count(".")]  # where pytest imported this file from
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "py"), str(REPO), str(base), env.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, "-c", _CHILD, str(cache_dir), str(saved_path), __name__], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_hit_in_a_new_process_skips_export_and_gives_the_same_program(tmp_path):
    # Both compiles in fresh processes: this one's registry holds the converters other test files
    # registered, which are (rightly) part of the key.
    cold = _run_child(tmp_path, tmp_path / "cold.pt2")
    assert cold["hits"] == [False, False] and cold["exports"] > 0 and len(_program_entries(tmp_path)) == 2
    child = _run_child(tmp_path, tmp_path / "hit.pt2")
    assert child["hits"] == [True, True]
    assert child["exports"] == 0, "a program cache hit must not call torch.export"
    assert child["heavy_imports"] == [], "loading the archive must not import torch.export's tracer or inductor"
    assert cold["ok"] == child["ok"] == [True, True], child["report"]
    assert child["shas"] == cold["shas"] == child["saved_shas"]
    assert "loaded from the program cache" in child["report"]


def test_hit_behaves_like_the_compile_that_stored_it(tmp_path):
    model = _model()
    first = _compile(model, tmp_path)
    second = _compile(model, tmp_path)
    assert not _hit(first) and _hit(second)
    assert isinstance(second, torch.fx.GraphModule)
    assert _engine_shas(second) == _engine_shas(first)
    assert set(trtx.program_engines(second)) == set(trtx.program_engines(first))
    a, b = first.compile_report, second.compile_report
    assert [e.name for e in b.engines] == [e.name for e in a.engines]
    assert [e.converted_ops for e in b.engines] == [e.converted_ops for e in a.engines]
    assert (b.fallback_ops, b.precision, b.reduced_precision) == (a.fallback_ops, a.precision, a.reduced_precision)
    assert b.engine_cache_hits == len(b.engines) == 1
    x = torch.randn(5, 16)
    report = trtx.verify(second, x, reference_module=model)
    assert report.ok and report.end_to_end_ok, str(report)
    trtx.save(second, tmp_path / "second.pt2")
    assert _engine_shas(trtx.load(tmp_path / "second.pt2").module()) == _engine_shas(first)


@pytest.mark.parametrize("change", ["weight", "python attribute", "setting", "input range"])
def test_a_change_the_key_covers_misses(tmp_path, change):
    _compile(_model(), tmp_path)
    model, spec, options = _model(), SPEC, {}
    if change == "weight":
        with torch.no_grad():
            model.fc2.bias[0] += 1.0
    elif change == "python attribute":
        model.scale = 3.0
    elif change == "setting":
        options = {"optimization_level": 2}
    else:
        spec = trtx.Input(min_shape=(1, 16), opt_shape=(4, 16), max_shape=(16, 16))
    assert _hit(_compile(_model(), tmp_path)), "the unchanged module must hit"
    again = _compile(model, tmp_path, spec, **options)
    assert not _hit(again)
    assert len(_program_entries(tmp_path)) == 2


def _key(model, spec=SPEC):
    digests = WeightDigests()
    try:
        return fast_key(model, [spec], {}, CompilationSettings(), digests)
    finally:
        digests.close()


def test_a_forward_that_stores_on_self_has_no_key_and_leaves_the_module_unchanged(tmp_path):
    model = _model(cls=StoresOnSelf)
    before = dict(model.__dict__)
    modules_before = dict(model._modules)
    with pytest.raises(NoFastKey, match="changed the module's state"):
        _key(model)
    assert model.__dict__.keys() == before.keys() and all(model.__dict__[k] is v for k, v in before.items())
    assert dict(model._modules) == modules_before
    assert not hasattr(model, "last")
    _compile(_model(cls=StoresOnSelf), tmp_path)
    assert _program_entries(tmp_path) == []


def test_a_data_dependent_forward_takes_the_normal_path(tmp_path):
    with pytest.raises(NoFastKey, match="meta trace raised"):
        _key(_model(cls=DataDependent))
    compiled = _compile(_model(cls=DataDependent), tmp_path)
    assert not _hit(compiled) and compiled.compile_report.engines
    assert _program_entries(tmp_path) == []


def test_the_key_is_stable_and_traces_meta_tensors_only():
    model = _model()
    plain = _key(model)
    assert plain == _key(_model())
    with torch.no_grad():
        assert _key(model) != plain, "grad mode is part of the key"
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        assert _key(model) != plain, "the default dtype is part of the key"
    finally:
        torch.set_default_dtype(previous)
    model.register_buffer("real", torch.ones(1), persistent=False)
    model.forward = lambda x: ScaledMlp.forward(model, x) + torch.ones(1)  # a real tensor made in forward
    with pytest.raises(NoFastKey, match="real cpu tensor"):
        _key(model)


def _flip_byte(path, offset):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_damaged_entry_warns_and_compiles(tmp_path):
    model = _model()
    _compile(model, tmp_path)
    (entry,) = _program_entries(tmp_path)
    _flip_byte(entry, -10)
    with pytest.warns(EngineCacheWarning, match="damaged"):
        again = _compile(model, tmp_path)
    assert not _hit(again)
    assert _hit(_compile(model, tmp_path)), "the normal compile stores the entry again"


def test_a_damaged_engine_entry_means_a_normal_compile_that_replaces_it(tmp_path):
    model = _model()
    first = _compile(model, tmp_path)
    (program,) = _program_entries(tmp_path)
    (engine_entry,) = _engine_entries(tmp_path)
    _flip_byte(engine_entry, -100)  # the engine is read and verified in one pass, straight into its record
    with pytest.warns(EngineCacheWarning, match="checksum"):
        again = _compile(model, tmp_path)
    assert not _hit(again)
    hit = _compile(model, tmp_path)
    assert _hit(hit) and _engine_shas(hit) == _engine_shas(again)
    assert _engine_shas(first).keys() == _engine_shas(hit).keys()


def test_stored_record_fields_that_differ_from_the_archive_drop_the_entry(tmp_path, monkeypatch):
    from torch_tensorrt_rtx import _program_cache

    model = _model()
    real = _program_cache._record_fields
    monkeypatch.setattr(_program_cache, "_record_fields",
                        lambda packed: dict(real(packed), name="forged"))  # what the entry stores
    _compile(model, tmp_path)
    monkeypatch.setattr(_program_cache, "_record_fields", real)  # what the archive holds
    with pytest.warns(EngineCacheWarning, match="differ from the archive"):
        again = _compile(model, tmp_path)
    assert not _hit(again)
    assert _hit(_compile(model, tmp_path)), "the normal compile stores the entry again"


def test_a_foreign_entry_with_a_valid_checksum_is_dropped(tmp_path):
    model = _model()
    _compile(model, tmp_path)
    (entry,) = _program_entries(tmp_path)
    key = entry.name[:-len(SUFFIX)]
    assert EngineCache(tmp_path, 1 << 30).try_save(key, PROGRAM_MAGIC + b"\0" * 8 + b"not an archive")
    with pytest.warns(EngineCacheWarning, match="dropping"):
        again = _compile(model, tmp_path)
    assert not _hit(again)
    assert _hit(_compile(model, tmp_path))


@pytest.mark.parametrize("switch", ["reuse_cached_engines", "cache_built_engines", "engine env", "program env"])
def test_the_switches_turn_it_off(tmp_path, monkeypatch, switch):
    model = _model()
    _compile(model, tmp_path)  # an entry to reuse
    options = {}
    if switch in ("reuse_cached_engines", "cache_built_engines"):
        options = {switch: False}
    else:
        monkeypatch.setenv(OFF_SWITCH_ENV if switch == "engine env" else PROGRAM_OFF_ENV, "0")
    fresh = tmp_path / "fresh"
    # As for engines: cache_built_engines=False still reuses, reuse_cached_engines=False still stores.
    assert _hit(_compile(model, tmp_path, **options)) == (switch == "cache_built_engines")
    _compile(model, fresh, **options)
    assert len(_program_entries(fresh)) == (1 if switch == "reuse_cached_engines" else 0)


def test_an_entry_holds_no_engine_and_an_evicted_engine_means_a_normal_compile(tmp_path):
    model = _model()
    first = _compile(model, tmp_path)
    (record,) = trtx.engine_records(first).values()
    (entry,) = _program_entries(tmp_path)
    assert bytes(record.engine) not in entry.read_bytes(), "engines live in their own entries only"
    for engine_entry in _engine_entries(tmp_path):
        engine_entry.unlink()
    again = _compile(model, tmp_path)
    assert not _hit(again) and again.compile_report.engine_cache_hits == 0
    hit = _compile(model, tmp_path)
    assert _hit(hit) and _engine_shas(hit) == _engine_shas(again)


_LIBRARY_MODULE = '''
import torch
__version__ = "1.0"


class LibraryMlp(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(16, 8)

    def forward(self, x):
        return torch.relu(self.fc(x))
'''


def test_the_key_follows_the_defining_package_version_or_source(tmp_path, monkeypatch):
    """A library upgrade that changes only an export-only branch is a miss: the key holds the
    version of the package defining each module class, or the digest of its source file."""
    from torch_tensorrt_rtx.dynamo import _program_key

    (tmp_path / "trtx_test_library.py").write_text(_LIBRARY_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    import trtx_test_library as library

    monkeypatch.setattr(_program_key, "_package_version", functools.lru_cache(maxsize=None)(
        _program_key._package_version.__wrapped__))  # this test's own memo
    torch.manual_seed(0)
    model = library.LibraryMlp().eval()
    first = _key(model)
    monkeypatch.setattr(library, "__version__", "1.1")
    _program_key._package_version.cache_clear()
    assert _key(model) != first, "a new version of the defining package"
    monkeypatch.delattr(library, "__version__")
    _program_key._package_version.cache_clear()
    by_source = _key(model)
    (tmp_path / "trtx_test_library.py").write_text(_LIBRARY_MODULE + "# an export-only branch changed\n")
    assert _key(model) != by_source, "a changed source file of an unversioned module"


def test_a_module_class_whose_source_is_a_fifo_gives_no_key_without_blocking(tmp_path, monkeypatch):
    """The source file of an unversioned module is read as hostile data: a FIFO in its place
    neither hangs the compile nor gives a key."""
    import os
    import sys as _sys

    from torch_tensorrt_rtx.dynamo import _program_key

    (tmp_path / "trtx_test_fifo_library.py").write_text(_LIBRARY_MODULE.replace("__version__", "_no_version"))
    monkeypatch.syspath_prepend(str(tmp_path))
    import trtx_test_fifo_library as library

    fifo = tmp_path / "fifo_source.py"
    os.mkfifo(fifo)
    monkeypatch.setattr(_sys.modules["trtx_test_fifo_library"], "__file__", str(fifo))
    with pytest.raises(_program_key.NoFastKey, match="not a regular file"):
        _key(library.LibraryMlp().eval())
