"""How `verify` compares two tensors.

    c = compare(actual, expected, rtol=1e-3, scale_tol=1e-4)
    c.ok, c.max_abs_error, c.nonfinite, c.first_nonfinite

- NaN or Inf on one side where the other has a finite value (or Inf of the other sign) is a
  mismatch, counted, with the index of the first one. Where both are NaN, or both the same Inf,
  the values agree.
- Finite values must satisfy ``|a - e| <= rtol * |e| + scale_tol * scale``, where `scale` is the
  largest finite magnitude of `expected`, floored at the smallest normal number of its dtype.
  The tolerance follows the output's magnitude: outputs of 1e-16 get a tolerance of order 1e-20,
  not an absolute 1e-4 that would pass whatever the engine computes.
- `max_abs_error` is the real largest error: NaN when a NaN meets a finite value, Inf when an
  Inf does, never 0 because of a NaN (Python's ``max(0.0, nan)`` is 0.0: use `worst`).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Iterable, Optional, Tuple

import torch


@dataclasses.dataclass
class Comparison:
    ok: bool
    max_abs_error: float  # NaN/Inf when non-finite values disagree
    scale: float = 0.0  # largest finite |expected|: what the tolerance is relative to
    nonfinite: int = 0  # elements where NaN/Inf on one side meets something else on the other
    first_nonfinite: Optional[Tuple[int, ...]] = None  # index of the first such element
    nonfinite_kind: str = ""  # e.g. "NaN where the reference is finite"
    finite_error: float = 0.0  # largest error over the elements finite on both sides

    def describe_nonfinite(self) -> str:
        if not self.nonfinite:
            return ""
        return f"{self.nonfinite} value(s) {self.nonfinite_kind}, first at index {self.first_nonfinite}"


def worst(errors: Iterable[float], start: float = 0.0) -> float:
    """The largest error, NaN if any is NaN (where Python's max would drop it)."""
    result = start
    for e in errors:
        if math.isnan(e) or math.isnan(result):
            result = math.nan
        else:
            result = max(result, e)
    return result


def floor_scale(dtype: torch.dtype) -> float:
    """Smallest magnitude a tolerance is taken relative to (an all-zero output still gets one)."""
    return float(torch.finfo(dtype).tiny) if dtype.is_floating_point else 1.0


def _nonfinite_disagreement(a: torch.Tensor, e: torch.Tensor) -> Tuple[torch.Tensor, str]:
    """Mask of elements where a non-finite value meets a different value, and what kind it is."""
    either = ~(a.isfinite() & e.isfinite())
    same = (a == e) | (a.isnan() & e.isnan())
    mask = either & ~same
    if not bool(mask.any()):
        return mask, ""
    kinds = []
    if bool((a.isnan() & mask & e.isfinite()).any()):
        kinds.append("NaN where the reference is finite")
    if bool((a.isinf() & mask & e.isfinite()).any()):
        kinds.append("Inf where the reference is finite")
    if bool((e.isnan() & mask).any()):
        kinds.append("finite or Inf where the reference is NaN")
    if bool((e.isinf() & mask).any()):
        kinds.append("not matching the reference's Inf")
    return mask, " / ".join(kinds)


def compare(actual: torch.Tensor, expected: torch.Tensor, rtol: float, scale_tol: float,
            allowed: Optional[float] = None, floor: Optional[float] = None) -> Comparison:
    """`allowed`, when given, replaces the tolerance on finite values by one absolute bound.
    `floor` replaces the expected dtype's smallest normal number as the least scale (a program
    computed in float16 cannot be judged below float16's own smallest normal number)."""
    if actual.shape != expected.shape:
        return Comparison(False, math.inf)
    if not actual.numel():
        return Comparison(True, 0.0)
    if not expected.is_floating_point():
        err = float((actual.double() - expected.double()).abs().max())
        return Comparison(bool(torch.equal(actual, expected)), err)
    a, e = actual.double(), expected.double()
    mask, kind = _nonfinite_disagreement(a, e)
    finite = a.isfinite() & e.isfinite()
    diff = (a - e).abs()[finite]
    finite_err = float(diff.max()) if diff.numel() else 0.0
    magnitudes = e.abs()[e.isfinite()]
    scale = float(magnitudes.max()) if magnitudes.numel() else 0.0
    if allowed is None:
        least = floor_scale(expected.dtype) if floor is None else floor
        bound = rtol * e.abs()[finite] + scale_tol * max(scale, least)
        finite_ok = bool((diff <= bound).all())
    else:
        finite_ok = finite_err <= allowed
    count = int(mask.sum())
    if not count:
        return Comparison(finite_ok, finite_err, scale, finite_error=finite_err)
    first = tuple(int(i) for i in mask.nonzero()[0])
    err = math.nan if bool((mask & (a.isnan() | e.isnan())).any()) else math.inf
    return Comparison(False, err, scale, count, first, kind, finite_err)
