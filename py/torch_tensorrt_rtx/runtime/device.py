"""Detect a GPU that TensorRT-RTX can run on, without touching CUDA at import time.

TensorRT-RTX runs on compute capability 8.0, 8.6, 8.9 and 12.x (it refuses e.g. Hopper,
9.0). Engines *build* anywhere, CPU-only included; only execution needs such a GPU.
``supported_gpu()`` imports ``torch.cuda`` lazily, on first call.
"""
from __future__ import annotations

import functools
from typing import NamedTuple, Optional

SUPPORTED_CAPABILITIES_TEXT = "8.0, 8.6, 8.9 or 12.x"
_SUPPORTED_EXACT = {(8, 0), (8, 6), (8, 9)}


class RTXGPUUnavailableError(RuntimeError):
    """Execution was requested but no GPU supported by TensorRT-RTX is available."""


class GPUStatus(NamedTuple):
    supported: bool
    device_index: Optional[int]
    reason: str  # what was found, for error messages and pytest skip reasons


def is_supported_compute_capability(major: int, minor: int) -> bool:
    return (major, minor) in _SUPPORTED_EXACT or major >= 12


@functools.lru_cache(maxsize=None)
def supported_gpu() -> GPUStatus:
    """Status of the current CUDA device (cached for the process)."""
    try:
        import torch
    except Exception as exc:  # pragma: no cover - torch is a hard dependency
        return GPUStatus(False, None, f"torch is not importable ({exc})")
    try:
        if not torch.cuda.is_available():
            return GPUStatus(False, None, "no CUDA device is available to torch "
                             f"(torch {torch.__version__}, CUDA build: {torch.version.cuda})")
        index = torch.cuda.current_device()
        major, minor = torch.cuda.get_device_capability(index)
        name = torch.cuda.get_device_name(index)
    except Exception as exc:
        return GPUStatus(False, None, f"querying the CUDA device failed ({exc})")
    found = f"cuda:{index} {name} with compute capability {major}.{minor}"
    if not is_supported_compute_capability(major, minor):
        return GPUStatus(False, index, f"{found} is not supported by TensorRT-RTX")
    return GPUStatus(True, index, found)


def unavailable_message(what: str, reason: str) -> str:
    return (f"{what} needs an NVIDIA RTX GPU with compute capability "
            f"{SUPPORTED_CAPABILITIES_TEXT} to execute TensorRT-RTX engines; found: {reason}. "
            f"Compiling, saving and loading work without one. To check the compiled program "
            f"on this machine, run it on CPU with the reference executor: "
            f"torch_tensorrt_rtx.verify(...).")


def require_supported_gpu(what: str) -> int:
    """The CUDA device index to run on, or ``RTXGPUUnavailableError``."""
    status = supported_gpu()
    if not status.supported:
        raise RTXGPUUnavailableError(unavailable_message(what, status.reason))
    assert status.device_index is not None
    return status.device_index
