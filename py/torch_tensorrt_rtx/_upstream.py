"""``torch_tensorrt_rtx.dynamo.compile`` / ``trace`` and the refit names, in upstream's form (the
package puts them under ``torch_tensorrt_rtx.dynamo``).

    ep = torch_tensorrt_rtx.dynamo.trace(model, arg_inputs=[Input(...)])        # an ExportedProgram
    compiled = torch_tensorrt_rtx.dynamo.compile(ep, arg_inputs=[x], **options)  # = torch_tensorrt_rtx.compile

Both are thin: ``compile`` is ``torch_tensorrt_rtx.compile`` (one settings object, upstream's
option names honoured or refused there). ``refit_module_weights`` refits programs compiled with
``strip_engine_weights=True`` or ``immutable_weights=False`` (dynamo/_refit.py);
``MutableTorchTensorRTModule`` (_mutable.py) compiles and refits itself.
"""
from __future__ import annotations

import dataclasses
import enum
from typing import Any, Dict, Optional, Sequence

import torch

from torch_tensorrt_rtx._mutable import MutableTorchTensorRTModule  # noqa: E402,F401 (upstream's name)


def compile(exported_program: Any, inputs: Optional[Sequence[Any]] = None, *,
            arg_inputs: Optional[Sequence[Any]] = None, kwarg_inputs: Optional[Dict[str, Any]] = None,
            **options: Any) -> torch.fx.GraphModule:
    """Upstream's ``torch_tensorrt.dynamo.compile(exported_program, arg_inputs=..., **options)``:
    ``torch_tensorrt_rtx.compile`` on an ExportedProgram (or a module). Inputs default to the
    program's example inputs over its Dims' ranges."""
    from torch_tensorrt_rtx._compile import compile as compile_program

    return compile_program(exported_program, inputs, arg_inputs=arg_inputs, kwarg_inputs=kwarg_inputs, **options)


def trace(module: torch.nn.Module, inputs: Optional[Sequence[Any]] = None, *,
          arg_inputs: Optional[Sequence[Any]] = None, kwarg_inputs: Optional[Dict[str, Any]] = None,
          **options: Any) -> torch.export.ExportedProgram:
    """Upstream's ``torch_tensorrt.dynamo.trace``: ``torch.export.export`` (non-strict) with the
    dynamic dims of the given ``Input`` ranges. Options are checked as compile's are (a refused one
    fails here) and otherwise only matter to compile."""
    from torch_tensorrt_rtx.dynamo._export import dynamic_shapes
    from torch_tensorrt_rtx.dynamo._input import as_inputs
    from torch_tensorrt_rtx.dynamo._settings import CompilationSettings

    CompilationSettings.from_options(options)
    if inputs is not None and arg_inputs is not None:
        raise TypeError("trace: give inputs=... or arg_inputs=... (the same thing), not both")
    given = arg_inputs if inputs is None else inputs
    specs = as_inputs(list(given) if given is not None else [])
    kwarg_specs = dict(zip(kwarg_inputs, as_inputs(list(kwarg_inputs.values())))) if kwarg_inputs else {}
    return torch.export.export(module, tuple(s.example() for s in specs),
                               kwargs={k: s.example() for k, s in kwarg_specs.items()} or None,
                               dynamic_shapes=dynamic_shapes(specs, module, kwarg_specs), strict=False)


def refit_module_weights(compiled_module: Any, new_weight_module: Any, arg_inputs: Optional[Sequence[Any]] = None,
                         kwarg_inputs: Optional[Dict[str, Any]] = None, verify_output: bool = False,
                         use_weight_map_cache: bool = True, in_place: bool = True) -> Any:
    """Upstream's weight refit, without a rebuild: ``new_weight_module`` (a module, an
    ExportedProgram or a state dict) gives the new weights by name; the engines refit before their
    next run. Always in place here (``compiled_module`` is returned; ``in_place=False`` is refused).
    ``verify_output=True`` runs both on ``arg_inputs``/``kwarg_inputs`` and compares."""
    from torch_tensorrt_rtx.dynamo._refit import refit

    if in_place is not True:
        raise ValueError("refit_module_weights: in_place=False is not supported: the compiled program is refitted "
                         "in place and returned (copy it first if the old weights are still needed)")
    del use_weight_map_cache  # weights are matched by name: there is no weight map to cache
    refit(compiled_module, new_weight_module)
    if verify_output:
        if arg_inputs is None:
            raise ValueError("refit_module_weights: verify_output=True needs arg_inputs")
        module = (new_weight_module.module() if isinstance(new_weight_module, torch.export.ExportedProgram)
                  else new_weight_module)
        if not isinstance(module, torch.nn.Module):
            raise ValueError("refit_module_weights: verify_output=True needs a module or ExportedProgram to compare")
        expected = module(*arg_inputs, **(kwarg_inputs or {}))
        actual = compiled_module(*arg_inputs, **(kwarg_inputs or {}))
        for e, a in zip(torch.utils._pytree.tree_leaves(expected), torch.utils._pytree.tree_leaves(actual)):
            if isinstance(e, torch.Tensor) and not torch.allclose(a.to(e.device, e.dtype), e, rtol=1e-2, atol=1e-2):
                raise RuntimeError("refit_module_weights: verify_output: the refitted program's outputs differ from "
                                   f"the new model's (max abs error {(a.to(e.device, e.dtype) - e).abs().max():.3g})")
    return compiled_module


def convert_exported_program_to_serialized_trt_engine(exported_program: Any, inputs: Optional[Sequence[Any]] = None, *,
                                                      arg_inputs: Optional[Sequence[Any]] = None,
                                                      kwarg_inputs: Optional[Dict[str, Any]] = None,
                                                      **options: Any) -> bytes:
    """Upstream's whole-program engine: the serialized TensorRT-RTX engine (bytes, for
    ``tensorrt_rtx.Runtime.deserialize_cuda_engine``) of a program that compiles to exactly one
    engine (``require_full_compilation=True``; ``min_block_size`` defaults to 1). Its bindings are
    ``input_<k>`` / ``output_<k>``; upstream's ``*_binding_names`` options are refused."""
    from torch_tensorrt_rtx._compile import compile as compile_program
    from torch_tensorrt_rtx._compile import engine_records

    naming = sorted(k for k in ("arg_input_binding_names", "kwarg_input_binding_names", "output_binding_names")
                    if options.pop(k, None) is not None)
    if naming:
        raise ValueError(f"convert_exported_program_to_serialized_trt_engine: {naming} not supported: the engine's "
                         "bindings are named input_<k> and output_<k>")
    options.setdefault("min_block_size", 1)
    compiled = compile_program(exported_program, inputs, arg_inputs=arg_inputs, kwarg_inputs=kwarg_inputs,
                               require_full_compilation=True, **options)
    records = list(engine_records(compiled).values())
    if len(records) != 1:
        raise ValueError(f"convert_exported_program_to_serialized_trt_engine: the program compiled to {len(records)} "
                         "engines; one serialized engine needs the whole program in one engine (use "
                         "torch_tensorrt_rtx.compile and save for programs with several)")
    return bytes(records[0].engine)


def convert_method_to_trt_engine(module: Any, method_name: str = "forward", inputs: Optional[Sequence[Any]] = None,
                                 arg_inputs: Optional[Sequence[Any]] = None,
                                 kwarg_inputs: Optional[Dict[str, Any]] = None, ir: str = "default",
                                 enabled_precisions: Any = frozenset(), **options: Any) -> bytes:
    """Upstream's ``torch_tensorrt.convert_method_to_trt_engine``: the serialized engine of
    ``module.forward`` (see convert_exported_program_to_serialized_trt_engine)."""
    from torch_tensorrt_rtx._compile import _frontend

    if method_name != "forward":
        raise ValueError(f"convert_method_to_trt_engine: method_name={method_name!r}; only 'forward' is traced "
                         "(torch.export traces forward)")
    if _frontend(ir) != "dynamo":
        raise ValueError("convert_method_to_trt_engine: ir='torch_compile' makes no engine ahead of time; "
                         "use ir='dynamo'")
    return convert_exported_program_to_serialized_trt_engine(module, inputs, arg_inputs=arg_inputs,
                                                             kwarg_inputs=kwarg_inputs,
                                                             enabled_precisions=enabled_precisions, **options)


# Windows. NVIDIA documents TensorRT-RTX engines as portable across GPUs and operating systems
# ("build once, deploy anywhere"), and Windows gets this package's Python runtime: upstream's
# cross-compile names are compile / save / load here, with no Windows-specific build. A
# Linux-built program has not been run on Windows by this project.

def cross_compile_for_windows(exported_program: Any, inputs: Optional[Sequence[Any]] = None, *,
                              arg_inputs: Optional[Sequence[Any]] = None,
                              kwarg_inputs: Optional[Dict[str, Any]] = None, **options: Any) -> torch.fx.GraphModule:
    """Upstream's ``torch_tensorrt.dynamo.cross_compile_for_windows``: ``compile`` (engines are
    OS-portable); save the result with ``save_cross_compiled_exported_program`` or ``save``."""
    return compile(exported_program, inputs, arg_inputs=arg_inputs, kwarg_inputs=kwarg_inputs, **options)


def compile_and_save_for_windows(module: Any, file_path: Any, inputs: Optional[Sequence[Any]] = None,
                                 arg_inputs: Optional[Sequence[Any]] = None,
                                 kwarg_inputs: Optional[Dict[str, Any]] = None, **options: Any) -> None:
    """Upstream's top-level ``torch_tensorrt.cross_compile_for_windows(module, file_path, inputs=...)``:
    ``compile`` then ``save`` to `file_path`."""
    from torch_tensorrt_rtx._compile import save

    save(compile(module, inputs, arg_inputs=arg_inputs, kwarg_inputs=kwarg_inputs, **options), file_path)


def save_cross_compiled_exported_program(gm: torch.fx.GraphModule, file_path: Any) -> None:
    """Upstream's name for ``save(gm, file_path)``."""
    from torch_tensorrt_rtx._compile import save

    save(gm, file_path)


def load_cross_compiled_exported_program(file_path: Any = "") -> Any:
    """Upstream's name for ``load(file_path)`` (any operating system here, not only Windows)."""
    from torch_tensorrt_rtx._compile import load

    return load(file_path)


class DeviceType(enum.Enum):
    """Upstream's device types; only GPU applies to TensorRT-RTX."""

    GPU = "gpu"
    DLA = "dla"
    UNKNOWN = "unknown"


@dataclasses.dataclass
class Device:
    """Upstream's ``torch_tensorrt.Device`` for the ``device=`` option: ``Device("cuda:0")``,
    ``Device(gpu_id=0)``. Engines run on the CUDA device of their inputs; DLA is refused."""

    spec: Optional[str] = None
    gpu_id: int = 0
    device_type: DeviceType = DeviceType.GPU
    dla_core: int = -1
    allow_gpu_fallback: bool = False

    def __post_init__(self) -> None:
        if self.spec is not None:
            device = torch.device(self.spec.replace("gpu", "cuda"))
            if device.type != "cuda":
                raise ValueError(f"Device({self.spec!r}): TensorRT-RTX engines run on a CUDA GPU ('cuda:N')")
            self.gpu_id = device.index or 0
        if self.device_type is not DeviceType.GPU or self.dla_core >= 0:
            raise ValueError("Device: RTX GPUs have no DLA; use Device('cuda:N')")

    def to(self, kind: type) -> Any:
        return torch.device("cuda", self.gpu_id) if kind is torch.device else self
