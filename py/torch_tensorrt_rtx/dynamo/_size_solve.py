"""Express a shape symbol through an engine's input dims, so its output sizes can be computed
from its inputs alone (the engine op's fake implementation and the runtime do exactly that).

    solve(s0, [(64*s0, i0_1)], {s0: (1, 4, 8)})                  -> FloorDiv(i0_1, 64)
    solve(s0, [((s0 - 1)//2 + 1, i0_2)], {s0: (16, 33, 64)},
          outputs=[(s0 - 1)//4 + 1])                             -> 2*i0_2 - 1

An engine input whose size is `a*s + b` gives s exactly. A size that rounds (a strided conv:
`((s - 1)//2) + 1`) has no inverse, but the outputs may still be a function of it: s is replaced by
the smallest preimage `a*d + b` of the input dim d, and that is kept only if every output
expression gives the same value for every s in its bounded range (checked, not assumed).
"""
from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Sequence, Tuple

import sympy
from torch.utils._sympy.functions import FloorDiv

logger = logging.getLogger(__name__)
Range = Tuple[int, int, int]
MAX_CHECKED_VALUES = 1 << 16  # a symbol's range is checked exhaustively up to this many values


def _linear(symbol: sympy.Symbol, derived: Sequence[Tuple[Any, sympy.Symbol]]) -> Any:
    for expr, dim_name in derived:
        if expr.free_symbols != {symbol} or not expr.is_polynomial(symbol):
            continue
        poly = sympy.Poly(expr, symbol)
        if poly.degree() != 1:
            continue
        a, b = poly.all_coeffs()
        if a.is_integer and b.is_integer and a != 0:
            return FloorDiv(dim_name - b, a)
    return None


def _value(expr: Any, symbol: sympy.Symbol, v: int) -> int:
    return int(expr.xreplace({symbol: sympy.Integer(v)}))


def _preimage(symbol, expr, dim_name, lo: int, hi: int, outputs: Sequence[Any]) -> Optional[Any]:
    """a*dim_name + b if it reproduces every output over s in [lo, hi], else None."""
    # (d, smallest s with that d) for the first three distinct d: the first may start before lo,
    # so the step comes from the second and third.
    firsts: List[Tuple[int, int]] = []
    seen = None
    for s in range(lo, hi + 1):
        d = _value(expr, symbol, s)
        if d != seen:
            firsts.append((d, s))
            seen = d
        if len(firsts) == 3:
            break
    if len(firsts) < 3 or firsts[2][0] == firsts[1][0]:
        return None
    (d1, s1), (d2, s2) = firsts[1:]
    a, rest = divmod(s2 - s1, d2 - d1)
    if rest or a == 0:
        return None
    b = s1 - a * d1
    candidate = a * dim_name + b
    for s in range(lo, hi + 1):
        s_back = a * _value(expr, symbol, s) + b
        if any(_value(out, symbol, s) != _value(out, symbol, s_back) for out in outputs):
            return None
    return candidate


def solve(symbol: sympy.Symbol, derived: Sequence[Tuple[Any, sympy.Symbol]],
          ranges: Dict[Any, Range], outputs: Sequence[Any] = ()) -> Any:
    """`symbol` as an expression of the engine input dims named in `derived` ((size expression,
    dim name) pairs), valid for every output expression in `outputs`; None if there is none."""
    exact = _linear(symbol, derived)
    if exact is not None:
        return exact
    if symbol not in ranges:
        return None
    lo, _, hi = ranges[symbol]
    if hi - lo + 1 > MAX_CHECKED_VALUES:
        return None
    uses = [o for o in outputs if not isinstance(o, int) and symbol in o.free_symbols]
    if any(o.free_symbols != {symbol} for o in uses):
        return None  # mixes symbols: a one-symbol check says nothing about it
    for expr, dim_name in derived:
        if expr.free_symbols == {symbol}:
            found = _preimage(symbol, expr, dim_name, lo, hi, uses)
            if found is not None:
                logger.debug("size %s = %s through input dim %s (%s)", symbol, found, dim_name, expr)
                return found
    return None
