"""`torch.export.save` without a whole copy of every tensor: engines go to the file from their memory.

torch.export.save (torch 2.13, ``torch.export.pt2_archive._package``) writes each tensor's storage
to the .pt2 archive by first copying it into a ``bytes`` object (``_get_raw_tensor_bytes``). For a
compiled program that is a second copy of every engine, as large as the engine, for the length of
the save. Within ``tensor_bytes_in_place()`` the same storages are handed to the archive writer
itself (``PyTorchFileWriter.write_record(name, storage, nbytes)``, the overload ``torch.save``
uses), so the archive holds exactly the bytes torch would have written, and the file is the same
format: plain ``torch.export.load`` reads it.

Only dense CPU tensors of the plain tensor types take this path; anything else (fake, meta or GPU
tensors, tensor subclasses) goes through torch's own function unchanged. When torch's internals
do not have the expected shape (another torch version), nothing is replaced and save copies as
before (logged at debug level): correctness never depends on this module.
"""
from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any, Iterator

import torch

logger = logging.getLogger(__name__)

_LOCK = threading.Lock()
_STATE: dict = {"depth": 0, "saved": None}  # scopes open in all threads; torch's two functions
_LOCAL = threading.local()  # scopes open in this thread: only these saves write in place
_PLAIN_TYPES = (torch.Tensor, torch.nn.Parameter)


class _StorageBytes:
    """What the replaced `_get_raw_tensor_bytes` returns for a tensor written in place: its storage."""

    __slots__ = ("storage",)

    def __init__(self, storage: torch.UntypedStorage) -> None:
        self.storage = storage


def _package_module() -> Any:
    """torch's pt2 archive module when it has the two functions replaced here, else None."""
    try:
        from torch.export.pt2_archive import _package
    except ImportError:
        return None
    writer = getattr(_package, "PT2ArchiveWriter", None)
    if not callable(getattr(_package, "_get_raw_tensor_bytes", None)) or not callable(getattr(writer, "write_bytes", None)):
        return None
    return _package


def _written_in_place(value: Any) -> bool:
    return (type(value) in _PLAIN_TYPES and value.device.type == "cpu" and value.layout == torch.strided
            and value.untyped_storage().nbytes() > 0)


def in_place_available() -> bool:
    """True when this torch's archive writer can be given storages (saves then copy no tensor)."""
    return _package_module() is not None


@contextlib.contextmanager
def tensor_bytes_in_place() -> Iterator[None]:
    """Within this scope, torch.export.save in this thread writes dense CPU tensors' storages to the
    archive directly instead of through a ``bytes`` copy. Nested and concurrent scopes share one
    replacement of torch's functions, put back when the last scope exits; saves in other threads
    meanwhile take torch's own path (the replacement checks the thread), so none of them can see
    one half replaced and the other put back."""
    package = _package_module()
    if package is None:
        logger.debug("torch.export.save internals differ from torch 2.13's: tensors are copied while saving")
        yield
        return
    with _LOCK:
        if _STATE["depth"] == 0:
            raw_bytes, write_bytes = package._get_raw_tensor_bytes, package.PT2ArchiveWriter.write_bytes

            def get_raw_tensor_bytes(value: torch.Tensor) -> Any:
                if getattr(_LOCAL, "depth", 0) and _written_in_place(value):
                    return _StorageBytes(value.untyped_storage())
                return raw_bytes(value)

            def write_storage_or_bytes(self: Any, name: str, data: Any) -> None:
                if isinstance(data, _StorageBytes):
                    self.archive_file.write_record(name, data.storage, data.storage.nbytes())
                else:
                    write_bytes(self, name, data)

            _STATE["saved"] = (raw_bytes, write_bytes)
            package._get_raw_tensor_bytes = get_raw_tensor_bytes
            package.PT2ArchiveWriter.write_bytes = write_storage_or_bytes
        _STATE["depth"] += 1
    _LOCAL.depth = getattr(_LOCAL, "depth", 0) + 1
    try:
        yield
    finally:
        _LOCAL.depth -= 1
        with _LOCK:
            _STATE["depth"] -= 1
            if _STATE["depth"] == 0:
                package._get_raw_tensor_bytes, package.PT2ArchiveWriter.write_bytes = _STATE["saved"]
                _STATE["saved"] = None
