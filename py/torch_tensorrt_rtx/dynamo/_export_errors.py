"""What `compile` adds to a torch.export error (as a note: torch's own message stays first).

    exc.add_note(export_failure_note(exc, "Net", specs, kwarg_specs))

- A guard on a dynamic dim ("Constraints violated (batch)!"): names the input dims behind each
  Dim export names, with their ranges. The shapes are right; the range is what the code refuses.
- A branch on, or a Python number read from, tensor data (GuardOnDataDependentSymNode): says so;
  no input shape would help.
- Anything else (a shape that does not fit forward, a dtype an op refuses): the inputs given, and
  the advice to check them against forward.
"""
from __future__ import annotations

import re
from typing import Dict, List, Mapping, Sequence

from torch_tensorrt_rtx.dynamo._input import Input, describe

_PREFIX = "torch_tensorrt_rtx.compile"


def _dim_places(specs: Sequence[Input], kwarg_specs: Mapping[str, Input]) -> Dict[str, List[str]]:
    """Dim name torch.export knows (see _export._dims_of) -> the input dims it stands for."""
    places: Dict[str, List[str]] = {}
    labelled = [(spec.label(k), f"input {k}" + (f" ({spec.name!r})" if spec.name else ""), spec)
                for k, spec in enumerate(specs)]
    labelled += [(key, f"keyword input {key!r}", spec) for key, spec in kwarg_specs.items()]
    for label, where, spec in labelled:
        for d, (lo, _opt, hi) in spec.dynamic_dims.items():
            name = spec.dim_name(d) or f"{label}_dim{d}"
            places.setdefault(name, []).append(f"{where} dim {d} (range [{lo}, {hi}])")
    return places


def _is_data_dependent(exc: BaseException) -> bool:
    try:
        from torch.fx.experimental.symbolic_shapes import GuardOnDataDependentSymNode
    except ImportError:  # pragma: no cover - every torch this project supports has it
        GuardOnDataDependentSymNode = ()  # noqa: N806
    return isinstance(exc, GuardOnDataDependentSymNode) or "data-dependent expression" in str(exc)


def export_failure_note(exc: BaseException, module_name: str, specs: Sequence[Input],
                        kwarg_specs: Mapping[str, Input]) -> str:
    message = str(exc)
    violated = re.search(r"Constraints violated \(([^)]*)\)", message)
    if violated:
        places = _dim_places(specs, kwarg_specs)
        names = [n.strip() for n in violated.group(1).split(",") if n.strip()]
        found = "; ".join(f"{n} = {', '.join(places[n])}" for n in names if n in places) or ", ".join(names)
        return (f"{_PREFIX}: torch.export cannot keep these dynamic dims over their ranges: {found}. "
                f"{module_name}.forward constrains them (torch's guard and suggested fix are above): give those "
                "dims a range where the code holds (Input min/opt/max), or make them static.")
    if _is_data_dependent(exc):
        return (f"{_PREFIX}: {module_name}.forward branches on, or reads a Python number from, a value computed "
                "from tensor data (the expression above, e.g. u0, names it); torch.export cannot trace that whatever "
                "the input shapes are. Rewrite it with tensor ops (torch.where) or torch._check, or compile the "
                "parts of the model around it.")
    keywords = f" and keyword inputs { {k: describe(s) for k, s in kwarg_specs.items()} }" if kwarg_specs else ""
    return (f"{_PREFIX}: tracing {module_name}.forward with inputs {[describe(s) for s in specs]}{keywords} "
            "failed; check each input's shape and dtype against forward")
