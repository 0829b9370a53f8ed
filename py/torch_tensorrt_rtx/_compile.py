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

from torch_tensorrt_rtx.dynamo._export import dynamic_shapes as derive_dynamic_shapes
from torch_tensorrt_rtx.dynamo._engine_cache import start_weight_digests
from torch_tensorrt_rtx.dynamo.conversion._weight_casts import start_weight_casts
from torch_tensorrt_rtx.dynamo._export import export_aten
from torch_tensorrt_rtx.dynamo._input import Input, as_inputs
from torch_tensorrt_rtx.dynamo._settings import CompilationSettings
from torch_tensorrt_rtx.dynamo._summary import CompileReport
from torch_tensorrt_rtx.dynamo.verification import VerificationReport, VerificationUnavailableError, verify

logger = logging.getLogger(__name__)

__all__ = ["Input", "compile", "save", "load", "verify", "engine_records", "program_engines", "VerificationReport",
           "VerificationUnavailableError"]

_EXPORT_INFO = "_torch_tensorrt_rtx_export"
_EXPORT_KWARGS = "_torch_tensorrt_rtx_export_kwargs"  # {name: Input} given as kwarg_inputs


def _check_arity(module: torch.nn.Module, specs: Sequence[Input], kwarg_specs: Dict[str, Input]) -> None:
    """compile passes the examples to forward as given: say so when they do not fit."""
    try:
        signature = inspect.signature(module.forward)
    except (TypeError, ValueError):
        return
    try:
        signature.bind(*specs, **kwarg_specs)
    except TypeError as exc:
        keyword_only = [p.name for p in signature.parameters.values()
                        if p.kind == inspect.Parameter.KEYWORD_ONLY and p.default is inspect.Parameter.empty
                        and p.name not in kwarg_specs]
        hint = (f"; give keyword-only parameters ({', '.join(keyword_only)}) through kwarg_inputs={{...}}"
                if keyword_only else "")
        keywords = f" and keyword input(s) {sorted(kwarg_specs)}" if kwarg_specs else ""
        raise TypeError(f"compile: got {len(specs)} input(s){keywords} for {type(module).__name__}.forward{signature}: "
                        f"{exc}{hint}") from None


def _eval_mode(module: torch.nn.Module) -> bool:
    """module.eval(); False for a module whose mode is fixed: ``ep.module()`` of an ExportedProgram
    refuses eval() (its graph was traced in the mode it was exported in)."""
    try:
        module.eval()
    except NotImplementedError:
        return False
    return True


_IR_NOTES = {
    "ts": "TorchScript is not supported by this TensorRT-RTX compiler",
    "torchscript": "TorchScript is not supported by this TensorRT-RTX compiler",
    "fx": "the FX frontend is deprecated upstream and not part of this compiler",
}


def _frontend(ir: Any) -> str:
    """'dynamo' (this compile, through torch.export) or 'torch_compile'; anything else is refused."""
    if ir in ("dynamo", "default"):
        return "dynamo"
    if ir == "torch_compile":
        return "torch_compile"
    why = _IR_NOTES.get(ir, "unknown ir") if isinstance(ir, str) else "ir must be a string"
    raise ValueError(f"compile: ir={ir!r}: {why}; use ir='dynamo' (the default: torch.export, ahead of time) or "
                     "ir='torch_compile' (torch.compile with backend='tensorrt_rtx')")


def compile(module: Union[torch.nn.Module, torch.export.ExportedProgram], inputs: Optional[Sequence[Union[Input, torch.Tensor]]] = None, *,
            arg_inputs: Optional[Sequence[Union[Input, torch.Tensor]]] = None,
            kwarg_inputs: Optional[Dict[str, Union[Input, torch.Tensor]]] = None,
            min_block_size: int = 3, torch_executed_ops: Sequence[Any] = (),
            require_full_compilation: bool = False, compute_capabilities: Sequence[str] = (),
            progress: bool = True, keep_networks: bool = True,
            enabled_precisions: Any = frozenset(),
            pass_through_build_failures: bool = False, truncate_double: bool = True,
            cache_built_engines: bool = True, reuse_cached_engines: bool = True,
            engine_cache_dir: Optional[Union[str, os.PathLike]] = None,
            engine_cache_size: int = 5 << 30, ir: str = "default", **options: Any) -> torch.fx.GraphModule:
    """Compile `module` ahead of time. Returns a GraphModule (call it like `module`) with
    `.compile_report` (a CompileReport). `inputs` (or its upstream name `arg_inputs`): one Input or
    example tensor per positional input; `kwarg_inputs`: {parameter name: Input or tensor} for
    inputs forward takes by keyword (`model(input_ids=..., attention_mask=...)`); the compiled
    module is then called with the same keywords. `enabled_precisions={torch.float16}` (or bf16)
    computes an fp32 model's matmuls and convolutions in that dtype, sensitive ops in fp32.
    `module` may be an ExportedProgram (``torch.export.export(...)``) or its ``.module()``; for
    an ExportedProgram `inputs` default to its example inputs over the ranges of its Dims.
    `pass_through_build_failures=True` raises a converter's or an engine build's error instead of
    keeping the node(s) in PyTorch. `truncate_double=True` (default) computes float64 ops in float32
    (TensorRT-RTX has no float64; a Float64Warning gives the count); False keeps them in PyTorch.
    `cache_built_engines`, `reuse_cached_engines`, `engine_cache_dir`, `engine_cache_size`: the engine
    cache (see CompilationSettings; on by default, so the same engine is never built twice).

    Upstream Torch-TensorRT's spellings work too: `ir="dynamo"` / `"default"` (this function) or
    `"torch_compile"` (returns ``torch.compile(module, backend="tensorrt_rtx", options=...)``), and
    every upstream option name in `**options`, honoured or refused with the reason (see
    dynamo/_upstream_options.py and the README section "Upstream Torch-TensorRT code")."""
    # Every keyword of this signature that is a CompilationSettings field, with **options: one settings object.
    named = {name: value for name, value in locals().items() if name in CompilationSettings.field_names()}
    from torch_tensorrt_rtx.dynamo._compiler import compile_graph
    from torch_tensorrt_rtx._program_cache import ProgramCache, recompile_later

    if _frontend(ir) == "torch_compile":
        CompilationSettings.from_options({**named, **options})  # a bad option fails now, not at the first call
        return torch.compile(module, backend="tensorrt_rtx", options={**named, **options})
    settings = CompilationSettings.from_options({**named, **options})

    if inputs is not None and arg_inputs is not None:
        raise TypeError("compile: give inputs=... or arg_inputs=... (the same thing, upstream's name), not both")
    inputs = arg_inputs if inputs is None else inputs
    if isinstance(inputs, (Input, torch.Tensor)):
        inputs = [inputs]  # one input given alone, as upstream accepts (two of upstream's own examples do this)
    from_program = isinstance(module, torch.export.ExportedProgram)
    if from_program:
        if inputs is None and not kwarg_inputs:
            from torch_tensorrt_rtx.dynamo._exported_inputs import exported_inputs

            inputs, kwarg_inputs = exported_inputs(module)
        module = module.module()
    if inputs is None and not kwarg_inputs:
        raise TypeError("compile: inputs must be a list or tuple with one Input or example tensor per positional "
                        "input of forward (e.g. inputs=[x]), and/or kwarg_inputs={name: Input or tensor}; got None")
    if kwarg_inputs is not None and not isinstance(kwarg_inputs, dict):
        raise TypeError(f"compile: kwarg_inputs must be a dict of parameter name -> Input or tensor, such as "
                        f"{{'input_ids': ids}}; got {type(kwarg_inputs).__name__}")
    kwarg_specs = dict(zip(kwarg_inputs, as_inputs(list(kwarg_inputs.values())))) if kwarg_inputs else {}
    specs = as_inputs(inputs if inputs is not None else [])
    was_training = isinstance(module, torch.nn.Module) and module.training
    if isinstance(module, torch.nn.Module):
        _check_arity(module, specs, kwarg_specs)
        was_training = _eval_mode(module) and was_training
        if was_training:
            logger.warning("compile: %s is in train mode; compiling it for inference (as in eval mode: dropout off, "
                           "batch norm uses running statistics). Call .eval() first to silence this.",
                           type(module).__name__)
    weight_digests = start_weight_digests(module, settings)  # hashed on other cores while export traces
    # An ExportedProgram is traced already: the program cache has no export to skip.
    programs = None if from_program else ProgramCache.open(module, settings, weight_digests)
    exported = pending = weight_casts = None
    try:
        # The program key: traced now when the cache may hold the program, else beside the build.
        pending = programs.pending_key(module, specs, kwarg_specs, settings) if programs is not None else None
        if pending is not None and pending.may_hit and pending.result() is not None:
            programs.key_seconds(pending)
            hit = programs.load(pending.result(), recompile_later(module, lambda original: compile(
                original, specs, kwarg_inputs=kwarg_specs, **settings.as_dict())))
            if hit is not None:
                setattr(hit, _EXPORT_INFO, specs)
                setattr(hit, _EXPORT_KWARGS, kwarg_specs)
                return hit
        # fp16 copies of the weights, made on another core while torch.export traces
        weight_casts = start_weight_casts(module, settings.reduced_precision)
        exported = export_aten(module, specs, kwarg_specs, for_compile_graph=True)
    except Exception as exc:
        from torch_tensorrt_rtx.dynamo._outputs import unexportable_outputs

        outputs_problem = unexportable_outputs(module, [s.example() for s in specs],
                                               {k: s.example() for k, s in kwarg_specs.items()})
        if outputs_problem is not None:
            raise TypeError(f"compile: {outputs_problem}") from exc
        from torch_tensorrt_rtx.dynamo._export_errors import export_failure_note

        exc.add_note(export_failure_note(exc, type(module).__name__, specs, kwarg_specs))
        raise
    finally:
        # The caller's module keeps its mode (the exported graph is already fixed), once the program
        # key's trace, which may still run during the build, is done with it.
        if was_training and (exported is None or pending is None):
            module.train()
            was_training = False
        if weight_digests is not None and exported is None:
            weight_digests.close()
        if weight_casts is not None and exported is None:
            weight_casts.close()
    try:
        compiled, report = compile_graph(exported.graph_module, exported.symbol_ranges, settings,
                                         weight_digests=weight_digests, weight_casts=weight_casts,
                                         at_first_build=pending.start if pending is not None else None)
        key = pending.result() if pending is not None else None
    finally:
        if pending is not None:
            pending.join()  # the module's own tensors are back before it returns to the caller
        if was_training:
            module.train()
    compiled.compile_report = report
    if pending is not None:
        programs.key_seconds(pending)
        report.phase_seconds.update(programs.seconds)
    setattr(compiled, _EXPORT_INFO, specs)
    setattr(compiled, _EXPORT_KWARGS, kwarg_specs)
    if key is not None:
        programs.store(key, compiled, pending.marker)
    return compiled


OUTPUT_FORMATS = ("exported_program", "aot_inductor")


def _save_options(output_format: str, retrace: bool, upstream: Dict[str, Any]) -> None:
    """Refuse what save cannot do, naming why (upstream's other save keywords)."""
    if output_format in ("torchscript", "executorch"):
        raise ValueError(f"save: output_format={output_format!r} is not supported for TensorRT-RTX programs "
                         f"(TorchScript and ExecuTorch are not targets here); use 'exported_program' (Python or "
                         f"C++ with torch.export.load) or 'aot_inductor' (C++ with no Python)")
    if retrace is not True:
        raise ValueError("save: retrace=False is not supported: save always traces the compiled module again "
                         "with torch.export (non-strict), which keeps dynamic shapes; leave retrace out")
    if upstream.get("use_legacy_exporter"):
        raise ValueError("save: use_legacy_exporter=True is not supported; save uses torch.export")
    unknown = sorted(set(upstream) - {"use_legacy_exporter"})
    if unknown:
        raise TypeError(f"save: unexpected keyword(s) {unknown} (ExecuTorch options are not supported); expected "
                        "inputs/arg_inputs, kwarg_inputs, output_format, retrace, extra_files, pickle_protocol, "
                        "dynamic_shapes")


def save(compiled: torch.fx.GraphModule, path: Optional[Union[str, os.PathLike]] = None,
         inputs: Optional[Sequence[Union[Input, torch.Tensor]]] = None, *,
         file_path: Optional[Union[str, os.PathLike]] = None,
         arg_inputs: Optional[Sequence[Union[Input, torch.Tensor]]] = None,
         kwarg_inputs: Optional[Dict[str, Union[Input, torch.Tensor]]] = None,
         output_format: str = "exported_program", retrace: bool = True,
         extra_files: Optional[Dict[str, str]] = None, pickle_protocol: Optional[int] = None,
         dynamic_shapes: Any = None, **upstream: Any) -> None:
    """Save a module returned by `compile` with its engines embedded (one packed EngineRecord
    buffer per engine). `inputs` and `kwarg_inputs` (default: the ones given to compile) are only
    traced, never stored: the file holds no pickled example inputs. A program compiled with
    kwarg_inputs is saved with the same keywords: call the loaded module as `m(input_ids=...)`.

    output_format="exported_program" (default) writes a .pt2 ExportedProgram for `load`;
    "aot_inductor" writes an AOTInductor package, which runs from Python
    (torch._inductor.aoti_load_package) or from C++ with no Python
    (torch::inductor::AOTIModelPackageLoader; see examples/cpp_serving). Compiling the package
    runs a C++ compiler (about 30 s for a small graph on a CPU).

    Upstream's keywords: `file_path` (= `path`), `arg_inputs` (= `inputs`), `retrace=True` (always:
    the module is traced again; False is refused), `extra_files` and `pickle_protocol` (passed to torch.export.save),
    `dynamic_shapes` (replaces the ones derived from the Inputs); output formats "torchscript"
    and "executorch" are refused with the reason. An ExportedProgram is saved as it is."""
    _save_options(output_format, retrace, upstream)
    if (path is None) == (file_path is None):
        raise TypeError("save: give the file's path once, as path (or upstream's name, file_path=...)")
    path = path if file_path is None else file_path
    if inputs is not None and arg_inputs is not None:
        raise TypeError("save: give inputs=... or arg_inputs=... (the same thing, upstream's name), not both")
    inputs = arg_inputs if inputs is None else inputs
    if isinstance(compiled, torch.export.ExportedProgram) and output_format == "exported_program":
        _export_save(compiled, path, extra_files, pickle_protocol)
        return
    if output_format not in OUTPUT_FORMATS:
        raise ValueError(f"save: unknown output_format {output_format!r}; expected one of "
                         f"{', '.join(repr(f) for f in OUTPUT_FORMATS)}")
    if inputs is not None or kwarg_inputs is not None:
        specs = as_inputs(inputs) if inputs is not None else []
        kwarg_specs = dict(zip(kwarg_inputs, as_inputs(list(kwarg_inputs.values())))) if kwarg_inputs else {}
    else:
        specs = getattr(compiled, _EXPORT_INFO, None)
        kwarg_specs = getattr(compiled, _EXPORT_KWARGS, None) or {}
    if specs is None:
        raise ValueError("save: pass inputs=... and/or kwarg_inputs=... (the module was not produced by "
                         "torch_tensorrt_rtx.compile)")
    if os.path.isdir(path):
        raise IsADirectoryError(f"save: {os.fspath(path)} is a directory; give a file path such as "
                                f"{os.path.join(os.fspath(path), 'model.pt2')}")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise FileNotFoundError(f"save: directory {parent} (for {os.fspath(path)}) does not exist; create it first")
    examples = tuple(spec.example() for spec in specs)
    kwarg_examples = {key: spec.example() for key, spec in kwarg_specs.items()}
    if dynamic_shapes is None:
        dynamic_shapes = derive_dynamic_shapes(specs, compiled, kwarg_specs)
    program = torch.export.export(compiled, examples, kwargs=kwarg_examples or None,
                                  dynamic_shapes=dynamic_shapes, strict=False)
    if output_format == "aot_inductor":
        torch._inductor.aoti_compile_and_package(program, package_path=os.fspath(path))
    else:
        # Loading needs no example inputs, and torch.export would pickle them into the file
        # (data/sample_inputs): leave them out.
        program.example_inputs = None
        _export_save(program, path, extra_files, pickle_protocol)
    logger.info("saved %s (%s, %d bytes)", os.fspath(path), output_format, os.path.getsize(path))


def _export_save(program: torch.export.ExportedProgram, path: Union[str, os.PathLike],
                 extra_files: Optional[Dict[str, str]], pickle_protocol: Optional[int]) -> None:
    """torch.export.save, writing tensors (the engines) from their own memory, not a copy of each."""
    from torch_tensorrt_rtx._archive_in_place import tensor_bytes_in_place

    with tensor_bytes_in_place():
        torch.export.save(program, os.fspath(path), **_export_save_kwargs(extra_files, pickle_protocol))


def _export_save_kwargs(extra_files: Optional[Dict[str, str]], pickle_protocol: Optional[int]) -> Dict[str, Any]:
    kwargs: Dict[str, Any] = {}
    if extra_files:
        kwargs["extra_files"] = extra_files
    if pickle_protocol is not None:
        kwargs["pickle_protocol"] = pickle_protocol
    return kwargs


def load(path: Union[str, os.PathLike]) -> torch.export.ExportedProgram:
    """Load a .pt2 written by `save`. Works without a GPU; engines deserialize at first execution.
    Returns a LoadedProgram: the ExportedProgram, whose `.module()` is cheap to call (a fast path
    for the saved input signature; anything else takes torch's own checks, with their errors).
    The program can also be called directly: `load(path)(x)`."""
    from torch_tensorrt_rtx._loaded_program import as_loaded_program
    from torch_tensorrt_rtx.dynamo import _engine_op  # noqa: F401  (registers the op before loading)

    path = os.fspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"load: {path} is a directory, not a .pt2 file written by torch_tensorrt_rtx.save")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"load: no such file: {path}")
    try:
        program = torch.export.load(path)
    except Exception as exc:  # a zip error, a missing archive entry, a bad schema: all mean "not our .pt2"
        raise ValueError(f"load: {path} is not a complete .pt2 ExportedProgram as written by torch_tensorrt_rtx.save "
                         f"(truncated, or another format such as torch.save): {type(exc).__name__}: {exc}") from exc
    return as_loaded_program(program)


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
