"""What the engine cache's key says about the converters a partition's ops can reach.

The package's own converters are covered by the key's fingerprint of the package sources. What
is not: converters registered at run time by the user (``@converter``, upstream's
``dynamo_tensorrt_converter``), converters removed with ``remove_converter``, and their
validators. For every op of a partition the key therefore lists the registry's entries in order
(priority, flags, function names) and, for a function defined outside this package, a fingerprint
of its code: its bytecode, constants and names (nested functions too), the values it closes over,
and the bytes of the source file that defines it (so a helper it calls in the same file counts).

A closure over a value with no stable text (an object, a tensor), a callable that is not a plain
Python function, or an unreadable source file makes the partition uncacheable: it is built, never
taken from the cache. A helper the user's converter calls in *another* file is not covered.
"""
from __future__ import annotations

import enum
import functools
import hashlib
import os
import stat
import types
from typing import Any, Iterable, List

import torch

from torch_tensorrt_rtx.dynamo._engine_cache_key import Uncacheable

_PACKAGE = __name__.split(".")[0]
_PLAIN = (bool, int, float, str, bytes, type(None))
_SOURCE_LIMIT = 16 * 1024 * 1024  # bytes read from one user source file


def _own(fn: Any) -> bool:
    module = getattr(fn, "__module__", "") or ""
    return (module == _PACKAGE or module.startswith(_PACKAGE + ".")) and not getattr(fn, "__wrapped__", None)


@functools.lru_cache(maxsize=64)
def _file_digest(path: str, mtime_ns: int, size: int) -> str:
    """SHA-256 of the file at `path` as it was (mtime, size) when looked at; never blocks on it."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO must not hang the compile
    with open(fd, "rb") as source:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise Uncacheable(f"a converter whose source {path!r} is not a regular file")
        if (status.st_mtime_ns, status.st_size) != (mtime_ns, size) or size > _SOURCE_LIMIT:
            raise Uncacheable(f"a converter whose source file {path!r} changed while read or is larger "
                              f"than {_SOURCE_LIMIT} bytes")
        return hashlib.sha256(source.read(_SOURCE_LIMIT + 1)).hexdigest()


def source_file_digest(path: str, what: str = "a converter") -> str:
    """SHA-256 of a Python source file, read at most once per (mtime, size); Uncacheable naming
    `what` when it cannot be read, is not a regular file or is too large."""
    try:
        status = os.stat(path)
        return _file_digest(path, status.st_mtime_ns, status.st_size)
    except Uncacheable as exc:
        raise Uncacheable(str(exc).replace("a converter", what, 1)) from None
    except OSError:
        raise Uncacheable(f"{what} whose source file {path!r} cannot be read") from None


def _value_text(value: Any, seen: set) -> str:
    if isinstance(value, _PLAIN) or isinstance(value, (torch.dtype, enum.Enum)):
        return repr(value)
    if isinstance(value, (torch._ops.OpOverload, torch._ops.OpOverloadPacket)):
        return str(value)
    if isinstance(value, (tuple, list, frozenset)):
        items = sorted(map(repr, value)) if isinstance(value, frozenset) else [_value_text(v, seen) for v in value]
        return f"{type(value).__name__}({','.join(items)})"
    if isinstance(value, types.CodeType):
        return _code_text(value, seen)
    if callable(value):
        return function_text(value, seen)
    raise Uncacheable(f"a converter closing over a value of type {type(value).__name__}")


def _code_text(code: types.CodeType, seen: set) -> str:
    consts = ",".join(_value_text(c, seen) for c in code.co_consts)
    return f"code({code.co_code.hex()};{consts};{','.join(code.co_names)})"


def function_text(fn: Any, seen: set) -> str:
    """A stable text for `fn`: its name if it is this package's own, else its code fingerprint."""
    if _own(fn):
        # This package's sources are in the key; only functions it closes over may be the user's
        # (upstream's capability_validator behind our validator, for one).
        wrapped = [function_text(cell.cell_contents, seen) for cell in getattr(fn, "__closure__", None) or ()
                   if isinstance(cell.cell_contents, (types.FunctionType, functools.partial))]
        return f"{fn.__module__}.{getattr(fn, '__qualname__', fn.__name__)}({','.join(wrapped)})"
    if id(fn) in seen:
        return "<recursive>"
    seen.add(id(fn))
    if isinstance(fn, functools.partial):
        return (f"partial({function_text(fn.func, seen)};{_value_text(fn.args, seen)};"
                f"{_value_text(sorted(fn.keywords.items()), seen)})")
    if not isinstance(fn, types.FunctionType):
        raise Uncacheable(f"a converter or validator {type(fn).__name__} that is not a Python function")
    cells = [_value_text(cell.cell_contents, seen) for cell in fn.__closure__ or ()]
    defaults = _value_text(fn.__defaults__ or (), seen)
    source = source_file_digest(fn.__code__.co_filename)
    return (f"{fn.__module__}.{fn.__qualname__}[{source}]{_code_text(fn.__code__, seen)}"
            f"cells({','.join(cells)})defaults{defaults}")


def converters_text(entries_by_op: Iterable[tuple]) -> str:
    """One line per (op name, registry entries) pair: the entries in the order lookup tries them."""
    lines: List[str] = []
    for op_name, entries in sorted(entries_by_op, key=lambda pair: pair[0]):
        parts = []
        for entry in entries:
            validator = "-" if entry.validator is None else function_text(entry.validator, set())
            parts.append(f"{function_text(entry.fn, set())}/v={validator}/p={entry.priority}/"
                         f"dyn={entry.supports_dynamic_shapes}/host={entry.host_weights}")
        lines.append(f"{op_name}:{';'.join(parts)}")
    return "\n".join(lines)
