"""``refit_module_weights``: new weights into a compiled program without rebuilding its engines.

Only refittable programs (``strip_engine_weights=True`` or ``immutable_weights=False``) can be
refitted: their engines take their weights as trailing inputs of the engine op, named in its
output spec (``OutputSpec.refit_weights``), from program buffers. Refitting copies the new values
into those buffers (and into parameters the program runs in PyTorch) and marks each engine for
a refit before its next run (runtime/refit.py). Weights are matched by their name in the model's
``state_dict`` (the FX name of the weight in the exported program).
"""
from __future__ import annotations

import operator
from typing import Any, Dict, List, Mapping, Tuple

import torch
from torch.fx import GraphModule

from torch_tensorrt_rtx.dynamo import _engine_op
from torch_tensorrt_rtx.dynamo._program_engine import ProgramEngine


def new_state(source: Any) -> Mapping[str, torch.Tensor]:
    """The weights of a module, an ExportedProgram or a state dict, by name."""
    if isinstance(source, torch.export.ExportedProgram):
        return {**source.state_dict, **{k: v for k, v in source.constants.items() if isinstance(v, torch.Tensor)}}
    if isinstance(source, torch.nn.Module):
        return source.state_dict()
    if isinstance(source, Mapping):
        return source
    raise TypeError(f"refit_module_weights: new weights must be a torch.nn.Module, an ExportedProgram or a "
                    f"state dict, got {type(source).__name__}")


def engine_weights(compiled: torch.nn.Module) -> Tuple[Dict[str, List[torch.Tensor]], List[torch.Tensor], int,
                                                     Dict[str, List[str]]]:
    """(TensorRT weight name -> the program buffers holding it, packed records of refittable
    engines, number of engines, model weight -> engine constants derived from it at build)."""
    weights: Dict[str, List[torch.Tensor]] = {}
    derived: Dict[str, List[str]] = {}
    records: List[torch.Tensor] = []
    engines = 0
    for gm in (m for m in compiled.modules() if isinstance(m, GraphModule)):
        calls = [n for op in (_engine_op.execute_engine, _engine_op.execute_engine.default)
                 for n in gm.graph.find_nodes(op="call_function", target=op)]
        for node in calls:
            engines += 1
            spec = _engine_op.load_spec(node.args[2])
            names = list(spec.get("refit_weights", []))
            for constant, sources in spec.get("refit_derived", {}).items():
                for source in sources:
                    derived.setdefault(source, []).append(constant)
            if not names:
                continue
            records.append(operator.attrgetter(node.args[1].target)(gm))
            for name, arg in zip(names, node.args[0][-len(names):]):
                weights.setdefault(name, []).append(operator.attrgetter(arg.target)(gm))
    return weights, records, engines, derived


def _unchanged(targets: List[torch.Tensor], value: torch.Tensor) -> bool:
    return bool(targets) and all(torch.equal(t, value.detach().reshape(t.shape).to(t.device, t.dtype)) for t in targets)


def _check_shape(target: torch.Tensor, name: str, value: torch.Tensor) -> None:
    """An engine weight may be the model's weight reshaped (a layer norm's [C] as [1, 1, C])."""
    if target.numel() != value.numel() or (target.dim() == value.dim() and target.shape != value.shape):
        raise ValueError(f"refit_module_weights: weight {name!r} has shape {tuple(value.shape)}, the compiled "
                         f"program's has {tuple(target.shape)}; a new shape needs a new compile")


def refit(compiled: torch.nn.Module, source: Any) -> List[str]:
    """Copies the new weights in and marks the engines for refit; returns the weight names refitted."""
    state = new_state(source)
    weights, records, engines, derived = engine_weights(compiled)
    if engines and not records:
        raise ValueError("refit_module_weights: the program's engines hold their weights and are not refittable; "
                         "compile with strip_engine_weights=True or immutable_weights=False")
    own = dict(compiled.named_parameters())
    own.update(compiled.named_buffers())
    unknown, folded, plan = [], [], []
    for name, value in state.items():
        targets = weights.get(name) or ([own[name]] if name in own else [])
        if name in derived and not _unchanged(targets, value):
            folded.append(f"{name} (in {', '.join(derived[name][:3])})")
            continue
        if not targets:
            unknown.append(name)
        for target in targets:
            _check_shape(target, name, value)
            plan.append((target, value))
    if folded:
        raise ValueError(f"refit_module_weights: new values of weights {sorted(folded)[:8]} ({len(folded)}) cannot be "
                         "refitted: engine constants were computed from them at build time (a folded batch norm, a "
                         "transposed tied weight); pass only the weights that changed, or compile the model with the new "
                         "weights")
    if unknown:
        raise ValueError(f"refit_module_weights: weights {sorted(unknown)[:8]} ({len(unknown)}) are not weights of "
                         "the compiled program (an engine folded them into a constant at compile time, e.g. a "
                         "precision cast or a fused op); compile the model with the new weights instead")
    with torch.no_grad():  # nothing is changed unless every weight fits
        for target, value in plan:
            target.copy_(value.detach().reshape(target.shape).to(target.device, target.dtype))
    for record in records:  # whichever runtime runs them
        ProgramEngine("", record).mark_for_refit()
    return [n for n in state if n in weights]
