"""A TensorRT-RTX stream writer whose `write` sees each chunk where TensorRT-RTX holds it, without
the Python binding's copy.

    class Sink(InPlaceStreamWriter):
        def write_chunk(self, data) -> int:  # a memoryview of TensorRT-RTX's buffer (in place),
            out.write(data)                  # or `bytes` (the binding's copy) where in place is not possible
            return len(data)

    with Sink() as writer:                 # in place for the duration of the block, if possible
        builder.build_serialized_network_to_stream(network, config, writer)
    writer.in_place                        # whether the chunks came in place

Why: the binding's `PyStreamWriter::write` copies every chunk into a `bytes` object before it calls
Python (TensorRT-RTX hands out 64 MB chunks), and that copy coincides with the build's peak: the
engine's state and TensorRT-RTX's two 64 MB buffers are all alive then (BERT-base: 64 of 675 MB above
the baseline). A C++ writer would avoid it, but C++ against TensorRT-RTX needs NVIDIA's SDK to compile.

How: `IStreamWriter` is an interface applications implement in C++, so the layout of its virtual
table is TensorRT-RTX's public ABI (Itanium C++ ABI on Linux: `write` is entry 4, after
`getAPILanguage`, `getInterfaceInfo` and the two destructor entries). On entering the block the C++
object behind this Python object is given a copy of its own virtual table with `write` pointing to a
ctypes function, which wraps TensorRT-RTX's pointer in a memoryview and calls `write_chunk`; the
object's own table is put back on leaving. The chunk is valid only during the call: `write_chunk`
must not keep the view.

Checked before use, else the binding's own copying path stays (logged at debug level), so a binding
of another layout costs memory, never correctness: the checks of `_vtable.VirtualTable` (Linux, the
C++ object and its table where pybind11 and the binding keep them), and a probe chunk written through
the binding's own `IStreamWriter.write` (a virtual call) reaches the ctypes function, called on this
object with the probe's address and size, not the binding's `write`. `TORCH_TENSORRT_RTX_IN_PLACE_WRITER=0` keeps the binding's copy always.
"""
from __future__ import annotations

import ctypes
import logging
import os
import sys
from typing import Optional

import tensorrt_rtx as trt

from torch_tensorrt_rtx.dynamo.conversion._vtable import VirtualTable, binding_file

logger = logging.getLogger(__name__)

OFF_SWITCH_ENV = "TORCH_TENSORRT_RTX_IN_PLACE_WRITER"  # "0", "off", "false" or "no": always the binding's copy
_ENTRIES = 5  # IStreamWriter's virtual functions, in the Itanium C++ ABI (see the module's docstring)
_WRITE_ENTRY = 4  # the index of IStreamWriter::write among them
_RawWrite = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)

# A prototype of our own: setting restype on ctypes.pythonapi.PyCapsule_New would change it process-wide.
_capsule_new = ctypes.PYFUNCTYPE(ctypes.py_object, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p)(
    ("PyCapsule_New", ctypes.pythonapi))


def _binding_file() -> Optional[str]:
    return binding_file(trt.IStreamWriter)


class InPlaceStreamWriter(trt.IStreamWriter):
    """A `trt.IStreamWriter` that, inside `with`, receives TensorRT-RTX's chunks in place (see the
    module's docstring). Subclasses implement `write_chunk(data) -> int` (the bytes written) for a
    memoryview and for bytes alike."""

    def __init__(self) -> None:
        trt.IStreamWriter.__init__(self)
        self.in_place = False
        self._table: Optional[VirtualTable] = None  # while the C++ object's table is replaced
        self._raw = None  # the ctypes function in it
        self._probe: Optional[list] = None

    def __enter__(self) -> "InPlaceStreamWriter":
        self.in_place = False
        if os.environ.get(OFF_SWITCH_ENV, "").strip().lower() in ("0", "off", "false", "no"):
            why = f"{OFF_SWITCH_ENV} is off"
        else:
            why = self._redirect() if sys.platform.startswith("linux") else "not Linux"
        if why is not None:
            logger.debug("stream writer: chunks come through the binding's copy (%s)", why)
        return self

    def __exit__(self, *exc) -> None:
        self._restore()

    def write_chunk(self, data) -> int:
        raise NotImplementedError(f"{type(self).__name__} must implement write_chunk(data) -> int")

    def write(self, data: bytes) -> int:
        """The binding's path: `data` is its copy of the chunk."""
        if self._probe is not None:  # the check in _redirect did not reach _on_chunk
            self._probe.append(("the binding's copy", len(data)))
            return len(data)
        return self.write_chunk(data)

    def _on_chunk(self, this, data, size) -> int:
        if self._probe is not None:  # the check in _redirect
            self._probe.append((this, data, size))
            return size
        view = memoryview((ctypes.c_ubyte * size).from_address(data)).cast("B") if size > 0 else memoryview(b"")
        try:
            return self.write_chunk(view)
        except Exception:  # noqa: BLE001 - as the binding does: log it, report nothing written (the build fails)
            logger.exception("stream writer: write failed")
            return 0
        finally:
            view.release()

    def _redirect(self) -> Optional[str]:
        """Put the in-place `write` into the C++ object's virtual table; None, or why not."""
        raw = _RawWrite(self._on_chunk)
        table = VirtualTable(self, _binding_file(), _ENTRIES)
        why = table.replace({_WRITE_ENTRY: ctypes.cast(raw, ctypes.c_void_p).value})
        if why is not None:
            return why
        self._table, self._raw = table, raw
        probe = ctypes.create_string_buffer(16)
        self._probe = []
        try:  # the binding's IStreamWriter.write makes a virtual call: it must reach _on_chunk
            written = trt.IStreamWriter.write(self, _capsule_new(ctypes.addressof(probe), None, None), len(probe))
        except Exception as exc:  # noqa: BLE001 - any failure keeps the copying path
            written = f"{type(exc).__name__}: {exc}"
        seen, self._probe = self._probe, None
        if written != len(probe) or seen != [(table.cpp_address, ctypes.addressof(probe), len(probe))]:
            self._restore()
            return f"a probe chunk did not arrive in place ({written!r}, {seen!r})"
        table.verified()
        self.in_place = True
        return None

    def _restore(self) -> None:
        if self._table is not None:
            self._table.restore()
        self._table, self._raw = None, None
