"""The engine op implemented by the C++ runtime library (scripted test backend), in a child
process that loads that library (one process runs every scenario, in order): saved programs run with no Python work per call, own their
engines and contexts, and follow settings scopes and per-engine overrides."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine_programs import REPO, SCRIPTED_OPS

HERE = Path(__file__).parent

PRELUDE = """
import gc, json, sys, torch
import torch_tensorrt_rtx as trtx
from torch_tensorrt_rtx import runtime
from torch_tensorrt_rtx.dynamo import _engine_op
from engine_programs import export, scripted_record
assert _engine_op.NATIVE, "the scripted library did not register the op"
stats = lambda: dict(zip(["live_engines", "live_contexts", "deserializations", "contexts"],
                         torch.ops.ttrx_test.scripted_stats()))
path = sys.argv[1]
torch.export.save(export(scripted_record()), path)
engine = lambda module: next(iter(trtx.program_engines(module).values()))
import dataclasses
from torch_tensorrt_rtx.runtime import _native
# [cache_path (None: disabled), kernel, cuda graph, allocation strategy] of the engine's context
applied = lambda module: list(dataclasses.astuple(_native.settings_from_entries(
    torch.ops.tensorrt.record_engine_applied_settings(module.blk0_engine))))
"""


CHILD = PRELUDE + """
results = {}
def test_loaded_program_runs_on_cxx_and_frees_its_engine():
    out = {}
    module = trtx.load(path).module()
    x = torch.tensor([[-1.0, 0.0, 2.0, 3.0]])
    out["y"] = module(x).tolist()
    module(torch.ones(3, 4))
    out["after_calls"] = stats()
    del module
    gc.collect()
    out["after_del"] = stats()
    results['test_loaded_program_runs_on_cxx_and_frees_its_engine'] = out

def test_engine_call_runs_no_python():
    out = {}
    module = trtx.load(path).module()
    x = torch.ones(2, 4)
    module(x)
    calls = []
    def profile(frame, event, arg):
        if event in ("call", "c_call"):
            calls.append(frame.f_code.co_filename if event == "call" else getattr(arg, "__qualname__", str(arg)))
    op, record, spec = torch.ops.tensorrt_rtx.execute_engine.default, module.blk0_engine, module.graph
    spec = next(n.args[2] for n in module.graph.nodes if n.target is op)
    sys.setprofile(profile)
    with runtime.settings(kernel_strategy="eager"):
        pass
    sys.setprofile(None)
    scope_calls = [c for c in calls if "torch_tensorrt_rtx" in c]
    calls.clear()
    sys.setprofile(profile)
    op([x], record, spec)
    sys.setprofile(None)
    out["python_frames_in_call"] = [c for c in calls if c.endswith(".py")]
    out["scope_touches_our_python"] = bool(scope_calls)
    results['test_engine_call_runs_no_python'] = out

def test_two_programs_get_independent_engines_contexts_and_overrides():
    out = {}
    a, b = trtx.load(path).module(), trtx.load(path).module()
    x = torch.ones(2, 4)
    a(x), b(x)
    out["both"] = stats()
    engine(a).set_runtime_settings(kernel_strategy="none")
    a(x), b(x)
    out["a"], out["b"] = applied(a), applied(b)
    del a
    gc.collect()
    out["after_del_a"] = stats()
    b(x)
    results['test_two_programs_get_independent_engines_contexts_and_overrides'] = out

def test_scopes_reach_cxx_once_and_revert():
    out = {}
    contexts_before = stats()["contexts"]
    module = trtx.load(path).module()
    x = torch.ones(2, 4)
    cache = path + ".cache"
    with runtime.settings(cache_path=cache, kernel_strategy="eager"):
        module(x)
        out["inside"] = applied(module)
        with engine(module).runtime_settings(allocation_strategy="on_profile_change"):
            module(x)
            out["override"] = applied(module)
        module(x)
        out["override_gone"] = applied(module)
    import os
    out["saved_at_exit"] = os.path.getsize(cache) > 0
    module(x)
    out["outside"] = applied(module)
    out["contexts"] = stats()["contexts"] - contexts_before
    with runtime.settings(cache_path=None):
        module(x)
        out["scope_disabled"] = applied(module)
    engine(module).set_runtime_settings(cache_path=None)
    module(x)
    out["override_disabled"] = applied(module)
    out["context_settings"] = str(engine(module).context_settings())
    results['test_scopes_reach_cxx_once_and_revert'] = out

def test_verify_intercepts_the_native_op():
    out = {}
    module = trtx.load(path).module()
    seen = []
    def hook(spec, inputs, record):
        seen.append((spec.name, [tuple(t.shape) for t in inputs]))
        return [inputs[0] * 0]
    with _engine_op.intercept_engines(hook):
        out["intercepted"] = module(torch.ones(2, 4)).tolist()
        # Another thread, outside the scope, reaches the C++ kernel past the interceptor.
        import threading
        other = []
        worker = threading.Thread(target=lambda: other.append(module(torch.ones(1, 4)).tolist()))
        worker.start()
        worker.join()
        out["other_thread"] = other
    out["seen"] = seen
    out["after"] = module(torch.ones(1, 4)).tolist()
    results['test_verify_intercepts_the_native_op'] = out

def test_data_dependent_output_runs_on_cxx():
    from torch_tensorrt_rtx.dynamo._engine_op import OutputSpec, TensorSpec
    from torch_tensorrt_rtx.runtime import EngineRecord
    # the scripted backend's "dd_*" outputs are 2 * the positive input elements, sized during the run
    record = EngineRecord.new(b"SCRIPTED-ENGINE v1\\ninput x\\noutput dd_y\\n", name="dd", input_names=["x"],
                              output_names=["dd_y"])
    spec = OutputSpec("dd", "sha", [TensorSpec("float32", [4])], [TensorSpec("float32", [None])],
                      ["y:nonzero"]).to_json()
    class Program(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("dd_engine", record.to_tensor().clone())
        def forward(self, x):
            return torch.ops.tensorrt_rtx.execute_engine([x], self.dd_engine, spec)[0] + 1
    torch.export.save(torch.export.export(Program(), (torch.ones(4),)), path + ".dd.pt2")
    module = trtx.load(path + ".dd.pt2").module()
    results['test_data_dependent_output_runs_on_cxx'] = {
        "some": module(torch.tensor([-1.0, 2.0, 0.0, 3.0])).tolist(), "none": module(torch.full((4,), -1.0)).tolist()}

for name, section in list(globals().items()):
    if name.startswith("test_"):
        section()
        gc.collect()
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def child(tmp_path_factory):
    """Runs every scenario below in one child process that loaded the scripted library."""
    if not SCRIPTED_OPS.is_file():
        pytest.skip(f"scripted-backend op library not built ({SCRIPTED_OPS}): "
                    "bazel build //tests/core/runtime:libscripted_runtime_ops.so")
    tmp_path = tmp_path_factory.mktemp("native")
    env = dict(os.environ, TORCH_TENSORRT_RTX_RUNTIME_LIBRARY=str(SCRIPTED_OPS),
               PYTHONPATH=os.pathsep.join([str(REPO / "py"), str(HERE), os.environ.get("PYTHONPATH", "")]),
               XDG_CACHE_HOME=str(tmp_path / "xdg"))
    result = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "program.pt2")],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp_path, json.loads(result.stdout.strip().splitlines()[-1])


def test_loaded_program_runs_on_cxx_and_frees_its_engine(child):
    tmp_path, results = child
    out = results['test_loaded_program_runs_on_cxx_and_frees_its_engine']
    assert out["y"] == [[0.0, 6.0, 18.0, 24.0]]  # (x + 1) * 2 * 3
    assert out["after_calls"] == {"live_engines": 1, "live_contexts": 1, "deserializations": 1, "contexts": 1}
    assert out["after_del"]["live_engines"] == 0 and out["after_del"]["live_contexts"] == 0


def test_engine_call_runs_no_python(child):
    tmp_path, results = child
    out = results['test_engine_call_runs_no_python']
    # OpOverload.__call__ (torch/_ops.py) is torch's own entry from Python; nothing else runs.
    assert [f for f in out["python_frames_in_call"] if not f.endswith("torch/_ops.py")] == []
    assert out["scope_touches_our_python"]


def test_two_programs_get_independent_engines_contexts_and_overrides(child):
    tmp_path, results = child
    out = results['test_two_programs_get_independent_engines_contexts_and_overrides']
    assert out["both"]["live_engines"] == 2 and out["both"]["live_contexts"] == 2
    assert out["a"][1] == "none" and out["b"][1] == "lazy"
    assert out["after_del_a"]["live_engines"] == 1


def test_scopes_reach_cxx_once_and_revert(child):
    tmp_path, results = child
    out = results['test_scopes_reach_cxx_once_and_revert']
    cache = str(tmp_path / "program.pt2.cache")
    assert out["inside"] == [cache, "eager", "disabled", "static"]
    assert out["override"] == [cache, "eager", "disabled", "on_profile_change"]
    assert out["override_gone"] == out["inside"]
    assert out["saved_at_exit"]
    assert out["outside"] == ["", "lazy", "disabled", "static"]
    assert out["contexts"] == 4  # one per distinct settings, none per call
    # cache_path=None disables the runtime cache, as a scope or as a per-engine override.
    assert out["scope_disabled"] == out["override_disabled"] == [None, "lazy", "disabled", "static"]
    assert "cache_path=None" in out["context_settings"]


def test_verify_intercepts_the_native_op(child):
    tmp_path, results = child
    out = results['test_verify_intercepts_the_native_op']
    assert out["intercepted"] == [[0.0] * 4] * 2 and out["seen"] == [["blk0", [[2, 4]]]]
    assert out["other_thread"] == [[[12.0] * 4]]
    assert out["after"] == [[12.0] * 4]


def test_data_dependent_output_runs_on_cxx(child):
    tmp_path, results = child
    out = results['test_data_dependent_output_runs_on_cxx']
    assert out == {"some": [5.0, 7.0], "none": []}  # 2 * (2, 3) + 1; no positive element: empty
