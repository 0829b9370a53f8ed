"""One engine-run contract: the Python runtime (TRTModule, through the tensorrt_rtx test double
and its stand-in GPU) and the C++ runtime (RecordEngine, through the scripted backend, in a child
process) check the same things and say the same words. Each case runs through both; messages
are compared after their opening "<who is running>: " (TRTModule 'blk0' / engine 'blk0')."""
from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import pytest
import torch

from torch_tensorrt_rtx import runtime
from torch_tensorrt_rtx.runtime import EngineRecord, InputShapeError, RTXGPUUnavailableError, TRTModule

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dynamo" / "runtime"))
import trt_double  # noqa: E402
from scripted_child import run_scripted_child  # noqa: E402

TARGETS = ["SM86", "SM89"]
DOUBLE_ENGINE = trt_double.make_engine_bytes({"x": ((1, 4), (2, 4), (8, 4))}, ["y"])
SCRIPTED_ENGINE = "SCRIPTED-ENGINE v1\noutput y\ninput x 1x4 8x4\n"

# Each case: the scripted engine's bytes, the settings entries of the C++ scope, the input shape.
CXX_CASES = {
    "profile_dim": (SCRIPTED_ENGINE, [], [9, 4]),
    "profile_rank": (SCRIPTED_ENGINE, [], [4]),
    "malformed": ("garbage", [], [2, 4]),
    "unsupported_cc": (SCRIPTED_ENGINE + "verdict unsupported_cc\n", [], [2, 4]),
    "user_managed": (SCRIPTED_ENGINE, ["allocation_strategy=user_managed"], [2, 4]),
    "lazy_capture": (SCRIPTED_ENGINE, ["cuda_graph_strategy=whole_graph_capture"], [2, 4]),
}

CHILD = """
import json
from torch_tensorrt_rtx.runtime import EngineRecord
cases, out = json.loads(sys.argv[1]), {}
for name, (engine, scope, shape) in cases.items():
    record = EngineRecord.new(engine.encode(), name="blk0", input_names=["x"], output_names=["y"],
                              compute_capabilities=%r)
    torch.ops.tensorrt.set_scope_settings(scope)
    sys.stderr.write("CASE " + name + "\\n"); sys.stderr.flush()
    try:
        _, outputs, _ = torch.ops.ttrx_test.run_packed_engine([torch.ones(shape)], record.to_tensor())
        out[name] = {"ok": outputs[0].tolist()}
    except RuntimeError as exc:
        out[name] = {"error": str(exc).splitlines()[0]}
print(json.dumps(out))
""" % (TARGETS,)


@pytest.fixture(scope="module")
def cxx():
    """{case: {"ok": outputs} or {"error": message}, "_stderr": {case: [warnings logged]}}"""
    result = run_scripted_child(CHILD, json.dumps(CXX_CASES))
    out = json.loads(result.stdout.strip().splitlines()[-1])
    logged, case = {}, None
    for line in result.stderr.splitlines():
        if line.startswith("CASE "):
            case = line[5:]
        elif case and line.startswith("[torch_tensorrt_rtx] WARNING: "):
            logged.setdefault(case, []).append(line.split(": ", 1)[1])
    out["_stderr"] = logged
    return out


def _module(engine=DOUBLE_ENGINE, api=None):
    record = EngineRecord.new(engine, name="blk0", input_names=["x"], output_names=["y"], compute_capabilities=TARGETS)
    return TRTModule(record, trt_api=api or trt_double.TrtDouble())


def _python_error(case: str, error: type) -> str:
    engine, shape = DOUBLE_ENGINE, CXX_CASES[case][2]
    api = trt_double.TrtDouble()
    if case == "malformed":
        engine = b"garbage"
    if case == "unsupported_cc":
        api.Runtime = lambda logger: type("R", (trt_double.Runtime,), {"get_engine_validity": lambda self, b: (
            trt_double.EngineValidity.INVALID, int(trt_double.EngineInvalidityDiagnostics.UNSUPPORTED_CC))})(api, logger)
    with pytest.raises(error) as info:
        _module(engine, api)(torch.ones(shape))
    return str(info.value)


def _after_who(message: str) -> str:
    who, _, rest = message.partition(": ")
    assert who in ("TRTModule 'blk0'", "engine 'blk0'"), message
    return rest


@pytest.fixture(autouse=True)
def _stand_in_gpu():
    restore = trt_double.stand_in_gpu((8, 6))  # a GPU the records name
    yield
    restore()


@pytest.mark.parametrize("case, error", [("profile_dim", InputShapeError), ("profile_rank", InputShapeError),
                                         ("malformed", ValueError), ("unsupported_cc", RTXGPUUnavailableError)])
def test_both_runtimes_refuse_with_the_same_message(cxx, case, error):
    python = _python_error(case, error)
    assert "error" in cxx[case], cxx[case]
    assert _after_who(python) == _after_who(cxx[case]["error"])
    assert python.startswith("TRTModule 'blk0': ") and cxx[case]["error"].startswith("engine 'blk0': ")


def test_profile_error_names_the_dim_and_its_range(cxx):
    assert _after_who(cxx["profile_dim"]["error"]) == (
        "input 'x' dimension 0 is 9, allowed range is [1, 8] (optimization profile 0, shape (9, 4))")


def test_unsupported_gpu_names_the_engines_targets(cxx):
    assert "it was built for SM86, SM89." in cxx["unsupported_cc"]["error"]


def test_user_managed_allocation_gets_scratch_memory_in_both(cxx):
    # Both test backends fail the enqueue of a user_managed context that was lent no memory.
    assert cxx["user_managed"] == {"ok": [[2.0] * 4] * 2}
    api = trt_double.TrtDouble()
    module = _module(api=api)
    with runtime.settings(allocation_strategy="user_managed"):
        assert module(torch.ones(2, 4)).tolist() == [[1.0] * 4] * 2
    assert "context.set_device_memory 256" in api.journal


def test_both_runtimes_warn_on_whole_graph_capture_with_lazy_kernels(cxx):
    module = _module()
    with runtime.settings(cuda_graph_strategy="whole_graph_capture"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module(torch.ones(2, 4))
    python = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(python) == 1 and cxx["lazy_capture"]["ok"] == [[2.0] * 4] * 2
    assert [_after_who(m) for m in cxx["_stderr"]["lazy_capture"]] == [_after_who(python[0])]
    assert "lazy_capture" in cxx["_stderr"] and not cxx["_stderr"].get("user_managed")
