"""torch_tensorrt_rtx: compile PyTorch models for NVIDIA TensorRT-RTX on any machine.

Importing this package never touches CUDA, so it works on build servers without a GPU.

Public API:
- ``torch.compile(model, backend="tensorrt_rtx", options={...})`` (registered through the
  ``torch_dynamo_backends`` entry point; works without importing this package)
- ``compile(module, inputs=[Input(...) | tensor, ...], ...)``: AOT through torch.export
- ``save(compiled, path, output_format="exported_program" | "aot_inductor")`` / ``load(path)``:
  .pt2 with engines embedded as engine records (an AOTInductor package also runs from C++)
- ``verify(compiled, *inputs, reference_module=None)``: run every engine on CPU through the
  reference executor and compare with eager PyTorch
- ``Input``, ``engine_records(program)``, ``program_engines(module)`` (per-engine settings)
- ``compile_reports()``: a context manager collecting the CompileReport of every
  torch.compile(backend="tensorrt_rtx") build made inside it
- ``runtime`` and ``dynamo`` subpackages; ``library_path()``: the C++ runtime library's path;
  ``cmake_prefix_path()``: the directory for CMAKE_PREFIX_PATH (``find_package(TorchTensorRTRTX)``)

Saved programs load with plain ``torch.export.load`` / ``torch._inductor.aoti_load_package``
after ``import torch_tensorrt_rtx``: the engine op is registered as soon as torch is imported
(``_saved_program_ops``), without importing torch here when nobody else has.
"""
import logging as _logging

from torch_tensorrt_rtx import _saved_program_ops
from torch_tensorrt_rtx import _backend_names
from torch_tensorrt_rtx import _tensorrt_alias
from torch_tensorrt_rtx import dynamo as _dynamo
from torch_tensorrt_rtx._version import __version__

_logging.getLogger(__name__).addHandler(_logging.NullHandler())

_saved_program_ops.register_now_or_after_torch_import()
_tensorrt_alias.install()  # `import tensorrt` -> tensorrt_rtx when no tensorrt is installed (as upstream's RTX wheel)
_backend_names.install()  # torch.compile(backend="torch_tensorrt" | "tensorrt") when nobody else owns them
_dynamo._LAZY.update({name: ("torch_tensorrt_rtx._upstream", name)  # upstream's torch_tensorrt.dynamo.<name>
                      for name in ("compile", "trace", "refit_module_weights",
                                   "convert_exported_program_to_serialized_trt_engine", "cross_compile_for_windows",
                                   "save_cross_compiled_exported_program", "load_cross_compiled_exported_program")})

_LAZY = {"compile", "save", "load", "verify", "Input", "engine_records", "program_engines", "VerificationReport",
         "VerificationUnavailableError"}


_SUBPACKAGES = {"runtime", "dynamo", "logging"}
_UPSTREAM = {"MutableTorchTensorRTModule", "convert_method_to_trt_engine", "Device", "DeviceType",  # _upstream.py
             "save_cross_compiled_exported_program", "load_cross_compiled_exported_program"}
# Upstream frontends and packages that are no part of this package: an AttributeError that says so.
_NOT_HERE = {"ts": "the TorchScript frontend", "fx": "the FX frontend (deprecated upstream)",
             "ptq": "INT8 calibration (TorchScript)", "distributed": "multi-GPU distributed inference",
             "executorch": "ExecuTorch export", "kernels": "custom CUDA kernel plugins"}


def __getattr__(name):
    # The compiler pulls in tensorrt_rtx and torch.export: load it on first use so that
    # `import torch_tensorrt_rtx` stays fast.
    if name in _LAZY:
        from torch_tensorrt_rtx import _compile

        return getattr(_compile, name)
    if name in _SUBPACKAGES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    if name == "library_path":
        from torch_tensorrt_rtx.runtime._native import runtime_library_path

        return runtime_library_path
    if name == "cmake_prefix_path":
        from torch_tensorrt_rtx._paths import cmake_prefix_path

        return cmake_prefix_path
    if name in _UPSTREAM or name == "cross_compile_for_windows":
        from torch_tensorrt_rtx import _upstream

        # upstream's top-level form takes a module and a file_path and saves; dynamo's returns the program
        if name == "cross_compile_for_windows":
            return _upstream.compile_and_save_for_windows
        return getattr(_upstream, name)
    if name == "compile_reports":
        from torch_tensorrt_rtx.dynamo.backend import compile_reports

        return compile_reports
    if name in _NOT_HERE:
        raise AttributeError(f"torch_tensorrt_rtx has no {name!r}: {_NOT_HERE[name]} is not part of this TensorRT-RTX "
                             "package; compile with torch_tensorrt_rtx.compile(model, ir='dynamo', inputs=...)")
    raise AttributeError(f"module 'torch_tensorrt_rtx' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | _LAZY | _SUBPACKAGES | _UPSTREAM | {"cross_compile_for_windows"} |
                  {"compile_reports", "library_path", "cmake_prefix_path"})
