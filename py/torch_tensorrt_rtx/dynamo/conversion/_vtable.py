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
check with a probe call through the binding that the replaced entry is reached.
"""
from __future__ import annotations

import ctypes
import os
import sys
from typing import Dict, List, Optional, Tuple

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
        if self.binding is None:
            return "the binding's library file is unknown"
        mappings = _mappings()

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
        originals = [read_pointer(head + k * _POINTER) for k in range(_TABLE_HEAD + self.entries)]
        if not all(inside(entry, self.binding, "x") for entry in originals[_TABLE_HEAD:]):
            return "the virtual table's entries are not the binding's code"
        if any(not 0 <= index < self.entries for index in functions):
            raise ValueError(f"VirtualTable: entries {sorted(functions)} outside the table's {self.entries}")
        spare = []
        for k in range(self.entries, self.entries + _SPARE):
            if not inside(own + (k + 1) * _POINTER - 1, self.binding):
                break
            spare.append(read_pointer(own + k * _POINTER))
        copy = (ctypes.c_void_p * (len(originals) + len(spare)))(*originals, *spare)
        for index, address in functions.items():
            copy[_TABLE_HEAD + index] = address
        self._cpp, self._own, self._copy, self._originals = cpp, own, copy, originals
        ctypes.c_void_p.from_address(cpp).value = ctypes.addressof(copy) + _TABLE_HEAD * _POINTER
        return None

    def restore(self) -> None:
        if self._cpp:
            ctypes.c_void_p.from_address(self._cpp).value = self._own
        self._cpp, self._copy = 0, None
