"""Public entry points: compile (AOT via torch.export), save, load, verify, Input.

    import torch_tensorrt_rtx as trtx
    compiled = trtx.compile(model, inputs=[trtx.Input(min_shape=(1, 64), opt_shape=(8, 64),
                                                      max_shape=(32, 64))])
    print(trtx.verify(compiled, torch.randn(4, 64), reference_module=model))   # CPU check
    trtx.save(compiled, "model.pt2")
    program = trtx.load("model.pt2")     # no GPU needed; engines deserialize at first run

Everything here works without a GPU. Running the engines needs a supported RTX GPU; calling a
compiled module without one raises `RTXGPUUnavailableError` (from the runtime).
"""
from __future__ import annotations

import inspect
import logging
import os
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import torch

from torch_tensorrt_rtx.dynamo._input import Input, as_inputs, describe as _describe
from torch_tensorrt_rtx.dynamo._settings import CompilationSettings
from torch_tensorrt_rtx.dynamo._summary import PHASE_SECONDS_META, CompileReport, PhaseClock
from torch_tensorrt_rtx.dynamo._verify import VerificationReport, VerificationUnavailableError, verify

logger = logging.getLogger(__name__)

__all__ = ["Input", "compile", "save", "load", "verify", "engine_records", "program_engines", "VerificationReport",
           "VerificationUnavailableError"]

_EXPORT_INFO = "_torch_tensorrt_rtx_export"


def _dynamic_shapes(specs: Sequence[Input], module: Any = None) -> Optional[Tuple[Any, ...]]:
    shapes = []
    for k, spec in enumerate(specs):
        dims = {}
        for d, (lo, _opt, hi) in spec.dynamic_dims.items():
            dims[d] = torch.export.Dim(f"input{k}_dim{d}", min=lo, max=hi)
        shapes.append(dims or None)
    if not any(s for s in shapes):
        return None
    params = list(inspect.signature(module.forward).parameters.values()) if module is not None else []
    if params and params[0].kind == inspect.Parameter.VAR_POSITIONAL:
        return (tuple(shapes),)  # forward(*xs): export wants one entry for the packed tuple
    return tuple(shapes)


def export_aten(module: torch.nn.Module, specs: Sequence[Input]):
    """torch.export + our decompositions; returns (ATen GraphModule, symbol -> (min, opt, max)).
    The time of each phase travels to compile_graph in gm.meta[PHASE_SECONDS_META]."""
    from torch_tensorrt_rtx.dynamo.lowering import decomposition_table

    clock = PhaseClock()
    examples = tuple(spec.example() for spec in specs)
    with clock.phase("export"):
        program = torch.export.export(module, examples, dynamic_shapes=_dynamic_shapes(specs, module), strict=False)
    with clock.phase("decompositions"):  # a second trace of the whole program, then unlifting its weights
        program = program.run_decompositions(decomposition_table())
        gm = program.module()
    gm.meta[PHASE_SECONDS_META] = clock.seconds
    symbol_ranges = {}
    for spec, node in zip(specs, gm.graph.find_nodes(op="placeholder")):
        val = node.meta.get("val")
        for d, (lo, opt, hi) in spec.dynamic_dims.items():
            size = val.shape[d]
            if isinstance(size, torch.SymInt) and size.node.expr.is_symbol:
                symbol_ranges[size.node.expr] = (lo, opt, hi)
    return gm, symbol_ranges, examples


def _check_arity(module: torch.nn.Module, specs: Sequence[Input]) -> None:
    """compile passes one example per positional parameter of forward: say so when they do not fit."""
    try:
        signature = inspect.signature(module.forward)
    except (TypeError, ValueError):
        return
    try:
        signature.bind(*specs)
    except TypeError as exc:
        keyword_only = [p.name for p in signature.parameters.values()
                        if p.kind == inspect.Parameter.KEYWORD_ONLY and p.default is inspect.Parameter.empty]
        hint = (f"; keyword-only parameters ({', '.join(keyword_only)}) cannot be given: compile passes inputs "
                "positionally, so wrap the module in one whose forward takes them positionally") if keyword_only else ""
        raise TypeError(f"compile: got {len(specs)} input(s) for {type(module).__name__}.forward{signature}: "
                        f"{exc}{hint}") from None


def compile(module: torch.nn.Module, inputs: Sequence[Union[Input, torch.Tensor]], *,
            min_block_size: int = 3, torch_executed_ops: Sequence[str] = (),
            require_full_compilation: bool = False, compute_capabilities: Sequence[str] = (),
            progress: bool = True, keep_networks: bool = True) -> torch.fx.GraphModule:
    """Compile `module` ahead of time. Returns a GraphModule (call it like `module`) with
    `.compile_report` (a CompileReport). Inputs: one Input or example tensor per positional input."""
    from torch_tensorrt_rtx.dynamo._compiler import compile_graph

    settings = CompilationSettings(min_block_size=min_block_size, torch_executed_ops=torch_executed_ops,
                                   require_full_compilation=require_full_compilation,
                                   compute_capabilities=compute_capabilities, progress=progress,
                                   keep_networks=keep_networks)
    specs = as_inputs(inputs)
    was_training = isinstance(module, torch.nn.Module) and module.training
    if isinstance(module, torch.nn.Module):
        _check_arity(module, specs)
        if was_training:
            logger.warning("compile: %s is in train mode; compiling it for inference (as in eval mode: dropout off, "
                           "batch norm uses running statistics). Call .eval() first to silence this.",
                           type(module).__name__)
        module.eval()
    try:
        gm, symbol_ranges, examples = export_aten(module, specs)
    except Exception as exc:
        exc.add_note(f"torch_tensorrt_rtx.compile: tracing {type(module).__name__}.forward with inputs "
                     f"{[_describe(s) for s in specs]} failed; check each input's shape and dtype against forward")
        raise
    finally:
        if was_training:
            module.train()  # the caller's module keeps its mode; the exported graph is already fixed
    compiled, report = compile_graph(gm, symbol_ranges, settings)
    compiled.compile_report = report
    setattr(compiled, _EXPORT_INFO, specs)
    return compiled


OUTPUT_FORMATS = ("exported_program", "aot_inductor")


def save(compiled: torch.fx.GraphModule, path: Union[str, os.PathLike],
         inputs: Optional[Sequence[Union[Input, torch.Tensor]]] = None, *,
         output_format: str = "exported_program") -> None:
    """Save a module returned by `compile` with its engines embedded (one packed EngineRecord
    buffer per engine). `inputs` (default: the ones given to compile) are only traced, never
    stored: the file holds no pickled example inputs.

    output_format="exported_program" (default) writes a .pt2 ExportedProgram for `load`;
    "aot_inductor" writes an AOTInductor package, which runs from Python
    (torch._inductor.aoti_load_package) or from C++ with no Python
    (torch::inductor::AOTIModelPackageLoader; see examples/cpp_serving). Compiling the package
    runs a C++ compiler (about 30 s for a small graph on a CPU)."""
    if output_format not in OUTPUT_FORMATS:
        raise ValueError(f"save: unknown output_format {output_format!r}; expected one of "
                         f"{', '.join(repr(f) for f in OUTPUT_FORMATS)}")
    specs = as_inputs(inputs) if inputs is not None else getattr(compiled, _EXPORT_INFO, None)
    if specs is None:
        raise ValueError("save: pass inputs=... (the module was not produced by torch_tensorrt_rtx.compile)")
    if os.path.isdir(path):
        raise IsADirectoryError(f"save: {os.fspath(path)} is a directory; give a file path such as "
                                f"{os.path.join(os.fspath(path), 'model.pt2')}")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise FileNotFoundError(f"save: directory {parent} (for {os.fspath(path)}) does not exist; create it first")
    examples = tuple(spec.example() for spec in specs)
    program = torch.export.export(compiled, examples, dynamic_shapes=_dynamic_shapes(specs, compiled), strict=False)
    if output_format == "aot_inductor":
        torch._inductor.aoti_compile_and_package(program, package_path=os.fspath(path))
    else:
        # Loading needs no example inputs, and torch.export would pickle them into the file
        # (data/sample_inputs): leave them out.
        program.example_inputs = None
        torch.export.save(program, os.fspath(path))
    logger.info("saved %s (%s, %d bytes)", os.fspath(path), output_format, os.path.getsize(path))


def load(path: Union[str, os.PathLike]) -> torch.export.ExportedProgram:
    """Load a .pt2 written by `save`. Works without a GPU; engines deserialize at first execution.
    Call `.module()` on the result to run it."""
    from torch_tensorrt_rtx.dynamo import _engine_op  # noqa: F401  (registers the op before loading)

    path = os.fspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"load: {path} is a directory, not a .pt2 file written by torch_tensorrt_rtx.save")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"load: no such file: {path}")
    try:
        return torch.export.load(path)
    except Exception as exc:  # a zip error, a missing archive entry, a bad schema: all mean "not our .pt2"
        raise ValueError(f"load: {path} is not a complete .pt2 ExportedProgram as written by torch_tensorrt_rtx.save "
                         f"(truncated, or another format such as torch.save): {type(exc).__name__}: {exc}") from exc


def _record_tensors(program: Union[torch.export.ExportedProgram, torch.nn.Module]) -> Dict[str, torch.Tensor]:
    if isinstance(program, torch.export.ExportedProgram):
        tensors = dict(program.state_dict)
        tensors.update(program.constants)
    else:
        tensors = dict(program.named_buffers())
    return {name: t for name, t in sorted(tensors.items())
            if name.endswith("_engine") and isinstance(t, torch.Tensor) and t.dtype == torch.uint8}


def engine_records(program: Union[torch.export.ExportedProgram, torch.nn.Module]):
    """The EngineRecords embedded in a compiled module or loaded program, by buffer name."""
    from torch_tensorrt_rtx.runtime import EngineRecord

    return {name: EngineRecord.from_tensor(t.detach().cpu()) for name, t in _record_tensors(program).items()}


def program_engines(program: torch.nn.Module):
    """The engines of a compiled module or of ``load(...).module()``, by buffer name, as
    ``ProgramEngine`` handles: per-engine runtime settings that override the scope's
    (``set_runtime_settings(**)``, ``runtime_settings(**)``, ``clear_runtime_settings()``,
    ``effective_settings()``), on whichever runtime runs the program. The engines belong to
    `program`: they are freed with it."""
    from torch_tensorrt_rtx.dynamo._program_engine import ProgramEngine

    if isinstance(program, torch.export.ExportedProgram):
        raise TypeError("program_engines: pass the module you run (program.module()), whose buffers own the "
                        "engines; an ExportedProgram is not run directly")
    return {name: ProgramEngine(name, t) for name, t in _record_tensors(program).items()}
