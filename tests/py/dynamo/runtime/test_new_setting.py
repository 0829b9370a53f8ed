"""How many files a new runtime setting touches: a dummy strategy added to definitions.toml, in
a temporary copy of the tree, must reach both runtimes with edits to NEW_SETTING_FILES only.

The test adds the table, gives the Python test double the property (its one edit; on a real
machine tensorrt_rtx has it) and then checks, without editing anything else:
- Python: RuntimeSettings has the field (validated, default first name), runtime.settings()
  scopes take it, it crosses to C++ in the one encoding, and TRTModule hands it to
  IRuntimeConfig (the double's context records it);
- C++: the generated headers give RuntimeSettings the member, and the unchanged
  runtime_settings.cpp parses, applies and writes it (a program compiled here with g++).
The C++ TensorRT-RTX backend's call (core/runtime/backend_tensorrt.cpp, plus its nvinfer1 name
in tensorrt_rtx_api_names.txt, which test_cpp_backend_contract.py requires) needs the SDK to
compile and is counted, not compiled."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from engine_programs import REPO

NEW_SETTING_FILES = (
    "py/torch_tensorrt_rtx/runtime/definitions.toml",  # the table
    "core/runtime/backend_tensorrt.cpp",  # TensorRT-RTX's call (SDK only)
    "tests/core/runtime/tensorrt_rtx_api_names.txt",  # that call's name, for the backend contract test
    "tests/py/dynamo/runtime/trt_double.py",  # the Python test double's property
)
DUMMY = '''
[strategies.dummy_strategy]
trt_enum = "DummyStrategy"
names = ["off", "on"]
trt_setter = "dummy_strategy"
'''
DOUBLE_PATCH = '''

class DummyStrategy(enum.Enum):
    OFF = 0
    ON = 1


TrtDouble.DummyStrategy = DummyStrategy
IRuntimeConfig.dummy_strategy = None
_context_init = IExecutionContext.__init__


def _init_recording_dummy(self, engine, config):
    _context_init(self, engine, config)
    engine.api.journal.append(f"context dummy_strategy={config.dummy_strategy}")


IExecutionContext.__init__ = _init_recording_dummy
'''


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """A copy of the tree with the dummy setting: its definitions.toml and the double edited."""
    root = tmp_path_factory.mktemp("tree")
    shutil.copytree(REPO / "py" / "torch_tensorrt_rtx", root / "py" / "torch_tensorrt_rtx",
                    ignore=shutil.ignore_patterns("lib", "_C*.so", "__pycache__"))
    shutil.copytree(REPO / "core", root / "core", ignore=shutil.ignore_patterns("BUILD"))
    shutil.copytree(REPO / "tests" / "py" / "dynamo" / "runtime", root / "tests", ignore=shutil.ignore_patterns("data"))
    edited = {
        "py/torch_tensorrt_rtx/runtime/definitions.toml": DUMMY,
        "tests/trt_double.py": DOUBLE_PATCH,
    }
    for path, addition in edited.items():
        with open(root / path, "a", encoding="utf-8") as f:
            f.write(addition)
    return root


def test_the_count_is_at_most_four_files():
    assert len(NEW_SETTING_FILES) <= 4
    for path in NEW_SETTING_FILES:
        assert (REPO / path).is_file(), path


def test_python_runtime_takes_the_new_setting_with_no_other_edit(tree):
    code = textwrap.dedent("""
        import dataclasses, torch
        from torch_tensorrt_rtx import runtime
        from torch_tensorrt_rtx.runtime import _native, RuntimeSettings, EngineRecord, TRTModule
        from trt_double import TrtDouble, make_engine_bytes, stand_in_gpu
        assert RuntimeSettings().dummy_strategy == "off"
        try:
            RuntimeSettings(dummy_strategy="maybe")
            raise SystemExit("an unknown name was accepted")
        except ValueError as exc:
            assert "'off', 'on'" in str(exc), exc
        entries = _native.settings_entries(dataclasses.asdict(RuntimeSettings(dummy_strategy="on")))
        assert "dummy_strategy=on" in entries and _native.settings_from_entries(entries).dummy_strategy == "on"
        stand_in_gpu()
        api = TrtDouble()
        engine = make_engine_bytes({"x": ((1, 4), (2, 4), (8, 4))}, ["y"])
        module = TRTModule(EngineRecord.new(engine, name="m", input_names=["x"], output_names=["y"]), trt_api=api)
        with runtime.settings(cache_path=None, dummy_strategy="on"):
            module(torch.ones(2, 4))
        print([j for j in api.journal if j.startswith("context dummy")])
    """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tree / "py"), str(tree / "tests")]),
               TORCH_TENSORRT_RTX_RUNTIME_LIBRARY="")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "['context dummy_strategy=DummyStrategy.ON']"


CXX_CHECK = r'''
#include <cstdio>
#include "core/runtime/runtime_settings.h"
using namespace torch_tensorrt_rtx::runtime;
int main() {
  RuntimeSettings s = SettingsOverrides::Parse({"dummy_strategy=ON"}).ApplyTo(RuntimeSettings{});
  if (s.dummy_strategy != DummyStrategy::kOn) return 1;
  for (const auto& entry : ToEntries(s)) std::printf("%s\n", entry.c_str());
  std::printf("%s\n", ToString(RuntimeSettings{}).c_str());
  return 0;
}
'''


def test_cxx_runtime_settings_take_the_new_setting_with_no_other_edit(tree, tmp_path):
    compiler = shutil.which("g++")
    if compiler is None:
        pytest.skip("no g++ to compile the C++ check")
    subprocess.run([sys.executable, str(tree / "core/definitions/gen_definitions_headers.py"),
                    str(tree / "py/torch_tensorrt_rtx/runtime/definitions.py"),
                    str(tree / "py/torch_tensorrt_rtx/runtime/definitions.toml"),
                    *(str(tree / "core/definitions" / h) for h in ("engine_record_layout.h", "runtime_strategies.h",
                                                                    "cache_protocol.h", "engine_op.h"))], check=True)
    (tmp_path / "check.cpp").write_text(CXX_CHECK)
    sources = [tmp_path / "check.cpp"] + [tree / "core/runtime" / n for n in (
        "runtime_settings.cpp", "cache_file_io.cpp", "cache_file_io_posix.cpp", "log.cpp")]
    binary = tmp_path / "check"
    build = subprocess.run([compiler, "-std=c++17", "-I", str(tree), *map(str, sources), "-o", str(binary)],
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-3000:]
    run = subprocess.run([str(binary)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert "dummy_strategy=on" in lines[:-1] and lines[-1].endswith("; dummy_strategy=off"), lines
