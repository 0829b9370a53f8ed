"""Names that upstream Torch-TensorRT's own examples use (found by scripts/upstream_examples.py),
written upstream's way with only the import changed. Runs on a CPU."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch

import torch_tensorrt_rtx as torch_tensorrt
from tests.py.upstream.test_upstream_snippets import MLP

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


def _run_python(code: str, extra_path: str = "") -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (extra_path, *sys.path) if p)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env,
                          timeout=120)


def test_import_tensorrt_gives_tensorrt_rtx_like_upstreams_rtx_wheel():
    # converter_overloading.py, engine_converter_binding_names.py: import torch_tensorrt, then import tensorrt as trt
    done = _run_python("""
        import sys
        import torch_tensorrt_rtx as torch_tensorrt
        assert "tensorrt" not in sys.modules and "tensorrt_rtx" not in sys.modules, "nothing imported eagerly"
        import tensorrt as trt
        import tensorrt_rtx
        assert trt is tensorrt_rtx, trt
        assert trt.__spec__.name == "tensorrt_rtx"
        network_flag = trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED
        print("ok", network_flag)
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok")


def test_an_installed_tensorrt_is_never_shadowed(tmp_path):
    (tmp_path / "tensorrt").mkdir()
    (tmp_path / "tensorrt" / "__init__.py").write_text("STANDARD = True\n")
    done = _run_python("""
        import torch_tensorrt_rtx
        import tensorrt
        print(getattr(tensorrt, "STANDARD", False))
    """, extra_path=str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"


class SharedDimEncoder(torch.nn.Module):  # shared_dynamic_dims_example.py
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(1024, 64)
        self.proj = torch.nn.Linear(64, 64)

    def forward(self, input_ids, attention_mask):
        x = self.embed(input_ids)
        return self.proj(x * attention_mask.unsqueeze(-1).to(x.dtype))


def _ids(name):
    return torch_tensorrt.Input(min_shape=(1, 16), opt_shape=(4, 16), max_shape=(8, 16), dtype=torch.int64,
                                name=name, shared_dims={0: "B"})


def test_input_shared_dims_share_one_dynamic_dim():
    model = SharedDimEncoder().eval()
    trt_model = torch_tensorrt.compile(model, ir="dynamo", inputs=[_ids("input_ids"), _ids("attention_mask")],
                                       min_block_size=1, cache_built_engines=False, reuse_cached_engines=False)
    ids, mask = torch.randint(0, 1024, (2, 16)), torch.ones(2, 16, dtype=torch.int64)
    assert torch_tensorrt.verify(trt_model, ids, mask, reference_module=model).ok
    trt_kwargs = torch_tensorrt.compile(model, ir="dynamo", min_block_size=1,
                                        kwarg_inputs={"input_ids": _ids("input_ids"),
                                                      "attention_mask": _ids("attention_mask")})
    assert trt_kwargs.compile_report is not None
    assert _ids("x").dim_names == ("B", None)


def test_input_shared_dims_refusals():
    with pytest.raises(ValueError, match="out of range"):
        torch_tensorrt.Input(min_shape=(1, 16), opt_shape=(4, 16), max_shape=(8, 16), shared_dims={2: "B"})
    with pytest.raises(ValueError, match="dim_names and 'B' by shared_dims"):
        torch_tensorrt.Input(min_shape=(1, 16), opt_shape=(4, 16), max_shape=(8, 16), dim_names=("batch", None),
                             shared_dims={0: "B"})
    with pytest.raises(ValueError, match="static"):  # a shared name on a static axis
        torch_tensorrt.Input(min_shape=(1, 16), opt_shape=(4, 16), max_shape=(8, 16), shared_dims={1: "S"})


def test_dynamo_utils_cosine_similarity():
    from torch_tensorrt_rtx.dynamo.utils import COSINE_THRESHOLD, cosine_similarity

    x = torch.randn(4, 8)
    assert cosine_similarity(x, x.clone()) == 1.0
    assert cosine_similarity(torch.zeros(3), torch.zeros(3)) == 1.0
    assert cosine_similarity(x, -x) < -0.99
    assert cosine_similarity(x, x + 1e-4 * torch.randn(4, 8)) > COSINE_THRESHOLD
    with pytest.raises(ValueError, match="elements"):
        cosine_similarity(x, torch.randn(3))
    assert torch_tensorrt.dynamo.utils.COSINE_THRESHOLD == COSINE_THRESHOLD


def test_save_takes_upstreams_file_path(tmp_path):
    # torchtrt_aoti_example/model.py: torch_tensorrt.save(module, file_path=..., output_format=..., arg_inputs=...)
    model, x = MLP().eval(), torch.randn(4, 16)
    trt_gm = torch_tensorrt.compile(model, ir="dynamo", inputs=[x], min_block_size=1)
    torch_tensorrt.save(trt_gm, file_path=str(tmp_path / "model.pt2"), retrace=True, arg_inputs=[x])
    assert torch_tensorrt.verify(torch_tensorrt.load(tmp_path / "model.pt2").module(), x, reference_module=model).ok
    with pytest.raises(TypeError, match="path once"):
        torch_tensorrt.save(trt_gm, tmp_path / "a.pt2", file_path=tmp_path / "b.pt2")
    with pytest.raises(TypeError, match="path once"):
        torch_tensorrt.save(trt_gm)


def test_mutable_module_save_and_load_keep_the_compiled_program(tmp_path):
    model, x = MLP().eval(), torch.randn(4, 16)
    mutable = torch_tensorrt.MutableTorchTensorRTModule(model, min_block_size=1)
    torch_tensorrt.MutableTorchTensorRTModule.save(mutable, tmp_path / "empty.pkl")  # before any call: no program
    assert torch_tensorrt.MutableTorchTensorRTModule.load(tmp_path / "empty.pkl")._compiled is None
    # Refittable builds need a GPU here (RefitBuildNeedsGpu): stand in the program its first call would compile.
    mutable._compiled = torch_tensorrt.compile(model, inputs=[x], min_block_size=1)
    torch_tensorrt.MutableTorchTensorRTModule.save(mutable, tmp_path / "mutable_module.pkl")
    reloaded = torch_tensorrt.MutableTorchTensorRTModule.load(tmp_path / "mutable_module.pkl")
    assert isinstance(reloaded, torch_tensorrt.MutableTorchTensorRTModule)
    assert torch_tensorrt.verify(reloaded._compiled, x, reference_module=model).ok
    assert reloaded._weights_now() == reloaded._seen  # loaded weights are not taken for changed ones
    assert torch.equal(reloaded.fc1.weight, model.fc1.weight)
    torch.save({"something": 1}, tmp_path / "other.pkl")
    with pytest.raises(ValueError, match="not written by MutableTorchTensorRTModule.save"):
        torch_tensorrt.MutableTorchTensorRTModule.load(tmp_path / "other.pkl")


def test_mutable_module_expected_dynamic_shape_range():
    mutable = torch_tensorrt.MutableTorchTensorRTModule(MLP().eval(), min_block_size=1)
    batch = torch.export.Dim("batch", min=1, max=8)
    mutable.set_expected_dynamic_shape_range(({0: batch},), {})
    (spec,), kwargs = mutable._specs((torch.randn(4, 16),), {})
    assert (spec.min_shape, spec.opt_shape, spec.max_shape) == ((1, 16), (4, 16), (8, 16))
    assert spec.dim_names == ("batch", None) and kwargs is None
    with pytest.raises(ValueError, match="derived dims"):
        mutable.set_expected_dynamic_shape_range(({0: 4 * batch},), {})
    with pytest.raises(TypeError, match="nested dynamic shapes"):
        mutable.set_expected_dynamic_shape_range((), {"c": {"a": {}, "b": {0: batch}}})
    with pytest.raises(ValueError, match="1 entries in args_dynamic_shapes for 2"):
        mutable._specs((torch.randn(4, 16), torch.randn(4, 16)), {})


def test_resource_allocation_strategy_is_the_allocation_setting_for_the_block():
    from torch_tensorrt_rtx import runtime

    module = object()
    before = runtime.current_settings().allocation_strategy
    with torch_tensorrt.dynamo.runtime.ResourceAllocationStrategy(module, dynamically_allocate_resources=False) as m:
        assert m is module and runtime.current_settings().allocation_strategy == "static"
        with runtime.ResourceAllocationStrategy(module):
            assert runtime.current_settings().allocation_strategy == "user_managed"
    assert runtime.current_settings().allocation_strategy == before
    with pytest.raises(TypeError, match="True or False"):
        with runtime.ResourceAllocationStrategy(module, dynamically_allocate_resources="yes"):
            pass


def test_private_names_upstream_examples_import():
    from torch_tensorrt_rtx.dynamo._defaults import TIMING_CACHE_PATH
    from torch_tensorrt_rtx.dynamo.conversion import CompilationSettings

    assert CompilationSettings is torch_tensorrt.dynamo.CompilationSettings
    assert TIMING_CACHE_PATH.endswith("timing_cache.bin")
    with pytest.raises(ValueError, match="timing cache changes nothing"):  # and the option stays refused
        torch_tensorrt.compile(MLP().eval(), inputs=[torch.randn(2, 16)], timing_cache_path=TIMING_CACHE_PATH)


def test_input_profiles_are_refused_with_the_replacement():
    profiles = [{"min_shape": (1, 1), "opt_shape": (1, 1), "max_shape": (1, 1)},
                {"min_shape": (1, 1), "opt_shape": (1, 128), "max_shape": (1, 256)}]
    with pytest.raises(ValueError, match="one profile.*min_shape=..., opt_shape=..., max_shape="):
        torch_tensorrt.Input(dtype=torch.int64, profiles=profiles)


def test_windows_cross_compile_names_compile_save_and_load(tmp_path, monkeypatch):
    # cross_runtime_compilation_for_windows.py: torchtrt.cross_compile_for_windows(model, file_path=..., inputs=...)
    # then, on Windows, torchtrt.load_cross_compiled_exported_program(path).module(). TensorRT-RTX engines are
    # OS-portable, so these are compile / save / load here.
    from torch_tensorrt_rtx.dynamo.verification import engine_sources

    # cross_compile_for_windows returns None: the compiled module, which owns what its engines were built
    # from (verify's networks), is garbage once saved, and the index holds it weakly. Held here, so verify
    # does not depend on when the collector runs (it failed once in CI when a collection came first).
    kept = []
    real = engine_sources.remember
    monkeypatch.setattr(engine_sources, "remember", lambda *args: kept.append(real(*args)) or kept[-1])
    model, x = MLP().eval(), torch.randn(2, 16)
    assert torch_tensorrt.cross_compile_for_windows(model, file_path=str(tmp_path / "trt_resnet.ep"), inputs=[x],
                                                    min_block_size=1) is None
    loaded = torch_tensorrt.load_cross_compiled_exported_program(str(tmp_path / "trt_resnet.ep")).module()
    assert torch_tensorrt.verify(loaded, x, reference_module=model).ok
    trt_gm = torch_tensorrt.dynamo.cross_compile_for_windows(torch.export.export(model, (x,)), arg_inputs=[x],
                                                             min_block_size=1)
    torch_tensorrt.dynamo.save_cross_compiled_exported_program(trt_gm, str(tmp_path / "b.ep"))
    assert torch_tensorrt.verify(torch_tensorrt.dynamo.load_cross_compiled_exported_program(str(tmp_path / "b.ep")),
                                 x, reference_module=model).ok


def test_compile_takes_one_input_given_alone():
    # compile_with_dynamic_inputs.py and torch_export_cudagraphs.py: compile(model, ir="dynamo", inputs=torch_tensorrt.Input(...))
    model = MLP().eval()
    spec = torch_tensorrt.Input(min_shape=(1, 16), opt_shape=(4, 16), max_shape=(8, 16))
    trt_gm = torch_tensorrt.compile(model, ir="dynamo", inputs=spec, min_block_size=1)
    assert torch_tensorrt.verify(trt_gm, torch.randn(6, 16), reference_module=model).ok
    with pytest.raises(TypeError, match="list or tuple"):
        torch_tensorrt.compile(model, ir="dynamo", inputs={"x": spec}, min_block_size=1)
