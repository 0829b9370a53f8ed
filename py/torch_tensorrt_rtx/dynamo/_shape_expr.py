"""Output-shape expressions of engine calls: parsed, never evaluated as Python.

The compiler stores each output dim as an int or as sympy's printing of an expression over
input dims (``"i0_0"`` = input 0, dim 0). Saved programs and engine records carry these
strings, so they are data from a file: this module accepts exactly the language the
compiler emits and rejects everything else with ``ShapeExpressionError`` naming the
expression::

    evaluate_dim("2*i0_0 + 1", [x])            # x.shape[0] * 2 + 1 (works on SymInts)
    evaluate_dim("CeilDiv(i0_1, 8)", [x])
    evaluate_dim("().__class__", [x])          # ShapeExpressionError

Grammar (integers only)::

    expr   := term (("+" | "-") term)*
    term   := unary (("*" | "//" | "%") unary)*
    unary  := "-" unary | power
    power  := atom ("**" INT)?                 # sympy prints x*x as x**2; exponent 0..16
    INT    := [0-9]+                           # ASCII digits only, at most int64
    atom   := INT | DIM | FUNC "(" expr ("," expr)* ")" | "(" expr ")"
    DIM    := "i" INT "_" INT                  # must name an existing input dim
    FUNC   := FloorDiv | CeilDiv | Mod | PythonMod (2 arguments) | Max | Min (1 or more)

Cost is bounded by size: at most MAX_LENGTH characters, MAX_DEPTH levels of nesting, exponents
whose product along any nesting path is at most MAX_EXPONENT (so ``((9**16)**16)**16`` is refused
while parsing, before anything is computed), and every integer met while evaluating, literal or
intermediate, within int64. Division or modulo by zero names the expression too.
"""
from __future__ import annotations

import functools
import re
from typing import Any, Callable, List, Sequence, Tuple, Union

Dim = Union[int, str]
MAX_LENGTH = 1000  # characters; the compiler's expressions are a few dozen
MAX_DEPTH = 50
MAX_EXPONENT = 16
MAX_VALUE = 2**63 - 1  # a tensor dim is an int64

_TOKEN = re.compile(r"[ \t]*(?:(?P<int>[0-9]+)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>//|\*\*|[-+*%(),]))")
_DIM = re.compile(r"i([0-9]+)_([0-9]+)\Z")


class ShapeExpressionError(ValueError):
    """An output-shape expression outside the language the compiler emits."""


def _sym_max(*args: Any) -> Any:
    import torch

    return functools.reduce(torch.sym_max, args)


def _sym_min(*args: Any) -> Any:
    import torch

    return functools.reduce(torch.sym_min, args)


# name -> (function, minimum arguments, maximum arguments or None for any)
_FUNCTIONS: dict = {
    "FloorDiv": (lambda a, b: a // b, 2, 2),
    "CeilDiv": (lambda a, b: -(-a // b), 2, 2),
    "Mod": (lambda a, b: a % b, 2, 2),
    "PythonMod": (lambda a, b: a % b, 2, 2),
    "Max": (_sym_max, 1, None),
    "Min": (_sym_min, 1, None),
}
_BINARY: dict = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
    "//": lambda a, b: a // b, "%": lambda a, b: a % b,
}

# A parsed expression: a tree of tuples, evaluated against the input dims.
Node = Tuple[Any, ...]


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: List[Tuple[str, str, int]] = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip(" \t") == "":
                break
            match = _TOKEN.match(text, pos)
            if match is None:
                self.fail(f"unexpected character {text[pos:].lstrip()[:1]!r}", pos)
            kind = match.lastgroup
            self.tokens.append((kind, match.group(kind), match.start(kind)))
            pos = match.end()
        self.index = 0

    def fail(self, why: str, pos: int) -> None:
        raise ShapeExpressionError(
            f"output shape expression {self.text!r}: {why} at character {pos}; expected integers, input "
            f"dims i<k>_<d>, + - * // % ** and FloorDiv/CeilDiv/Mod/Max/Min (the language the "
            f"compiler emits; a .pt2 must come from a trusted source)")

    def peek(self) -> Tuple[str, str, int]:
        return self.tokens[self.index] if self.index < len(self.tokens) else ("end", "", len(self.text))

    def take(self, value: str) -> bool:
        if self.peek()[1] == value and self.peek()[0] == "op":
            self.index += 1
            return True
        return False

    def expect(self, value: str) -> None:
        if not self.take(value):
            kind, token, pos = self.peek()
            self.fail(f"expected {value!r}, found {token or 'the end'!r}", pos)

    def parse(self) -> Node:
        node = self.expr(0)
        kind, token, pos = self.peek()
        if kind != "end":
            self.fail(f"unexpected {token!r}", pos)
        return node

    def expr(self, depth: int) -> Node:
        if depth > MAX_DEPTH:
            self.fail("nested too deeply", self.peek()[2])
        node = self.term(depth)
        while self.peek()[1] in ("+", "-") and self.peek()[0] == "op":
            op = self.peek()[1]
            self.index += 1
            node = ("bin", op, node, self.term(depth))
        return node

    def term(self, depth: int) -> Node:
        node = self.unary(depth)
        while self.peek()[1] in ("*", "//", "%") and self.peek()[0] == "op":
            op = self.peek()[1]
            self.index += 1
            node = ("bin", op, node, self.unary(depth))
        return node

    def unary(self, depth: int) -> Node:
        if self.take("-"):
            if depth > MAX_DEPTH:
                self.fail("nested too deeply", self.peek()[2])
            return ("neg", self.unary(depth + 1))
        return self.power(depth)

    def power(self, depth: int) -> Node:
        node = self.atom(depth)
        if self.take("**"):
            kind, token, pos = self.peek()
            if kind != "int" or int(token) > MAX_EXPONENT:
                self.fail(f"the exponent must be an integer 0..{MAX_EXPONENT}, found {token!r}", pos)
            self.index += 1
            if int(token) * _exponent_product(node) > MAX_EXPONENT:
                self.fail(f"powers of powers multiply their exponents beyond {MAX_EXPONENT}", pos)
            node = ("pow", node, int(token))
        return node

    def atom(self, depth: int) -> Node:
        kind, token, pos = self.peek()
        if kind == "int":
            self.index += 1
            if len(token) > 19 or int(token) > MAX_VALUE:
                self.fail(f"the integer {token[:25]!r} is beyond int64", pos)
            return ("int", int(token))
        if kind == "name":
            self.index += 1
            dim = _DIM.match(token)
            if dim:
                return ("dim", int(dim.group(1)), int(dim.group(2)), token)
            if token not in _FUNCTIONS:
                self.fail(f"unknown name {token!r}", pos)
            fn, lo, hi = _FUNCTIONS[token]
            self.expect("(")
            args = [self.expr(depth + 1)]
            while self.take(","):
                args.append(self.expr(depth + 1))
            self.expect(")")
            if len(args) < lo or (hi is not None and len(args) > hi):
                self.fail(f"{token} takes {lo if hi == lo else f'{lo} or more'} argument(s), found "
                          f"{len(args)}", pos)
            return ("call", token, tuple(args))
        if self.take("("):
            node = self.expr(depth + 1)
            self.expect(")")
            return node
        self.fail(f"unexpected {token or 'end'!r}", pos)
        raise AssertionError  # unreachable: fail raises


def _exponent_product(node: Node) -> int:
    """The largest product of exponents along any path of `node` (1 without powers)."""
    kind = node[0]
    if kind == "pow":
        return node[2] * _exponent_product(node[1])
    children = node[2:4] if kind == "bin" else node[1:2] if kind == "neg" else node[2] if kind == "call" else ()
    return max((_exponent_product(child) for child in children), default=1)


@functools.lru_cache(maxsize=1024)
def parse(text: str) -> Node:
    """The expression tree of ``text``; raises ShapeExpressionError outside the language."""
    if not isinstance(text, str):
        raise ShapeExpressionError(f"output shape expression {text!r}: expected a string or an int")
    if len(text) > MAX_LENGTH:
        raise ShapeExpressionError(f"output shape expression {text[:40]!r}... is {len(text)} characters "
                                   f"long; expected at most {MAX_LENGTH}")
    return _Parser(text).parse()


def _bounded(value: Any, text: str) -> Any:
    if isinstance(value, int) and abs(value) > MAX_VALUE:
        raise ShapeExpressionError(f"output shape expression {text!r}: an intermediate value is beyond int64")
    return value


def _apply(fn: Callable, args: Sequence[Any], text: str) -> Any:
    try:
        return _bounded(fn(*args), text)
    except ZeroDivisionError:
        raise ShapeExpressionError(f"output shape expression {text!r} divides by zero") from None


def _evaluate(node: Node, inputs: Sequence[Any], text: str) -> Any:
    kind = node[0]
    if kind == "int":
        return node[1]
    if kind == "dim":
        _, k, d, name = node
        if k >= len(inputs) or d >= len(inputs[k].shape):
            raise ShapeExpressionError(
                f"output shape expression {text!r}: {name} names input {k} dim {d}, but the engine call has "
                f"{len(inputs)} input(s) of ranks {[len(t.shape) for t in inputs]}")
        return inputs[k].shape[d]
    if kind == "neg":
        return -_evaluate(node[1], inputs, text)
    if kind == "pow":
        base = _evaluate(node[1], inputs, text)
        return functools.reduce(lambda a, _: _bounded(a * base, text), range(node[2]), 1)
    if kind == "bin":
        return _apply(_BINARY[node[1]], (_evaluate(node[2], inputs, text), _evaluate(node[3], inputs, text)), text)
    fn: Callable = _FUNCTIONS[node[1]][0]
    return _apply(fn, [_evaluate(arg, inputs, text) for arg in node[2]], text)


def evaluate_dim(dim: Dim, inputs: Sequence[Any]) -> Any:
    """An output dim from the spec: an int, or an expression of input dims (works on SymInts)."""
    if isinstance(dim, bool) or not isinstance(dim, (int, str)):
        raise ShapeExpressionError(f"output shape dim {dim!r}: expected an int or an expression string")
    if isinstance(dim, int):
        return dim
    return _evaluate(parse(dim), inputs, dim)
