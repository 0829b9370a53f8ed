"""JSON from files (output specs in saved programs, engine record metadata), parsed with bounds.

``json.loads`` recurses once per nesting level, so ``[[[[...]]]]`` a few thousand deep raises
RecursionError (or worse, in a thread with a small stack). The nesting depth is measured first,
by one linear scan that skips string contents, and refused past ``MAX_DEPTH``.
"""
from __future__ import annotations

import json
from typing import Any, Union

MAX_DEPTH = 32  # our specs and metadata nest 3 levels


class BoundedJSONError(ValueError):
    """JSON that is malformed, too long or nested too deeply."""


def nesting_depth(text: str) -> int:
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def loads(text: Union[str, bytes], what: str, max_length: int) -> Any:
    """``json.loads(text)`` for data named `what` in errors, within `max_length` characters and
    MAX_DEPTH levels of nesting; anything else is a BoundedJSONError."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BoundedJSONError(f"{what}: not UTF-8 text ({exc})") from None
    if len(text) > max_length:
        raise BoundedJSONError(f"{what}: {len(text)} characters, expected at most {max_length}")
    depth = nesting_depth(text)
    if depth > MAX_DEPTH:
        raise BoundedJSONError(f"{what}: nested {depth} levels deep, expected at most {MAX_DEPTH}")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise BoundedJSONError(f"{what}: not valid JSON ({exc})") from None
