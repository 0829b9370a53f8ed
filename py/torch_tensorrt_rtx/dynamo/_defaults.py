"""Upstream's ``torch_tensorrt.dynamo._defaults`` names that upstream code imports.

``TIMING_CACHE_PATH``: where upstream's builds keep their timing cache. Builds here write none
(TensorRT-RTX does not autotune; ``timing_cache_path=`` is refused with that reason), so nothing
from this package is ever at that path; the name exists so that upstream code that deletes the
file before timing its compiles runs unchanged.
"""
import os
import tempfile

TIMING_CACHE_PATH = os.path.join(tempfile.gettempdir(), "torch_tensorrt_engine_cache", "timing_cache.bin")
