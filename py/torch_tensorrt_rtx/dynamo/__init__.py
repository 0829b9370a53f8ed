"""The compiler: torch.compile backend (`backend.py`), lowering, partitioning, conversion.

Pipeline (`_compiler.compile_graph`): exported ATen graph -> lowering passes -> partitioning
(TensorRT-RTX subgraphs vs PyTorch fallback) -> conversion to a strongly typed network ->
AOT engine build -> `torch.ops.tensorrt_rtx.execute_engine` calls on packed engine records.
Public entry points are re-exported by `torch_tensorrt_rtx` (compile/save/load/verify/Input).
Importing this package is cheap: nothing below is imported until used.
"""

# Upstream Torch-TensorRT's names under torch_tensorrt_rtx.dynamo, loaded on first use: name ->
# (module, attribute). The package's top level adds the ones it implements (compile, trace,
# refit_module_weights: they use the public compile), so this layer never imports the top level.
_LAZY = {
    "CompilationSettings": ("torch_tensorrt_rtx.dynamo._settings", "CompilationSettings"),
    "Debugger": ("torch_tensorrt_rtx.dynamo._debugger", "Debugger"),
}


_SUBPACKAGES = ("conversion", "lowering", "partitioning", "verification", "utils")


def __getattr__(name):
    if name == "runtime":  # upstream's torch_tensorrt.dynamo.runtime (ResourceAllocationStrategy): ours is one package
        import importlib

        return importlib.import_module("torch_tensorrt_rtx.runtime")
    if name in _SUBPACKAGES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    if name in _LAZY:
        import importlib

        module, attribute = _LAZY[name]
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'torch_tensorrt_rtx.dynamo' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | set(_SUBPACKAGES) | {"runtime"})
