"""The debug log of each program and engine cache key's parts (``key_parts_line``): it names what
made two keys differ, within a process and across processes (where a recompile must find the
entries of the compile before it)."""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import torch_tensorrt_rtx as trtx
from torch_tensorrt_rtx.dynamo._engine_cache import OFF_SWITCH_ENV
from torch_tensorrt_rtx.dynamo._program_key import fast_key
from torch_tensorrt_rtx.dynamo._settings import CompilationSettings
from torch_tensorrt_rtx.dynamo._weight_digests import WeightDigests

REPO = Path(__file__).resolve().parents[3]
KEY_LINE = re.compile(r"(program|engine) cache key ([0-9a-f]{64}) parts (.*)$")
SPEC = trtx.Input(min_shape=(1, 16), opt_shape=(4, 16), max_shape=(8, 16))


@pytest.fixture(autouse=True)
def cache_enabled(monkeypatch):
    monkeypatch.delenv(OFF_SWITCH_ENV, raising=False)  # tests/py/conftest.py switches it off
    monkeypatch.setenv("TORCH_TENSORRT_RTX_PROGRAM_CACHE", "0")  # every compile computes its engine keys


class Mlp(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = torch.nn.Linear(16, 32), torch.nn.Linear(32, 8)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


def _model() -> Mlp:
    torch.manual_seed(0)
    return Mlp().eval()


def _logged(records, kind: str) -> list:
    """(key, {part: value}) of each `kind` key logged."""
    found = []
    for record in records:
        match = KEY_LINE.search(record.getMessage())
        if match and match.group(1) == kind:
            found.append((match.group(2), dict(word.split(":", 1) for word in match.group(3).split())))
    return found


def _differing(a: dict, b: dict) -> set:
    assert a.keys() == b.keys()
    return {name for name in a if a[name] != b[name]}


def _program_key(model, caplog, **settings) -> tuple:
    caplog.clear()
    digests = WeightDigests()
    try:
        key = fast_key(model, [SPEC], {}, CompilationSettings(**settings), digests)
    finally:
        digests.close()
    [(logged, parts)] = _logged(caplog.records, "program")
    assert logged == key
    return key, parts


def test_a_program_key_logs_its_parts_and_they_name_what_changed(caplog):
    caplog.set_level(logging.DEBUG, logger="torch_tensorrt_rtx.dynamo._program_key")
    key, parts = _program_key(_model(), caplog)
    assert set(parts) == {"schema", "versions", "settings", "converters", "inputs", "modes", "classes", "trace",
                          "weights"}
    assert "sources=" in parts["versions"], "the package sources' fingerprint is shown, not hashed again"
    assert _program_key(_model(), caplog) == (key, parts)
    other_key, other = _program_key(_model(), caplog, optimization_level=2)
    assert other_key != key and _differing(parts, other) == {"settings"}
    changed = _model()
    with torch.no_grad():
        changed.fc2.bias[0] += 1.0
    other_key, other = _program_key(changed, caplog)
    assert other_key != key and _differing(parts, other) == {"weights"}


def test_an_engine_key_logs_its_parts_and_they_name_what_changed(tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="torch_tensorrt_rtx.dynamo._engine_cache_key")
    compiled = trtx.compile(_model(), [SPEC], engine_cache_dir=tmp_path, progress=False)
    [(key, parts)] = _logged(caplog.records, "engine")
    assert [e.engine_cache_key for e in compiled.compile_report.engines] == [key]
    assert set(parts) == {"versions", "settings", "inputs", "symbols", "converters", "graph"}
    caplog.clear()
    trtx.compile(_model(), [SPEC], engine_cache_dir=tmp_path, progress=False, optimization_level=2)
    [(other_key, other)] = _logged(caplog.records, "engine")
    assert other_key != key and _differing(parts, other) == {"settings"}


# Logs the keys of compiling the module of test_cache_key_parts (imported from the tree given).
_CHILD = textwrap.dedent("""
    import logging, sys
    sys.path.insert(0, sys.argv[1])
    import torch_tensorrt_rtx as trtx
    sys.path.insert(0, sys.argv[3])
    from test_cache_key_parts import SPEC, _model
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(message)s")
    for name in ("torch_tensorrt_rtx.dynamo._program_key", "torch_tensorrt_rtx.dynamo._engine_cache_key"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    trtx.compile(_model(), [SPEC], engine_cache_dir=sys.argv[2], progress=False)
""")


def _keys_in_a_new_process(package_root: Path, cache_dir: Path, **env_vars) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(package_root), str(REPO)]), **env_vars)
    env.pop("TORCH_TENSORRT_RTX_PROGRAM_CACHE", None)
    done = subprocess.run([sys.executable, "-c", _CHILD, str(package_root), str(cache_dir),
                           str(Path(__file__).parent)], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    found = {"program": [], "engine": []}
    for line in done.stderr.splitlines():
        match = KEY_LINE.search(line)
        if match:
            found[match.group(1)].append(match.group(3))
    assert len(found["program"]) == 1 and len(found["engine"]) == 1, done.stderr[-3000:]
    return {kind: dict(word.split(":", 1) for word in lines[0].split()) for kind, lines in found.items()}


def test_keys_are_the_same_in_processes_with_other_hash_seeds(tmp_path):
    # Python randomizes str hashes per process: set and dict orders must never reach a key.
    first = _keys_in_a_new_process(REPO / "py", tmp_path / "a", PYTHONHASHSEED="1")
    second = _keys_in_a_new_process(REPO / "py", tmp_path / "b", PYTHONHASHSEED="2")
    assert first == second


def test_an_edit_of_the_package_between_two_processes_shows_as_its_sources(tmp_path):
    # What a recompile that misses both caches looks like when the package's sources changed since
    # the cold compile (an edit or a merge in the tree the benchmark runs from): only the versions differ.
    copy = tmp_path / "py"
    shutil.copytree(REPO / "py" / "torch_tensorrt_rtx", copy / "torch_tensorrt_rtx",
                    ignore=shutil.ignore_patterns("__pycache__"))
    before = _keys_in_a_new_process(copy, tmp_path / "cache")
    with open(copy / "torch_tensorrt_rtx" / "dynamo" / "_summary.py", "a") as source:
        source.write("# an edit\n")
    after = _keys_in_a_new_process(copy, tmp_path / "cache")
    for kind in ("program", "engine"):
        assert _differing(before[kind], after[kind]) == {"versions"}, kind
        sources = [re.search(r"sources=([0-9a-f]{64})", keys[kind]["versions"]).group(1) for keys in (before, after)]
        assert sources[0] != sources[1]
