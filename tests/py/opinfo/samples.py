"""PyTorch's OpInfo samples as small modules that torch_tensorrt_rtx can compile.

    cases, skipped = sample_cases(opinfo, torch.float16)   # runnable cases, {reason: count} of the rest
    module = Batch(cases)                                   # every case a submodule "samples.<i>"

A case is one `SampleInput` of one OpInfo in one dtype: its tensors (anywhere in input, args or
kwargs, lists included) become the module's inputs and everything else is fixed in the module.
A sample is "not applicable" when eager PyTorch cannot run it, when it is not tensor-in and
tensor-out (no tensor input, or an output that is not a tensor or a flat tuple/list of tensors),
when its output is random (two eager calls differ), uninitialized (`empty_like`) or complex.
"""
from __future__ import annotations

import collections
import dataclasses
import functools
from typing import Any, Dict, List, Sequence, Tuple

import torch
import torch.nn as nn
from torch.utils._pytree import tree_flatten, tree_unflatten

_SUPPORTED_INPUTS = (torch.float32, torch.float16, torch.bfloat16, torch.int32, torch.int64, torch.int8,
                     torch.uint8, torch.bool, torch.float64)


@functools.lru_cache(maxsize=1)
def op_db() -> Dict[str, Any]:
    """OpInfo full name ("nn.functional.relu", "max.reduction_with_dim") -> OpInfo."""
    from torch.testing._internal.common_methods_invocations import op_db as db

    return {full_name(op): op for op in db}


def full_name(op) -> str:
    return f"{op.name}.{op.variant_test_name}" if op.variant_test_name else op.name


class SampleModule(nn.Module):
    """fn(*sample) with the sample's tensors as forward's inputs and its other values fixed."""

    def __init__(self, fn, leaves: List[Any], spec, tensor_slots: List[int]) -> None:
        super().__init__()
        self.fn, self.leaves, self.spec, self.tensor_slots = fn, leaves, spec, tensor_slots

    def forward(self, *tensors):
        leaves = list(self.leaves)
        for slot, tensor in zip(self.tensor_slots, tensors):
            leaves[slot] = tensor
        sample_input, args, kwargs = tree_unflatten(leaves, self.spec)
        return self.fn(sample_input, *args, **kwargs)


@dataclasses.dataclass
class Case:
    op: str             # OpInfo full name
    dtype: torch.dtype
    index: int          # position among the OpInfo's samples for this dtype
    module: SampleModule
    inputs: List[torch.Tensor]
    outputs: int        # how many tensors forward returns

    @property
    def label(self) -> str:
        shapes = ", ".join("x".join(map(str, t.shape)) or "scalar" for t in self.inputs)
        return f"{self.op}[{str(self.dtype).replace('torch.', '')} #{self.index}]({shapes})"


def _flat_outputs(out: Any):
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (tuple, list)) and out and all(isinstance(o, torch.Tensor) for o in out):
        return list(out)
    return None


def _same(a: List[torch.Tensor], b: List[torch.Tensor]) -> bool:
    return all(x.shape == y.shape and x.dtype == y.dtype and torch.equal(x.nan_to_num(0), y.nan_to_num(0))
               and torch.equal(x.isnan(), y.isnan()) if x.is_floating_point() else torch.equal(x, y)
               for x, y in zip(a, b))


# OpInfos whose output is uninitialized memory: any value is right.
_UNINITIALIZED = {"empty", "empty_like", "new_empty", "new_empty_strided", "empty_strided", "empty_permuted"}


def _case(op, dtype, index, sample) -> Tuple[Any, str]:
    """(Case, "") or (None, why the sample is not applicable)."""
    if full_name(op) in _UNINITIALIZED:
        return None, "output is uninitialized memory"
    leaves, spec = tree_flatten((sample.input, list(sample.args), dict(sample.kwargs)))
    slots = [k for k, leaf in enumerate(leaves) if isinstance(leaf, torch.Tensor)]
    tensors = [leaves[k] for k in slots]
    if not tensors:
        return None, "no tensor input"
    if any(t.layout != torch.strided or t.is_complex() or t.dtype not in _SUPPORTED_INPUTS for t in tensors):
        return None, "an input that is sparse, complex or of an unusual dtype"
    tensors = [t.detach().clone().contiguous() for t in tensors]
    module = SampleModule(op.op, leaves, spec, slots)
    try:
        with torch.no_grad():
            first = _flat_outputs(module(*[t.clone() for t in tensors]))
            second = _flat_outputs(module(*[t.clone() for t in tensors])) if first is not None else None
    except Exception:  # noqa: BLE001 - whatever eager rejects is not a case
        return None, "eager PyTorch raises"
    if first is None:
        return None, "output is not a tensor or a tuple of tensors"
    if any(o.is_complex() or o.layout != torch.strided for o in first):
        return None, "complex or sparse output"
    if not _same(first, second):
        return None, "random output (two eager calls differ)"
    return Case(full_name(op), dtype, index, module, tensors, len(first)), ""


def sample_cases(op, dtype: torch.dtype, limit: int = 0) -> Tuple[List[Case], Dict[str, int]]:
    """The OpInfo's samples for `dtype` on CPU as cases (the first `limit` when limit > 0), and
    how many were not applicable, by reason."""
    skipped: Dict[str, int] = collections.Counter()
    cases = []
    try:
        samples = list(op.sample_inputs("cpu", dtype))
    except Exception:  # noqa: BLE001 - an OpInfo whose generator fails for this dtype
        return [], {"sample generator raises": 1}
    for index, sample in enumerate(samples):
        if limit and index >= limit:
            break
        case, why = _case(op, dtype, index, sample)
        if case is None:
            skipped[why] += 1
        else:
            cases.append(case)
    return cases, dict(skipped)


def dtypes_to_run(op) -> List[torch.dtype]:
    """float32 and float16 where the OpInfo supports them on CPU."""
    supported = op.supported_dtypes("cpu")
    return [d for d in (torch.float32, torch.float16) if d in supported]


class Batch(nn.Module):
    """Several cases in one module: forward takes every case's inputs in order and returns every
    case's outputs, flattened. Case i is the submodule `samples.<i>`, so each node of the exported
    graph names its case in `meta["nn_module_stack"]`."""

    def __init__(self, cases: Sequence[Case]) -> None:
        super().__init__()
        self.samples = nn.ModuleList([c.module for c in cases])
        self.arity = [len(c.inputs) for c in cases]

    def forward(self, *tensors):
        outputs, start = [], 0
        for module, arity in zip(self.samples, self.arity):
            out = module(*tensors[start:start + arity])
            outputs.extend([out] if isinstance(out, torch.Tensor) else out)
            start += arity
        return tuple(outputs)


def batch_inputs(cases: Sequence[Case]) -> List[torch.Tensor]:
    return [t.clone() for c in cases for t in c.inputs]
