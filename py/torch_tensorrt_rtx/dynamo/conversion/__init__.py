"""Conversion: FX ATen graph -> strongly typed TensorRT-RTX INetworkDefinition -> engine.

- `converter` (decorator) and `lookup`: the converter registry (`_registry.py`); converter
  modules live in `converters/`, one per op family. `dynamo_tensorrt_converter` and
  `ConverterPriority`: upstream Torch-TensorRT's form of it (`_upstream_registry.py`).
- `build_network`: lower one partition into a network (`_interpreter.py`).
- `build_engine`: AOT engine build with optimization profile and progress (`_engine_builder.py`).

The CPU reference executor that checks what conversion builds is not part of conversion: it
lives in `torch_tensorrt_rtx.dynamo.verification`, which imports this package, never the reverse.
"""
from torch_tensorrt_rtx.dynamo._settings import CompilationSettings  # where upstream's examples import it from
from torch_tensorrt_rtx.dynamo.conversion._context import ConversionContext, ConversionError
from torch_tensorrt_rtx.dynamo.conversion._engine_builder import build_engine
from torch_tensorrt_rtx.dynamo.conversion._interpreter import NetworkDefinition, build_network
from torch_tensorrt_rtx.dynamo.conversion._registry import converter, lookup
from torch_tensorrt_rtx.dynamo.conversion._upstream_registry import ConverterPriority, dynamo_tensorrt_converter

__all__ = ["CompilationSettings", "ConversionContext", "ConversionError", "ConverterPriority", "NetworkDefinition", "build_engine",
           "build_network", "converter", "dynamo_tensorrt_converter", "lookup"]
