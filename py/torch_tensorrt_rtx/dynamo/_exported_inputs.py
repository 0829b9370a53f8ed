"""Inputs of an ExportedProgram, for ``torch_tensorrt_rtx.compile(ep)`` without ``inputs=``.

    specs, kwarg_specs = exported_inputs(ep)

Each user input becomes an Input with the dtype export traced, its static sizes, and for each
dynamic dim the range export recorded (``ep.range_constraints``, from the Dims given to
torch.export), opt at the example input's size. Dims export made one symbol share a dim name, so
they stay one Dim when compile exports the program's module again.
"""
from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple

import torch

from torch_tensorrt_rtx.dynamo._input import Input


def _bound(value: Any) -> Any:
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError, AttributeError):  # int_oo / sympy.oo: no bound
        return None


def _spec(label: str, val: torch.Tensor, example: Any, ranges: Dict[Any, Any]) -> Input:
    lo, opt, hi, names = [], [], [], []
    for d, size in enumerate(val.shape):
        if not isinstance(size, torch.SymInt):
            lo.append(int(size)), opt.append(int(size)), hi.append(int(size)), names.append(None)
            continue
        expr = size.node.expr
        if not expr.is_symbol:
            raise TypeError(f"compile: input {label} dim {d} of the ExportedProgram has size {expr}, an expression of "
                            "other sizes; pass inputs=[torch_tensorrt_rtx.Input(...), ...] for it")
        vr = ranges.get(expr)
        low, high = _bound(getattr(vr, "lower", None)), _bound(getattr(vr, "upper", None))
        if high is None:
            raise ValueError(f"compile: input {label} dim {d} of the ExportedProgram is dynamic without an upper bound "
                             f"(export's range for {expr} is {vr}); export with torch.export.Dim(..., max=N) or pass "
                             "inputs=[torch_tensorrt_rtx.Input(min_shape=..., opt_shape=..., max_shape=...)]")
        low = max(low or 1, 1)
        seen = example.shape[d] if isinstance(example, torch.Tensor) else low
        lo.append(low), hi.append(high), opt.append(min(max(int(seen), low), high))
        names.append(str(expr) if low != high else None)
    if lo == hi:
        return Input(shape=tuple(lo), dtype=val.dtype)
    return Input(min_shape=tuple(lo), opt_shape=tuple(opt), max_shape=tuple(hi), dtype=val.dtype,
                 dim_names=tuple(names))


def exported_inputs(program: torch.export.ExportedProgram) -> Tuple[List[Input], Dict[str, Input]]:
    """(positional Inputs, {keyword: Input}) of `program`'s user inputs."""
    names = set(program.graph_signature.user_inputs)
    vals = [node.meta.get("val") for node in program.graph.find_nodes(op="placeholder") if node.name in names]
    in_spec = program.call_spec.in_spec
    args_spec, kwargs_spec = (in_spec.child(0), in_spec.child(1)) if in_spec is not None else (None, None)
    keywords: Sequence[str] = list(kwargs_spec.context) if kwargs_spec is not None else []
    positional = len(vals) - len(keywords)
    flat_leaves = args_spec.num_leaves if args_spec is not None else positional
    if (args_spec is not None and args_spec.num_children != positional) or flat_leaves != positional \
            or any(not isinstance(v, torch.Tensor) for v in vals):
        raise TypeError("compile: this ExportedProgram takes nested or non-tensor inputs; pass inputs=[...] "
                        "(and kwarg_inputs={...}) with one Input or tensor per input")
    args, kwargs = program.example_inputs or ((), {})
    examples = list(args) + [kwargs.get(k) for k in keywords]
    examples += [None] * (len(vals) - len(examples))
    labels = [f"{k}" for k in range(positional)] + list(keywords)
    specs = [_spec(label, val, example, program.range_constraints)
             for label, val, example in zip(labels, vals, examples)]
    return specs[:positional], dict(zip(keywords, specs[positional:]))
