"""Weightless engines and weight streaming on both runtimes, in real processes: one child runs a
saved program on the Python runtime (tensorrt_rtx test double), the other on the C++ runtime
(scripted backend library); both must tell the same story.

- Refit: a program packed the way compile(..., strip_engine_weights=True) packs it (each weight
  once, as a buffer, passed to the engine op as trailing inputs named in its spec) is saved and
  loaded; the engine is refitted from the program's weights before its first run and never again,
  refit_module_weights refits the new values before the next run without a new engine, and a
  missing or wrong-shaped weight fails with the same words.
- Weight streaming: runtime.weight_streaming(module) splits a budget over a program's two engines
  in proportion to their streamable bytes, drops their execution contexts, restores on exit.
The doubles compute differently (Python: relu(x) * scale; C++: 2 * x * scale), so each child reports
the factor its engine applied beyond its own unweighted output.
"""
from __future__ import annotations

import json

from cross_runtime_helpers import REPO, run

RUNTIME_TESTS = REPO / "tests" / "py" / "dynamo" / "runtime"

PRELUDE = r"""
import json, re, sys, torch
sys.path.insert(0, sys.argv[3])
import torch_tensorrt_rtx as trtx
from torch_tensorrt_rtx import runtime
from torch_tensorrt_rtx.dynamo import _engine_op
from engine_programs import TwoEngines, WeightlessProgram, streaming_bytes, weightless_bytes
which, path = sys.argv[1], sys.argv[2]
assert _engine_op.NATIVE == (which == "cxx"), f"{which}: engine op native={_engine_op.NATIVE}"
if which == "python":
    from torch_tensorrt_rtx.runtime import device
    from trt_double import TrtDouble, stand_in_device
    device._device = stand_in_device()
    device.supported_gpu.cache_clear()
    api = TrtDouble()
    _engine_op._new_python_module = lambda record, name: runtime.TRTModule(record, name, trt_api=api)
    base = torch.relu
    refits = lambda: api.journal.count("refitter.refit_cuda_engine")
    engines = lambda: api.journal.count("runtime.deserialize_cuda_engine")
    contexts = lambda: api.journal.count("engine.create_execution_context")
else:
    base = lambda x: 2 * x
    stats = lambda: list(torch.ops.ttrx_test.scripted_stats())
    refits, engines, contexts = (lambda: stats()[4]), (lambda: stats()[2]), (lambda: stats()[3])
x = torch.tensor([[0.5, 1.0, 2.0, 3.0]])
out = {}
"""

REFIT = PRELUDE + r"""
from torch_tensorrt_rtx.dynamo._refit import refit

def error_words(program):
    try:
        program(x)
    except Exception as exc:
        return re.sub(r"^.*?(TRTModule|engine) 'blk0': ", "", str(exc).splitlines()[0])
    return None

batch = torch.export.Dim("batch", min=1, max=8)
program = WeightlessProgram(weightless_bytes(which))
torch.export.save(torch.export.export(program, (torch.ones(2, 4),), dynamic_shapes=({0: batch},)), path)
loaded = trtx.load(path).module()
out["factor_first_run"] = (loaded(x) / base(x)).tolist()
loaded(torch.ones(3, 4))
out["refits_after_two_runs"] = refits()
out["refitted_names"] = refit(loaded, {"scale": torch.tensor([7.0])})
out["factor_after_refit_module_weights"] = (loaded(x) / base(x)).tolist()
loaded(x)
out["refits_after_refit_module_weights"] = refits()
out["engines"] = engines()
out["missing_weight"] = error_words(WeightlessProgram(weightless_bytes(which), names=("scale",)))
out["wrong_shape"] = error_words(WeightlessProgram(weightless_bytes(which), bias_size=3))
print(json.dumps(out))
"""

STREAMING = PRELUDE + r"""
program = TwoEngines(streaming_bytes(which, 3000), streaming_bytes(which, 1000))
program(x)
before = contexts()
with runtime.weight_streaming(program) as ws:
    out["total"], out["initial"] = ws.total_device_budget, ws.device_budget
    ws.device_budget = 400
    out["budgets"] = [engine.weight_streaming_budget_v2 for _, _, engine in ws._engines]
    out["device_budget"] = ws.device_budget
    out["automatic"] = ws.get_automatic_weight_streaming_budget()
    out["factor_with_budget"] = (program(x) / base(x)).tolist()
    out["contexts_made_after_budget"] = contexts() - before
out["restored"] = [engine.weight_streaming_budget_v2 for _, _, engine in ws._engines]
print(json.dumps(out))
"""


def _both(script, scripted_ops, tmp_path):
    results = {}
    for which, library in (("python", ""), ("cxx", str(scripted_ops))):
        done = run(script, which, tmp_path / f"{which}.pt2", RUNTIME_TESTS,
                   TORCH_TENSORRT_RTX_RUNTIME_LIBRARY=library, XDG_CACHE_HOME=str(tmp_path / "cache"))
        assert done.returncode == 0, f"{which} runtime child failed:\n{done.stderr[-4000:]}"
        results[which] = json.loads(done.stdout.strip().splitlines()[-1])
    return results["python"], results["cxx"]


def test_both_runtimes_refit_a_saved_weightless_program_the_same_way(scripted_ops, tmp_path):
    python, cxx = _both(REFIT, scripted_ops, tmp_path)
    assert python == cxx
    assert python["factor_first_run"] == [[2.0] * 4]  # the program's scale buffer, refitted
    assert python["refits_after_two_runs"] == 1  # before the first run only
    assert python["refitted_names"] == ["scale"]
    assert python["factor_after_refit_module_weights"] == [[7.0] * 4]
    assert python["refits_after_refit_module_weights"] == 2 and python["engines"] == 1  # no rebuild
    assert python["missing_weight"] == ("the engine still needs weights ['bias'] (1 missing); the program does "
                                        "not provide them")
    assert python["wrong_shape"] == ("TensorRT-RTX refused weight 'bias' (shape (3,), torch.float32); expected "
                                     "the shape and dtype the engine was built with")


def test_both_runtimes_split_a_weight_streaming_budget_the_same_way(scripted_ops, tmp_path):
    python, cxx = _both(STREAMING, scripted_ops, tmp_path)
    assert python == cxx
    assert (python["total"], python["initial"], python["automatic"]) == (4000, 4000, 2000)
    assert python["budgets"] == [300, 100] and python["device_budget"] == 400  # in proportion, as upstream
    assert python["factor_with_budget"] == [[2.0] * 4]  # both engines still run
    assert python["contexts_made_after_budget"] == 2  # each engine's context was dropped and made again
    assert python["restored"] == [3000, 1000]


SERVING_HANDLE = PRELUDE + r"""
from torch_tensorrt_rtx.runtime import EngineRecord
record = EngineRecord.new(streaming_bytes(which, 3000), name="blk0", input_names=["x"], output_names=["y"])
engine = torch.classes.tensorrt.Engine(record.to_list())
out["figures"] = [engine.streamable_weights_size(), engine.weight_streaming_budget(),
                  engine.weight_streaming_automatic_budget()]
torch.ops.tensorrt.execute_engine([x], engine)
engine.set_weight_streaming_budget(1000)
out["budget"] = engine.weight_streaming_budget()
out["factor"] = (torch.ops.tensorrt.execute_engine([x], engine)[0] / base(x)).tolist()
out["contexts"] = contexts()
try:
    engine.set_weight_streaming_budget(-1)
except RuntimeError as exc:
    out["negative"] = str(exc).splitlines()[0]
weightless = EngineRecord.new(weightless_bytes(which), name="blk1", input_names=["x"], output_names=["y"])
try:
    torch.ops.tensorrt.execute_engine([x, torch.ones(1), torch.zeros(4)],
                                      torch.classes.tensorrt.Engine(weightless.to_list()))
except RuntimeError as exc:
    out["weights_without_names"] = str(exc).splitlines()[0]
print(json.dumps(out))
"""


def test_the_cxx_serving_handle_takes_a_budget(scripted_ops, tmp_path):
    done = run(SERVING_HANDLE, "cxx", tmp_path / "unused.pt2", RUNTIME_TESTS,
               TORCH_TENSORRT_RTX_RUNTIME_LIBRARY=str(scripted_ops), XDG_CACHE_HOME=str(tmp_path / "cache"))
    assert done.returncode == 0, done.stderr[-4000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["figures"] == [3000, 3000, 1500]
    assert out["budget"] == 1000 and out["factor"] == [[1.0] * 4]
    assert out["contexts"] == 2  # dropped by the budget change, made again by the next run
    assert "weight streaming budget must be >= 0 bytes, got -1" in out["negative"]
    assert "got 2 trailing weight inputs but no names for them" in out["weights_without_names"]
