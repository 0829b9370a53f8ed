"""Some entries of the C++ virtual table behind a pybind11 object, replaced by other functions.

    table = VirtualTable(obj, binding_file, entries=7)   # obj: a Python subclass of a TensorRT-RTX interface
    why = table.replace({5: address})                     # None, or why nothing was changed
    table.original(5)                                     # the entry's function before
    table.restore()                                       # the object's own table again

TensorRT-RTX's callback interfaces (IStreamWriter, ILogger, IProgressMonitor) are classes that
applications implement in C++, so the layout of their virtual tables is TensorRT-RTX's public ABI
(Itanium C++ ABI on Linux: each virtual function in declaration order, a base's first, a virtual
destructor as two entries). The C++ object behind a Python subclass is given a copy of its own
table with some entries pointing elsewhere; the copy lives as long as this object, which must
restore the object's own table before the copy goes (the object's destructor is called through it).

Checked before anything is written, else nothing is changed and the reason is returned: Linux; the
C++ object found where pybind11 keeps a simple instance's pointer, in readable memory; its table and
the table's entries inside the binding's library, the entries in its executable code. Callers then
check with a probe call through the binding that the replaced entry is reached, and say so
(`verified`): later objects of the same Python class whose C++ object has that same table skip the
checks, which read /proc/self/maps and resolve paths. Those system calls let other threads take the
GIL, and beside a thread busy in Python each one could wait for it (5 ms each, 0.2 s per build).
"""
from __future__ import annotations

import ctypes
import os
import sys
from typing import Callable, Dict, List, Optional, Tuple

_TABLE_HEAD = 2  # entries before the address an object points to: offset-to-top and the type info
# Words after the table copied too, where the binding's memory goes on: a call through an entry the
# caller did not expect (a layout other than the documented one) then reads what it would have read.
_SPARE = 8
_POINTER = ctypes.sizeof(ctypes.c_void_p)


def _mappings() -> List[Tuple[int, int, str, str]]:
    """(start, end, permissions, file) of this process's memory mappings (Linux)."""
    found = []
    with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
        for line in maps:
            fields = line.split(maxsplit=5)
            start, _, end = fields[0].partition("-")
            found.append((int(start, 16), int(end, 16), fields[1], fields[5].strip() if len(fields) > 5 else ""))
    return found


def binding_file(interface: type) -> Optional[str]:
    """The file of the extension module that defines `interface` (a pybind11 class), or None."""
    module = sys.modules.get(interface.__module__)
    path = getattr(module, "__file__", None)
    return os.path.realpath(path) if path else None


_VERIFIED: Dict[type, int] = {}  # Python class -> its C++ objects' own table, verified by a probe
_SPARE_WORDS: Dict[int, int] = {}  # a table's address -> the spare words found readable after it


def read_pointer(address: int) -> int:
    return ctypes.c_void_p.from_address(address).value or 0


class VirtualTable:
    """See the module docstring."""

    def __init__(self, obj: object, binding: Optional[str], entries: int) -> None:
        self.obj, self.binding, self.entries = obj, binding, entries
        self._cpp = 0  # the C++ object's address while its table is replaced
        self._own = 0
        self._copy = None
        self._originals: List[int] = []

    @property
    def cpp_address(self) -> int:
        """The C++ object's address while its table is replaced, else 0."""
        return self._cpp

    def original(self, index: int) -> int:
        return self._originals[_TABLE_HEAD + index]

    def replace(self, functions: Dict[int, int]) -> Optional[str]:
        """Point entries {index: function address} elsewhere; None, or why nothing was changed."""
        if not sys.platform.startswith("linux"):
            return "not Linux"
        if any(not 0 <= index < self.entries for index in functions):
            raise ValueError(f"VirtualTable: entries {sorted(functions)} outside the table's {self.entries}")
        known = _VERIFIED.get(type(self.obj))
        if known is not None:  # this class's layout passed every check and a probe in this process
            cpp = read_pointer(id(self.obj) + 2 * _POINTER)
            if cpp and read_pointer(cpp) == known:
                self._install(cpp, known, self._copy_of(known, None), functions)
                return None
        if self.binding is None:
            return "the binding's library file is unknown"
        try:
            mappings = _mappings()
        except OSError as exc:
            return f"this process's memory mappings could not be read ({exc})"

        def inside(address: int, file: Optional[str] = None, permission: str = "r") -> bool:
            return any(start <= address < end and permission in perms and (file is None or (
                path.startswith("/") and os.path.realpath(path) == file)) for start, end, perms, path in mappings)

        if type(self.obj).__basicsize__ < 3 * _POINTER:
            return "the Python object is too small to be a pybind11 instance"
        cpp = read_pointer(id(self.obj) + 2 * _POINTER)  # pybind11: after the object's header, a simple instance's pointer
        if not (cpp and inside(cpp) and inside(cpp + _POINTER - 1)):
            return "no C++ object where pybind11 keeps it"
        own = read_pointer(cpp)
        head = own - _TABLE_HEAD * _POINTER
        if not (inside(head, self.binding) and inside(own + (self.entries - 1) * _POINTER, self.binding)):
            return "the C++ object's virtual table is not in the binding's library"
        if not all(inside(read_pointer(own + k * _POINTER), self.binding, "x") for k in range(self.entries)):
            return "the virtual table's entries are not the binding's code"
        self._install(cpp, own, self._copy_of(own, lambda end: inside(end - 1, self.binding)), functions)
        return None

    def verified(self) -> None:
        """The replaced entries were reached: later objects of this class with the same table skip the checks."""
        if self._cpp:
            _VERIFIED[type(self.obj)] = self._own

    def _copy_of(self, own: int, readable: Optional[Callable[[int], bool]]) -> List[int]:
        """The table's words from its head and up to _SPARE words after it: as many as
        `readable(end address)` allows, or, for a verified table (None), as many as its first copy had."""
        if readable is None:
            spare = _SPARE_WORDS.get(own, 0)
        else:
            spare = 0
            while spare < _SPARE and readable(own + (self.entries + spare + 1) * _POINTER):
                spare += 1
            _SPARE_WORDS[own] = spare
        head = own - _TABLE_HEAD * _POINTER
        return [read_pointer(head + k * _POINTER) for k in range(_TABLE_HEAD + self.entries + spare)]

    def _install(self, cpp: int, own: int, words: List[int], functions: Dict[int, int]) -> None:
        copy = (ctypes.c_void_p * len(words))(*words)
        for index, address in functions.items():
            copy[_TABLE_HEAD + index] = address
        self._cpp, self._own, self._copy, self._originals = cpp, own, copy, words
        ctypes.c_void_p.from_address(cpp).value = ctypes.addressof(copy) + _TABLE_HEAD * _POINTER

    def restore(self) -> None:
        if self._cpp:
            ctypes.c_void_p.from_address(self._cpp).value = self._own
        self._cpp, self._copy = 0, None
