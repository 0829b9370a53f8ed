"""The compiler: torch.compile backend (`backend.py`), lowering, partitioning, conversion.

Pipeline (`_compiler.compile_graph`): exported ATen graph -> lowering passes -> partitioning
(TensorRT-RTX subgraphs vs PyTorch fallback) -> conversion to a strongly typed network ->
AOT engine build -> `torch.ops.tensorrt_rtx.execute_engine` calls on packed engine records.
Public entry points are re-exported by `torch_tensorrt_rtx` (compile/save/load/verify/Input).
Importing this package is cheap: nothing below is imported until used.
"""
