"""torch_tensorrt_rtx.runtime: run TensorRT-RTX engines from Python, share the JIT cache.

Public API (importing this package never touches CUDA, and imports torch only when
``TRTModule`` is first used):

- ``EngineRecord`` (+ ``EngineRecordError``, ``LAYOUT``, ``ABI_VERSION``): the engine
  record. ``EngineRecord.new(engine_bytes, *, name, input_names, output_names,
  compute_capabilities=(), engine_flavor="tensorrt_rtx")``,
  ``to_list()`` / ``EngineRecord.from_list(list_of_bytes)`` (what the C++
  ``torch.classes.tensorrt.Engine`` takes), ``pack()`` / ``EngineRecord.unpack(buf)``
  (one contiguous buffer; unpack does not copy the engine), ``to_tensor()`` /
  ``EngineRecord.from_tensor(t)`` (uint8 tensor for a .pt2). Layout: ``definitions.toml``.
- ``TRTModule(record: EngineRecord, name: str | None = None)``: the runtime module the
  compiler wraps each engine in. ``forward(*cuda_tensors)``, ``ensure_context()``,
  ``save_runtime_cache() -> bool``, ``set_runtime_settings(**)``,
  ``runtime_settings(**)`` (context manager), ``TRTModule.from_packed(buf, name)``.
  Picklable: rebuilt from its packed record. Bad input shapes raise ``InputShapeError``
  (input, dimension, allowed range); no supported GPU raises ``RTXGPUUnavailableError``.
- ``settings(**changes)``: context manager for every module in scope; keywords
  ``cache_path``, ``kernel_strategy`` (``KERNEL_STRATEGIES``), ``cuda_graph_strategy``
  (``CUDA_GRAPH_STRATEGIES``), ``allocation_strategy`` (``ALLOCATION_STRATEGIES``).
  ``current_settings()``, ``RuntimeSettings``.
- ``RuntimeCacheFile(path, lock_timeout=DEFAULT_LOCK_TIMEOUT_S, max_bytes=None)``: the
  cache file store, a container of one entry per engine (``try_load_entry(key)``,
  ``try_load(key, deserialize)``, ``try_save_entry(key, blob)``, ``try_read_index()``),
  ``engine_key(engine_bytes)``, ``default_cache_path()``, ``LOCK_SUFFIX``.
  ``settings(cache_path=None)`` disables the cache. A cache not used as asked (untrusted or
  damaged file, lock timeout, entry over the cap) raises ``RuntimeCacheWarning`` once per path and
  reason, besides the logging record.
- ``supported_gpu()``, ``RTXGPUUnavailableError``: detect a GPU TensorRT-RTX runs on.
- Upstream Torch-TensorRT's names (``UPSTREAM_NAMES``: ``enable_cudagraphs``, ``weight_streaming``,
  ...), mapped onto the above or refused with the reason: see ``upstream_api.py``.
"""
from torch_tensorrt_rtx.runtime.device import (RTXGPUUnavailableError, is_supported_compute_capability,
                                               supported_gpu)
from torch_tensorrt_rtx.runtime.engine_record import (ABI_VERSION, LAYOUT, EngineRecord,
                                                      EngineRecordError)
from torch_tensorrt_rtx.runtime.runtime_cache_file import (DEFAULT_LOCK_TIMEOUT_S, LOCK_SUFFIX,
                                                           RuntimeCacheFile, RuntimeCacheWarning,
                                                           default_cache_path, engine_key)
from torch_tensorrt_rtx.runtime.runtime_settings import (ALLOCATION_STRATEGIES, CUDA_GRAPH_STRATEGIES,
                                                 DEFAULT_CACHE_PATH, KERNEL_STRATEGIES, RuntimeSettings,
                                                 current_settings, settings)


# Upstream Torch-TensorRT's runtime names (upstream_api.py says what each does here).
UPSTREAM_NAMES = ("enable_cudagraphs", "set_cudagraphs_mode", "get_cudagraphs_mode", "get_whole_cudagraphs_mode",
                  "weight_streaming", "set_multi_device_safe_mode", "enable_output_allocator",
                  "enable_pre_allocated_outputs", "runtime_config", "set_dynamic_shapes_kernel_strategy",
                  "runtime_cache", "optimization_profile", "ResourceAllocationStrategy")


def __getattr__(name):
    # TRTModule needs torch: import it on first use, so that tools and worker processes
    # that only touch the cache file or records (the cache tests' children) start fast.
    if name in ("TRTModule", "InputShapeError"):
        from torch_tensorrt_rtx.runtime import trt_module

        return getattr(trt_module, name)
    if name in UPSTREAM_NAMES:
        from torch_tensorrt_rtx.runtime import upstream_api

        return getattr(upstream_api, name)
    raise AttributeError(f"module 'torch_tensorrt_rtx.runtime' has no attribute {name!r}")


__all__ = [
    "ABI_VERSION", "ALLOCATION_STRATEGIES", "CUDA_GRAPH_STRATEGIES", "DEFAULT_CACHE_PATH",
    "DEFAULT_LOCK_TIMEOUT_S", "engine_key",
    "EngineRecord", "EngineRecordError", "InputShapeError", "KERNEL_STRATEGIES", "LAYOUT",
    "LOCK_SUFFIX", "RTXGPUUnavailableError", "RuntimeCacheFile", "RuntimeCacheWarning", "RuntimeSettings",
    "TRTModule", "current_settings", "default_cache_path", "is_supported_compute_capability",
    "settings", "supported_gpu",
]
