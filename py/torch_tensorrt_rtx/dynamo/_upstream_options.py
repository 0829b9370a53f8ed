"""Upstream Torch-TensorRT's compile options, mapped onto CompilationSettings or refused.

Every option name upstream's ``torch_tensorrt.compile`` / ``torch_tensorrt.dynamo.compile`` /
``CompilationSettings`` takes is in exactly one of these tables:

- ``FIELDS_HONOURED``: a CompilationSettings field of the same name and meaning (see its comment).
- ``ACCEPTED``: no field, but the value is checked and has a TensorRT-RTX meaning given here
  (usually "this is always the case here"); a value that cannot hold is refused.
- ``REFUSED``: accepted only at upstream's default value (which means the same as leaving it
  out); any other value is a ValueError saying why it does not apply and what to use instead.

``translate(options)`` turns a dict of option names (ours and upstream's) into CompilationSettings
fields; ``CompilationSettings.from_options`` and ``CompilationSettings(...)`` itself call it, so
``compile(**options)``, ``torch_tensorrt_rtx.dynamo.compile``, ``torch.compile(..., options=...)`` and
settings built directly behave alike.
"""
from __future__ import annotations

import warnings
from typing import Any, Callable, Dict, Iterable, Mapping, Tuple

import torch

# Upstream names that are CompilationSettings fields with upstream's meaning on TensorRT-RTX.
FIELDS_HONOURED = {
    "min_block_size": "smallest partition worth an engine (our default 3, upstream's 5)",
    "torch_executed_ops": "ops kept in PyTorch, in any op spelling",
    "require_full_compilation": "raise when anything stays in PyTorch",
    "pass_through_build_failures": "raise instead of falling back to PyTorch",
    "truncate_double": "float64 ops compute in float32 (our default True; False keeps them in PyTorch)",
    "enabled_precisions": "fp16/bf16 compute for an fp32 model (torch dtypes, strings, tensorrt dtypes)",
    "workspace_size": "IBuilderConfig workspace memory pool limit in bytes (0: TensorRT-RTX's default)",
    "optimization_level": "IBuilderConfig.builder_optimization_level (None: TensorRT-RTX's default)",
    "max_aux_streams": "IBuilderConfig.max_aux_streams (None: TensorRT-RTX's default)",
    "tiling_optimization_level": "IBuilderConfig.tiling_optimization_level: none, fast, moderate or full",
    "l2_limit_for_tiling": "IBuilderConfig.l2_limit_for_tiling in bytes (-1: no limit)",
    "disable_tf32": "clears BuilderFlag.TF32",
    "sparse_weights": "sets BuilderFlag.SPARSE_WEIGHTS",
    "enable_weight_streaming": "sets BuilderFlag.WEIGHT_STREAMING; budget at run time: runtime.weight_streaming",
    "use_fp32_acc": "with fp16/bf16 enabled_precisions, matmuls compute in fp32 on inputs cast up, result cast down",
    "assume_dynamic_shape_support": "dynamic-shape nodes go to converters registered with supports_dynamic_shapes="
                                    "False too (every built-in converter supports them)",
    "autocast_excluded_ops": "with a reduced precision, these ops (any torch_executed_ops spelling) compute in fp32",
    "autocast_excluded_nodes": "with a reduced precision, nodes whose FX name a regex matches compute in fp32",
    "strip_engine_weights": "builds with BuilderFlag.STRIP_PLAN + REFIT; the program keeps each weight once and "
                            "refits the engine before its first run (weightless engines)",
    "immutable_weights": "False builds refittable engines (BuilderFlag.REFIT) for refit_module_weights",
    "refit_identical_engine_weights": "with refittable engines, BuilderFlag.REFIT_IDENTICAL instead of REFIT "
                                      "(refits only with the weights it was built with)",
    "debug": "the compile logs at DEBUG, like `with torch_tensorrt_rtx.logging.debug():` (upstream deprecates it "
             "for Debugger, which works here too)",
    "dryrun": "partition only (True, or a path the report is written to): the module runs in PyTorch, its "
              "compile_report lists the planned engines",
}

# Added by the engine cache (same names and meanings as upstream's).
# custom_engine_cache: a BaseEngineCache given our key and blob format (_custom_engine_cache.py).
ENGINE_CACHE_FIELDS = ("cache_built_engines", "reuse_cached_engines", "engine_cache_dir", "engine_cache_size",
                       "custom_engine_cache")


def _is_cuda_device(value: Any) -> bool:
    if value is None or isinstance(value, int) and not isinstance(value, bool):
        return True
    if isinstance(value, str):
        value = value.strip().lower()
        try:
            return value == "gpu" or value.startswith("gpu:") or _is_cuda_device(torch.device(value))
        except RuntimeError:  # not a device string at all
            return False
    if isinstance(value, torch.device):
        return value.type == "cuda"
    gpu_id = getattr(value, "gpu_id", None)  # an upstream torch_tensorrt.Device
    device_type = str(getattr(value, "device_type", "gpu")).lower()
    return isinstance(gpu_id, int) and "dla" not in device_type


def _bool(value: Any) -> bool:
    return isinstance(value, bool)


# name -> (check of the value, what it means here). The value is dropped after the check.
ACCEPTED: Dict[str, Tuple[Callable[[Any], bool], str]] = {
    "device": (_is_cuda_device,
               "a CUDA GPU (None, 'cuda', 'cuda:N', torch.device, N): engines build on the CPU and run on the "
               "CUDA device of their inputs; 'cpu' or DLA are refused"),
    "hardware_compatible": (_bool,
                            "engines are portable across every compute capability TensorRT-RTX supports "
                            "(compute_capabilities=() is the default); compute_capabilities=['SM89'] narrows them"),
    "lazy_engine_init": (_bool, "engines always deserialize at their first call, on the machine that runs them"),
    "offload_module_to_cpu": (_bool, "compiling never uses GPU memory: engines build on the CPU"),
    "use_fast_partitioner": (lambda v: v is True,
                             "one capability-based partitioner; use_fast_partitioner=False (global) is refused"),
    "fallback_data_dependent_ops": (_bool, "ops with data-dependent output shapes stay in PyTorch today"),
    "attn_bias_is_causal": (_bool, "an attention bias is always used as given, never assumed causal"),
    "use_explicit_typing": (lambda v: v is True, "networks are always strongly typed (False is refused)"),
    "use_python_runtime": (lambda v: v is False or v is None,
                           "the runtime is chosen when the program runs: the C++ one when its library "
                           "loads, else the Python one; True is refused"),
}

_DEPRECATED_REFIT = "upstream's deprecated spelling; use immutable_weights=False (refittable engines)"
# name -> (upstream's default, why not and what instead). Refused unless value == default.
REFUSED: Dict[str, Tuple[Any, str]] = {
    "engine_capability": ("STANDARD", "TensorRT-RTX builds only standard-capability engines (no safety or DLA)"),
    "num_avg_timing_iters": (1, "TensorRT-RTX does not time kernels at build time; kernels are JIT-specialized "
                                "at run time (runtime.settings(kernel_strategy=...))"),
    "dla_sram_size": (1048576, "RTX GPUs have no DLA"),
    "dla_local_dram_size": (1073741824, "RTX GPUs have no DLA"),
    "dla_global_dram_size": (536870912, "RTX GPUs have no DLA"),
    "use_complex_decomposition": (False, "complex tensors stay in PyTorch here"),
    "enable_experimental_decompositions": (False, "the decomposition table is fixed here; ops without a "
                                                  "converter stay in PyTorch"),
    "torch_executed_modules": (None, "keep ops in PyTorch with torch_executed_ops={...} instead"),
    "version_compatible": (False, "TensorRT-RTX engines run only with the TensorRT-RTX release that built them "
                                  "(NVIDIA's engine compatibility notes); rebuild for a new release"),
    "timing_cache_path": (None, "TensorRT-RTX builds do not autotune, so a timing cache changes nothing "
                                "(measured); cache_built_engines/reuse_cached_engines skip rebuilds"),
    "refit": (False, _DEPRECATED_REFIT),
    "make_refittable": (False, _DEPRECATED_REFIT),
    "enable_cross_compile_for_windows": (False, "no Windows-specific build here: TensorRT-RTX documents its engines "
                                                "as portable across operating systems, so compile without it (a "
                                                "Linux-built program on Windows is not verified by this project)"),
    "use_distributed_mode_trace": (False, "distributed (DTensor) tracing is not supported for RTX PCs"),
    "enable_resource_partitioning": (False, "not implemented: partitions are bounded by min_block_size and "
                                            "torch_executed_ops only"),
    "cpu_memory_budget": (None, "not implemented (see enable_resource_partitioning)"),
    "dynamically_allocate_resources": (False, "a runtime choice here: runtime.settings("
                                              "allocation_strategy='on_profile_change' or 'user_managed')"),
    "decompose_attention": (False, "attention is converted as one subgraph; keep it in PyTorch with "
                                   "torch_executed_ops={'aten._scaled_dot_product_flash_attention_for_cpu'}"),
    "disabled_constant_fold_exclusions": (None, "there are no constant-fold exclusion rules here"),
    "autocast_max_output_threshold": (512, "rule-based autocast is not implemented; see enabled_precisions"),
    "autocast_max_depth_of_reduction": (None, "reductions always compute in fp32 under enabled_precisions"),
    "autocast_calibration_dataloader": (None, "no calibration here; see enabled_precisions"),
}

_EMPTY = (None, (), [], set(), frozenset(), {})


def _is_default(value: Any, default: Any) -> bool:
    if default is None or isinstance(default, (tuple, list, set, frozenset)):
        return any(value is e or (type(value) is type(e) and value == e) for e in _EMPTY)
    if isinstance(default, str):  # an enum member spelled by name (EngineCapability.STANDARD)
        return str(getattr(value, "name", value)).upper().endswith(default)
    return type(value) is type(default) and value == default


def refusal(name: str, value: Any) -> str:
    _default, why = REFUSED[name]
    return (f"option {name}={value!r} does not apply to TensorRT-RTX: {why}. Leave it out (or at upstream's "
            f"default) to compile")


def _autocast(options: Dict[str, Any]) -> None:
    """enable_autocast=True with autocast_low_precision_type means enabled_precisions={that type}."""
    enable = options.pop("enable_autocast", False)
    low = options.pop("autocast_low_precision_type", None)
    if not isinstance(enable, bool):
        raise TypeError(f"option enable_autocast must be True or False, got {enable!r}")
    if not enable:
        if low is not None:
            raise ValueError(f"option autocast_low_precision_type={low!r} needs enable_autocast=True "
                             "(or use enabled_precisions={torch.float16})")
        return
    if low is None:
        raise ValueError("option enable_autocast=True needs autocast_low_precision_type=torch.float16 or "
                         "torch.bfloat16 (the same as enabled_precisions={that dtype})")
    if options.get("enabled_precisions"):
        raise ValueError("give enabled_precisions or enable_autocast + autocast_low_precision_type, not both")
    options["enabled_precisions"] = {low}


def translate(options: Mapping[str, Any]) -> Dict[str, Any]:
    """Upstream option names -> CompilationSettings fields; refused values raise ValueError."""
    options = dict(options)
    if "truncate_long_and_double" in options:
        value = options.pop("truncate_long_and_double")
        warnings.warn("option truncate_long_and_double is upstream's deprecated name of truncate_double",
                      DeprecationWarning, stacklevel=4)
        if options.setdefault("truncate_double", value) != value:
            raise ValueError("give truncate_double only (truncate_long_and_double is its deprecated name)")
    _autocast(options)
    for name in [n for n in options if n in ACCEPTED]:
        value = options.pop(name)
        check, meaning = ACCEPTED[name]
        if not check(value):
            raise ValueError(f"option {name}={value!r} is not possible with TensorRT-RTX: {meaning}")
    for name in [n for n in options if n in REFUSED]:
        value = options.pop(name)
        if not _is_default(value, REFUSED[name][0]):
            raise ValueError(refusal(name, value))
    return options


def upstream_option_names() -> Iterable[str]:
    return (*FIELDS_HONOURED, *ENGINE_CACHE_FIELDS, *ACCEPTED, *REFUSED, "truncate_long_and_double",
            "enable_autocast", "autocast_low_precision_type")


# -- enabled_precisions in every upstream spelling ------------------------------------------------
_PRECISION_NAMES = {
    "fp32": torch.float32, "float32": torch.float32, "float": torch.float32, "f32": torch.float32,
    "single": torch.float32, "fp16": torch.float16, "float16": torch.float16, "half": torch.float16,
    "f16": torch.float16, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
}
_TRT_PRECISIONS = {"FLOAT": torch.float32, "HALF": torch.float16, "BF16": torch.bfloat16}
_NOT_HERE = ("int8", "fp8", "float8", "i8", "f8", "int4", "fp4", "nvfp4")


def precision(value: Any) -> Any:
    """One enabled_precisions entry as a torch dtype: torch dtypes, upstream's strings ("fp16",
    "half", "float16", "torch.float16", ...), tensorrt/tensorrt_rtx DataTypes and upstream's
    torch_tensorrt.dtype members (by name). Quantized types are refused with the reason."""
    if isinstance(value, torch.dtype):
        return value
    name = getattr(value, "name", None) if not isinstance(value, str) else None
    if name is not None and type(value).__module__.split(".")[0].startswith(("tensorrt", "torch_tensorrt")):
        if str(name).upper() in _TRT_PRECISIONS:
            return _TRT_PRECISIONS[str(name).upper()]
        value = str(name)
    if isinstance(value, str):
        key = value.strip().lower().replace("torch.", "").replace("dtype.", "")
        if key in _PRECISION_NAMES:
            return _PRECISION_NAMES[key]
        if key in _NOT_HERE:
            raise ValueError(f"enabled_precisions: {value!r} (quantized types) is not supported by this compiler; "
                             "use torch.float32, torch.float16 or torch.bfloat16")
    raise ValueError(f"enabled_precisions: {value!r} is no precision; expected torch.float16/torch.bfloat16/"
                     "torch.float32, a string such as 'fp16', 'half' or 'bf16', or a tensorrt DataType")
