"""Every compile option upstream Torch-TensorRT takes is honoured or refused with a reason.

UPSTREAM_OPTIONS is data: the CompilationSettings fields and the keyword arguments of
`torch_tensorrt.compile` / `torch_tensorrt.dynamo.compile` in pytorch/TensorRT at commit
d7f2062810df37e4bbcfc9065b5f44f09aca7156 (py/torch_tensorrt/dynamo/_settings.py, dynamo/_compiler.py,
_compile.py; read with `ast`), plus the deprecated names that compile reads from **kwargs
(truncate_long_and_double, refit, make_refittable, debug) and use_explicit_typing (older releases).
Inputs (module, exported_program, inputs, arg_inputs, kwarg_inputs) and `ir` are not options.
"""
from __future__ import annotations

import dataclasses

import pytest
import torch

from torch_tensorrt_rtx.dynamo import _upstream_options as upstream
from torch_tensorrt_rtx.dynamo._engine_cache import BaseEngineCache
from torch_tensorrt_rtx.dynamo._settings import CompilationSettings

class _DictCache(BaseEngineCache):
    def save(self, hash, blob):
        pass

    def load(self, hash):
        return None


UPSTREAM_OPTIONS = (
    "assume_dynamic_shape_support", "attn_bias_is_causal", "autocast_calibration_dataloader", "autocast_excluded_nodes",
    "autocast_excluded_ops", "autocast_low_precision_type", "autocast_max_depth_of_reduction",
    "autocast_max_output_threshold", "cache_built_engines", "cpu_memory_budget", "custom_engine_cache",
    "decompose_attention", "device", "disable_tf32", "disabled_constant_fold_exclusions", "dla_global_dram_size",
    "dla_local_dram_size", "dla_sram_size", "dryrun", "dynamically_allocate_resources", "enable_autocast",
    "enable_cross_compile_for_windows", "enable_experimental_decompositions", "enable_resource_partitioning",
    "enable_weight_streaming", "enabled_precisions", "engine_cache_dir", "engine_cache_size", "engine_capability",
    "fallback_data_dependent_ops", "hardware_compatible", "immutable_weights", "l2_limit_for_tiling",
    "lazy_engine_init", "max_aux_streams", "min_block_size", "num_avg_timing_iters", "offload_module_to_cpu",
    "optimization_level", "pass_through_build_failures", "refit_identical_engine_weights",
    "require_full_compilation", "reuse_cached_engines", "sparse_weights", "strip_engine_weights",
    "tiling_optimization_level", "timing_cache_path", "torch_executed_modules", "torch_executed_ops",
    "truncate_double", "use_complex_decomposition", "use_distributed_mode_trace", "use_fast_partitioner",
    "use_fp32_acc", "use_python_runtime", "version_compatible", "workspace_size",
    # deprecated names read from **kwargs, and an older release's option
    "truncate_long_and_double", "refit", "make_refittable", "debug", "use_explicit_typing",
)

# A value other than upstream's default, for each name (what a user who sets it would pass).
SET = {
    "assume_dynamic_shape_support": True, "attn_bias_is_causal": False, "autocast_calibration_dataloader": [1],
    "autocast_excluded_nodes": {"^conv"}, "autocast_excluded_ops": {torch.ops.aten.mm.default},
    "autocast_max_depth_of_reduction": 4, "autocast_max_output_threshold": 100.0, "cache_built_engines": True,
    "cpu_memory_budget": 1 << 30, "custom_engine_cache": _DictCache(), "decompose_attention": True, "device": "cuda:0",
    "disable_tf32": True, "disabled_constant_fold_exclusions": {"rule"}, "dla_global_dram_size": 1 << 20,
    "dla_local_dram_size": 1 << 20, "dla_sram_size": 1 << 10, "dryrun": True, "dynamically_allocate_resources": True,
    "enable_cross_compile_for_windows": True, "enable_experimental_decompositions": True,
    "enable_resource_partitioning": True, "enable_weight_streaming": True, "enabled_precisions": {torch.float16},
    "engine_cache_dir": "/tmp/trtx_engine_cache", "engine_cache_size": 1 << 30, "engine_capability": "SAFETY",
    "fallback_data_dependent_ops": True, "hardware_compatible": True, "immutable_weights": False,
    "l2_limit_for_tiling": 1 << 20, "lazy_engine_init": True, "max_aux_streams": 2, "min_block_size": 1,
    "num_avg_timing_iters": 4, "offload_module_to_cpu": True, "optimization_level": 5,
    "pass_through_build_failures": True, "refit_identical_engine_weights": True, "require_full_compilation": True,
    "reuse_cached_engines": True, "sparse_weights": True, "strip_engine_weights": True,
    "tiling_optimization_level": "full", "timing_cache_path": "/tmp/timing.cache",
    "torch_executed_modules": ["encoder"], "torch_executed_ops": {"aten::gelu"}, "truncate_double": False,
    "use_complex_decomposition": True, "use_distributed_mode_trace": True, "use_fast_partitioner": False,
    "use_fp32_acc": True, "use_python_runtime": True, "version_compatible": True, "workspace_size": 1 << 30,
    "truncate_long_and_double": False, "refit": True, "make_refittable": True, "debug": True,
    "use_explicit_typing": False,
}
# Options ACCEPTED with a value that still means something here (the ones in SET cannot hold).
ACCEPTED_VALUE = {"device": "cuda:0", "hardware_compatible": True, "lazy_engine_init": True,
                  "offload_module_to_cpu": True, "use_fast_partitioner": True, "fallback_data_dependent_ops": True,
                  "attn_bias_is_causal": False, "use_explicit_typing": True, "use_python_runtime": False}
PAIRED = ("enable_autocast", "autocast_low_precision_type")  # one meaning together: tested below
FIELDS = {f.name for f in dataclasses.fields(CompilationSettings)}


def test_every_upstream_option_is_classified_once():
    tables = [set(upstream.FIELDS_HONOURED), set(upstream.ENGINE_CACHE_FIELDS), set(upstream.ACCEPTED),
              set(upstream.REFUSED), {"truncate_long_and_double"}, set(PAIRED)]
    for i, a in enumerate(tables):
        for b in tables[i + 1:]:
            assert not a & b, f"classified twice: {sorted(a & b)}"
    unclassified = set(UPSTREAM_OPTIONS) - set().union(*tables)
    assert not unclassified, f"upstream options neither honoured nor refused: {sorted(unclassified)}"
    assert set(UPSTREAM_OPTIONS) - set(PAIRED) <= set(SET), "every option needs a sample value"


@pytest.mark.parametrize("name", sorted(set(UPSTREAM_OPTIONS) - set(PAIRED)))
def test_upstream_option(name):
    value = SET[name]
    if name in upstream.FIELDS_HONOURED:
        # autocast exclusions only mean something under a reduced precision (alone they are refused)
        extra = {"enabled_precisions": {torch.float16}} if name.startswith("autocast_excluded") else {}
        settings = CompilationSettings.from_options({name: value, **extra})
        expected = CompilationSettings(**{name: value, **extra})
        assert getattr(settings, name) == getattr(expected, name) != getattr(CompilationSettings(), name)
    elif name in upstream.ENGINE_CACHE_FIELDS:
        # Honoured by the engine cache. Until its branch is merged the field does not exist and
        # the option is an unknown one; after the merge it must be a field that takes the value.
        if name in FIELDS:
            assert str(getattr(CompilationSettings.from_options({name: value}), name)) == str(value)
        else:
            with pytest.raises(ValueError, match=f"unknown torch_tensorrt_rtx option.*{name}"):
                CompilationSettings.from_options({name: value})
    elif name == "truncate_long_and_double":
        with pytest.warns(DeprecationWarning, match="truncate_double"):
            assert CompilationSettings.from_options({name: False}).truncate_double is False
    elif name in upstream.ACCEPTED:
        CompilationSettings.from_options({name: ACCEPTED_VALUE[name]})
        bad = {"device": "cpu", "hardware_compatible": "yes", "lazy_engine_init": "yes",
               "offload_module_to_cpu": 1, "use_fast_partitioner": False, "fallback_data_dependent_ops": None,
               "attn_bias_is_causal": "no", "use_explicit_typing": False, "use_python_runtime": True}[name]
        with pytest.raises(ValueError, match=f"option {name}=.*TensorRT-RTX"):
            CompilationSettings.from_options({name: bad})
    else:
        default, reason = upstream.REFUSED[name]
        with pytest.raises(ValueError) as refused:
            CompilationSettings.from_options({name: value})
        message = str(refused.value)
        assert name in message and "does not apply to TensorRT-RTX" in message and reason in message
        CompilationSettings.from_options({name: default})  # upstream's default means "left out": accepted


def test_settings_built_directly_take_upstream_names_like_compile():
    with pytest.raises(ValueError) as refused:
        CompilationSettings(enable_resource_partitioning=True)
    message = str(refused.value)
    assert "enable_resource_partitioning=True does not apply to TensorRT-RTX" in message
    assert upstream.REFUSED["enable_resource_partitioning"][1] in message
    settings = CompilationSettings(enable_resource_partitioning=False, device="cuda:0", hardware_compatible=True,
                                   enable_autocast=True, autocast_low_precision_type=torch.float16, min_block_size=1)
    assert (settings.reduced_precision, settings.min_block_size) == (torch.float16, 1)
    with pytest.raises(ValueError, match="option device='cpu' is not possible with TensorRT-RTX"):
        CompilationSettings(device="cpu")
    with pytest.warns(DeprecationWarning, match="truncate_double"):
        assert CompilationSettings(truncate_long_and_double=False).truncate_double is False
    with pytest.raises(TypeError, match=r"unknown torch_tensorrt_rtx option\(s\) \['not_an_option'\]"):
        CompilationSettings(not_an_option=1)
    assert dataclasses.replace(settings, min_block_size=2).min_block_size == 2


def test_autocast_pair_means_enabled_precisions():
    settings = CompilationSettings.from_options({"enable_autocast": True, "autocast_low_precision_type": torch.bfloat16})
    assert settings.reduced_precision == torch.bfloat16
    with pytest.raises(ValueError, match="needs autocast_low_precision_type"):
        CompilationSettings.from_options({"enable_autocast": True})
    with pytest.raises(ValueError, match="needs enable_autocast=True"):
        CompilationSettings.from_options({"autocast_low_precision_type": torch.float16})


def test_autocast_exclusions_need_a_reduced_precision_and_valid_patterns():
    with pytest.raises(ValueError, match="enabled_precisions"):
        CompilationSettings.from_options({"autocast_excluded_ops": {"aten::mm"}})
    with pytest.raises(ValueError, match="not a regular expression"):
        CompilationSettings.from_options({"autocast_excluded_nodes": {"(unclosed"}, "enabled_precisions": {"fp16"}})
    settings = CompilationSettings.from_options({"enable_autocast": True, "autocast_low_precision_type": "fp16",
                                                 "autocast_excluded_ops": {"aten::mm"}})
    assert "aten.mm.default" in settings.autocast_excluded_ops  # a packet name means every overload


def test_refusal_names_the_replacement():
    with pytest.raises(ValueError, match="cache_built_engines"):
        CompilationSettings.from_options({"timing_cache_path": "/tmp/t.cache"})
    with pytest.raises(ValueError, match="torch_executed_ops"):
        CompilationSettings.from_options({"torch_executed_modules": ["encoder"]})
    with pytest.raises(ValueError, match="no DLA"):
        CompilationSettings.from_options({"device": "cuda:0", "dla_sram_size": 1})


def test_builder_options_reach_the_builder_config():
    trt = pytest.importorskip("tensorrt_rtx")
    from torch_tensorrt_rtx.dynamo.conversion._engine_builder import apply_builder_options

    config = trt.Builder(trt.Logger(trt.Logger.ERROR)).create_builder_config()
    assert config.get_flag(trt.BuilderFlag.TF32)  # so that disable_tf32 has something to clear
    settings = CompilationSettings.from_options({
        "workspace_size": 1 << 28, "optimization_level": 2, "max_aux_streams": 1, "tiling_optimization_level": "fast",
        "l2_limit_for_tiling": 1 << 20, "disable_tf32": True, "sparse_weights": True, "enable_weight_streaming": True})
    apply_builder_options(config, settings)
    assert config.get_memory_pool_limit(trt.MemoryPoolType.WORKSPACE) == 1 << 28
    assert (config.builder_optimization_level, config.max_aux_streams) == (2, 1)
    assert config.tiling_optimization_level == trt.TilingOptimizationLevel.FAST
    assert config.l2_limit_for_tiling == 1 << 20
    assert not config.get_flag(trt.BuilderFlag.TF32)
    assert config.get_flag(trt.BuilderFlag.SPARSE_WEIGHTS) and config.get_flag(trt.BuilderFlag.WEIGHT_STREAMING)


@pytest.mark.parametrize("bad", [{"workspace_size": -1}, {"optimization_level": "high"},
                                 {"tiling_optimization_level": "max"}, {"max_aux_streams": -2}])
def test_bad_builder_option_values_are_refused(bad):
    name = next(iter(bad))
    with pytest.raises(ValueError, match=name):
        CompilationSettings.from_options(bad)


@pytest.mark.parametrize("spelling", [torch.float16, torch.half, "fp16", "half", "float16", "torch.float16", "f16"])
def test_enabled_precisions_spellings(spelling):
    assert CompilationSettings.from_options({"enabled_precisions": {spelling}}).reduced_precision == torch.float16


def test_enabled_precisions_tensorrt_dtypes_and_refusals():
    trt = pytest.importorskip("tensorrt_rtx")
    assert CompilationSettings(enabled_precisions={trt.bfloat16}).reduced_precision == torch.bfloat16
    assert CompilationSettings(enabled_precisions={trt.float32, "fp16"}).enabled_precisions == {
        torch.float32, torch.float16}
    with pytest.raises(ValueError, match="quantized"):
        CompilationSettings(enabled_precisions={torch.float16, "int8"})
    with pytest.raises(ValueError, match="no precision"):
        CompilationSettings(enabled_precisions={"fp17"})
