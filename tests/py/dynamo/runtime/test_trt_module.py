"""TRTModule plumbing through the tensorrt_rtx test double (no GPU)."""
from __future__ import annotations

import gc
import logging
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from torch_tensorrt_rtx import runtime
from torch_tensorrt_rtx.runtime import (EngineRecord, EngineRecordError, InputShapeError,
                                        RTXGPUUnavailableError, RuntimeCacheFile, TRTModule,
                                        engine_key)

sys.path.insert(0, str(Path(__file__).parent))
from trt_double import TrtDouble, make_engine_bytes  # noqa: E402

ENGINE = make_engine_bytes({"x": ((1, 4), (2, 4), (8, 4))}, ["y"])


def _module(api=None, engine=ENGINE, name="blk0"):
    record = EngineRecord.new(engine, name=name, input_names=["x"], output_names=["y"])
    return TRTModule(record, trt_api=api or TrtDouble())


def _creations(api):
    return api.journal.count("engine.create_execution_context")


def test_construction_is_lazy():
    api = TrtDouble()
    mod = _module(api)
    assert api.journal == []
    mod(torch.ones(2, 4))
    assert api.journal[:1] == ["runtime.deserialize_cuda_engine"] and _creations(api) == 1
    mod(torch.ones(3, 4))
    assert api.journal.count("runtime.deserialize_cuda_engine") == 1 and _creations(api) == 1


def test_forward_runs_engine_and_shapes_come_from_context():
    mod = _module()
    x = torch.tensor([[-1.0, 2.0, -3.0, 4.0]] * 3)
    y = mod(x)
    assert y.shape == (3, 4)
    torch.testing.assert_close(y, torch.relu(x))


def test_context_created_once_with_runtime_cache_and_every_strategy(tmp_path):
    api = TrtDouble()
    mod = _module(api)
    with runtime.settings(cache_path=tmp_path / "c.bin", kernel_strategy="eager",
                          allocation_strategy="on_profile_change"):
        mod(torch.ones(2, 4))
    (ctx,) = api.engines[0].contexts
    assert ctx.kernel_strategy == api.DynamicShapesKernelSpecializationStrategy.EAGER
    assert ctx.cuda_graph_strategy == api.CudaGraphStrategy.DISABLED
    assert ctx.allocation_strategy == api.ExecutionContextAllocationStrategy.ON_PROFILE_CHANGE
    assert ctx.runtime_cache is not None
    # config + cache are set up before the context is created
    i = api.journal.index("engine.create_execution_context")
    assert "config.set_runtime_cache" in api.journal[:i]


def test_settings_change_recreates_lazily_saving_cache_first(tmp_path):
    api = TrtDouble()
    mod = _module(api)
    path = tmp_path / "c.bin"
    with runtime.settings(cache_path=path):
        mod(torch.ones(2, 4))  # JITs "relu(2, 4)" into the cache
        assert not path.exists()
        with runtime.settings(kernel_strategy="none"):
            assert _creations(api) == 1  # nothing happens until the next forward
            mod(torch.ones(2, 4))
            assert _creations(api) == 2
            second = api.journal.index("engine.create_execution_context", 
                                       api.journal.index("engine.create_execution_context") + 1)
            assert "cache.serialize" in api.journal[:second]
            assert path.exists()  # saved before the recreation
            mod(torch.ones(5, 4))
        mod(torch.ones(2, 4))  # scope left: back to lazy -> recreated again
    strategies = [c.kernel_strategy.name for c in api.engines[0].contexts]
    assert strategies == ["LAZY", "NONE", "LAZY"]
    assert all(c.runtime_cache is api.engines[0].contexts[0].runtime_cache
               for c in api.engines[0].contexts)
    cache = api.engines[0].contexts[0].runtime_cache
    fresh = TrtDouble().Runtime(None).deserialize_cuda_engine(ENGINE).create_runtime_config() \
        .create_runtime_cache()
    assert RuntimeCacheFile(path).try_load(engine_key(ENGINE), fresh.deserialize)
    assert set(fresh.kernels) == set(cache.kernels) == {"relu(2, 4)", "relu(5, 4)"}


def test_per_module_override_beats_scope_and_is_restored():
    api = TrtDouble()
    mod = _module(api)
    with runtime.settings(kernel_strategy="eager"):
        with mod.runtime_settings(kernel_strategy="none"):
            assert mod.effective_settings().kernel_strategy == "none"
            mod(torch.ones(2, 4))
        assert mod.effective_settings().kernel_strategy == "eager"
        mod(torch.ones(2, 4))
    mod.set_runtime_settings(cuda_graph_strategy="whole_graph_capture", kernel_strategy="eager")
    mod(torch.ones(2, 4))
    got = [(c.kernel_strategy.name, c.cuda_graph_strategy.name) for c in api.engines[0].contexts]
    assert got == [("NONE", "DISABLED"), ("EAGER", "DISABLED"), ("EAGER", "WHOLE_GRAPH_CAPTURE")]
    with pytest.raises(ValueError, match="'lazy', 'eager', 'none'"):
        mod.set_runtime_settings(kernel_strategy="fast")
    assert mod.effective_settings().kernel_strategy == "eager"


def test_cache_path_change_saves_old_and_loads_new(tmp_path):
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    seeded = _module()
    with runtime.settings(cache_path=b):
        seeded(torch.ones(7, 4))
    assert b.exists()
    api = TrtDouble()
    mod = _module(api)
    with runtime.settings(cache_path=a):
        mod(torch.ones(2, 4))
    with runtime.settings(cache_path=b):
        mod(torch.ones(2, 4))
    assert a.exists()
    kernels = [set(c.runtime_cache.kernels) for c in api.engines[0].contexts]
    assert kernels[0] == {"relu(2, 4)"} and "relu(7, 4)" in kernels[1]


def test_cache_saved_on_scope_exit_explicit_save_and_deletion(tmp_path):
    path = tmp_path / "c.bin"
    mod = _module()
    assert mod.save_runtime_cache() is False  # nothing loaded yet: nothing to save
    with runtime.settings(cache_path=path):
        mod(torch.ones(2, 4))
    assert path.exists()  # scope exit saved
    first = path.read_bytes()
    with runtime.settings(cache_path=path):
        mod(torch.ones(3, 4))
        assert mod.save_runtime_cache() is True
        assert mod.save_runtime_cache() is False  # unchanged: file left alone
    assert path.read_bytes() != first
    second = path.read_bytes()
    with runtime.settings(cache_path=path):
        mod(torch.ones(4, 4))
        path.unlink()
        del mod  # the last reference: garbage collection saves the cache
        gc.collect()
        assert path.exists() and path.read_bytes() != second


def test_del_never_raises(tmp_path, caplog, monkeypatch):
    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    mod = _module()
    with runtime.settings(cache_path=blocker / "c.bin"):
        mod(torch.ones(2, 4))
        del mod  # unwritable: the save at collection warns and raises nothing
        gc.collect()
    assert unraisable == []
    assert any("cannot write" in r.getMessage() for r in caplog.records)


def test_input_shape_outside_profile_names_input_dim_and_range():
    mod = _module()
    with pytest.raises(InputShapeError, match=r"'x' dimension 0 is 9, allowed range is \[1, 8\]"):
        mod(torch.ones(9, 4))
    with pytest.raises(InputShapeError, match=r"'x' dimension 1 is 5, allowed range is \[4, 4\]"):
        mod(torch.ones(2, 5))
    with pytest.raises(InputShapeError, match="rank 1"):
        mod(torch.ones(4))
    with pytest.raises(InputShapeError, match="expects 1 inputs"):
        mod(torch.ones(2, 4), torch.ones(2, 4))
    with pytest.raises(TypeError, match="dtype torch.float16, expected torch.float32"):
        mod(torch.ones(2, 4, dtype=torch.float16))


def test_whole_graph_capture_with_lazy_and_dynamic_inputs_warns():
    mod = _module()
    with runtime.settings(cuda_graph_strategy="whole_graph_capture"):
        with pytest.warns(RuntimeWarning, match="blk0.*whole_graph_capture"):
            mod(torch.ones(2, 4))


def test_garbage_engine_bytes_fail_at_deserialization_naming_the_engine():
    mod = _module(engine=b"\x7fELF not an engine", name="junk")
    with pytest.raises(EngineRecordError, match="'junk'.*not a serialized TensorRT-RTX engine"):
        mod(torch.ones(2, 4))
    api = TrtDouble()
    api.Runtime = lambda logger: type("R", (), {  # a runtime with no cheap header check
        "deserialize_cuda_engine": lambda self, b: None})()
    with pytest.raises(EngineRecordError, match="could not deserialize"):
        _module(api)(torch.ones(2, 4))


def test_record_binding_names_must_exist_in_engine():
    record = EngineRecord.new(ENGINE, name="m", input_names=["x"], output_names=["z"])
    with pytest.raises(EngineRecordError, match=r"\['z'\]"):
        TRTModule(record, trt_api=TrtDouble()).ensure_context()


def test_pickle_rebuilds_from_record_with_overrides():
    mod = _module()
    mod.set_runtime_settings(kernel_strategy="eager")
    clone = pickle.loads(pickle.dumps(mod))
    assert isinstance(clone, TRTModule) and clone.name == "blk0"
    assert bytes(clone.record.engine) == ENGINE and clone.record.input_names == ["x"]
    assert clone.effective_settings().kernel_strategy == "eager"


@pytest.mark.real_device
def test_no_gpu_forward_raises_one_clear_error(tiny_engine_bytes):
    if runtime.supported_gpu().supported:
        pytest.skip("this machine has a supported GPU")
    record = EngineRecord.new(tiny_engine_bytes, name="real", input_names=["x"],
                              output_names=["y"])
    mod = TRTModule(record)  # the real tensorrt_rtx
    with pytest.raises(RTXGPUUnavailableError) as info:
        mod(torch.ones(2, 4))
    msg = str(info.value)
    for part in ("'real'", "8.0, 8.6, 8.9, 12.0, 12.1 or newer", "torch_tensorrt_rtx.verify", "found:"):
        assert part in msg


def _run(code: str, tmp_path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=120, cwd=str(Path(__file__).parent),
                          env={"XDG_CACHE_HOME": str(tmp_path / "xdg"), "PATH": "/usr/bin"})


def test_import_does_not_touch_cuda(tmp_path):
    r = _run("""
        import sys, torch_tensorrt_rtx.runtime
        print('tensorrt_rtx' in sys.modules, torch_tensorrt_rtx.runtime.device.supported_gpu.cache_info().currsize)
        import torch; print(torch.cuda.is_initialized())
    """, tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "0", "False"]


def test_cache_saved_at_interpreter_exit(tmp_path):
    path = tmp_path / "exit.bin"
    r = _run(f"""
        import torch
        from torch_tensorrt_rtx import runtime
        from trt_double import TrtDouble, make_engine_bytes
        eng = make_engine_bytes({{"x": ((1, 4), (2, 4), (8, 4))}}, ["y"])
        rec = runtime.EngineRecord.new(eng, name="m", input_names=["x"], output_names=["y"])
        keep = runtime.TRTModule(rec, trt_api=TrtDouble())
        keep.set_runtime_settings(cache_path={str(path)!r})
        keep(torch.ones(2, 4))
        import os; print(os.path.exists({str(path)!r}))
    """, tmp_path)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert r.stdout.strip() == "False" and path.exists()  # written by the exit hook


# -- the shared runtime cache file: every engine keeps its own entry ---------------------
def _engines(n):
    # Distinct engines (distinct bytes, so distinct keys), each with its own input range.
    return [make_engine_bytes({"x": ((1, 4), (2 + i, 4), (8 + i, 4))}, ["y"]) for i in range(n)]


def _jit_count(api):
    return api.journal.count("jit")


def test_two_engines_in_one_process_keep_each_others_kernels(tmp_path):
    path = tmp_path / "c.bin"
    first, second = _engines(2)
    api = TrtDouble()
    with runtime.settings(cache_path=path):
        _module(api, first, "a")(torch.ones(2, 4))
        _module(api, second, "b")(torch.ones(3, 4))
    store = RuntimeCacheFile(path)
    assert {e.key for e in store.try_read_index()} == {engine_key(first), engine_key(second)}
    # A fresh "process" (new modules, new double) finds both engines' kernels.
    fresh = TrtDouble()
    with runtime.settings(cache_path=path):
        _module(fresh, first, "a")(torch.ones(2, 4))
        _module(fresh, second, "b")(torch.ones(3, 4))
    assert _jit_count(fresh) == 0, fresh.journal


def test_a_four_engine_model_converges_after_one_run_and_then_never_writes(tmp_path):
    path = tmp_path / "c.bin"
    engines = _engines(4)

    def run_once():
        api = TrtDouble()
        with runtime.settings(cache_path=path):
            for i, engine in enumerate(engines):
                _module(api, engine, f"blk{i}")(torch.ones(2, 4))
        return api

    first = run_once()
    assert _jit_count(first) == 4
    stamp = path.stat()
    second = run_once()
    assert _jit_count(second) == 0, "the second run JIT-compiled kernels the first had saved"
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (stamp.st_ino, stamp.st_mtime_ns), \
        "the file was rewritten although no entry changed"


def test_cache_path_none_disables_load_and_save(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    api = TrtDouble()
    mod = _module(api)
    with runtime.settings(cache_path=None):
        mod(torch.ones(2, 4))
        assert mod.save_runtime_cache() is False
    assert not (tmp_path / "xdg").exists() or not any((tmp_path / "xdg").rglob("*.bin"))
    assert "cache.deserialize" not in api.journal
