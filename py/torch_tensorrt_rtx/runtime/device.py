"""Which GPUs an engine runs on, decided in one place from the engine and TensorRT-RTX.

Engines *build* anywhere, CPU-only included; only execution needs a GPU, and which GPUs
depends on the compute capabilities the engine was built for:

- built for explicit targets (``compute_capabilities=["SM86", ...]``, kept in the engine
  record's COMPUTE_CAPABILITIES field): exactly those GPUs;
- built portable (the default): every compute capability the installed TensorRT-RTX
  knows (its ``ComputeCapability.SM*`` members) except the ones NVIDIA documents as
  needing an explicit target (Turing, ``PORTABLE_EXCLUDES``), and any newer GPU than the
  newest it knows (TensorRT-RTX JIT-compiles for them).

When a GPU is present the library has the last word: ``check_engine`` turns
``Runtime.get_engine_validity``'s ``UNSUPPORTED_CC`` diagnostic into the engine-run
contract's error (the C++ runtime makes the same check, with the same words). ``supported_gpu()`` imports ``torch.cuda`` (and ``tensorrt_rtx`` only when there
is a CUDA device) lazily, on first call.

    index = require_supported_gpu("TRTModule 'blk0'", record)   # or RTXGPUUnavailableError
"""
from __future__ import annotations

import functools
from typing import Any, Iterable, NamedTuple, Optional

# NVIDIA's CPU-only AOT documentation: default (portable) engines run on Ampere and later;
# Turing (7.5) needs the engine to be built with that compute capability set explicitly.
PORTABLE_EXCLUDES = frozenset({"SM75"})


class RTXGPUUnavailableError(RuntimeError):
    """Execution was requested but no GPU the engine can run on is available."""


class GPUStatus(NamedTuple):
    supported: bool
    device_index: Optional[int]
    reason: str  # what was found, for error messages and pytest skip reasons
    capability: Optional[tuple[int, int]] = None


def sm_to_capability(name: str) -> tuple[int, int]:
    """``"SM86"`` -> ``(8, 6)``, ``"sm120"`` -> ``(12, 0)``."""
    digits = name.upper().removeprefix("SM")
    if not digits.isdigit() or len(digits) < 2:
        raise ValueError(f"compute capability name {name!r}: expected SM followed by digits, e.g. 'SM86'")
    return int(digits[:-1]), int(digits[-1])


def _fmt(capabilities: Iterable[tuple[int, int]]) -> list[str]:
    return [f"{a}.{b}" for a, b in sorted(set(capabilities))]


def library_compute_capabilities(trt_api: Any = None) -> tuple[tuple[int, int], ...]:
    """Every compute capability the installed TensorRT-RTX can target (``ComputeCapability.SM*``)."""
    if trt_api is None:
        import tensorrt_rtx as trt_api  # local: keep importing this module cheap
    return tuple(sorted(sm_to_capability(n) for n in trt_api.ComputeCapability.__members__
                        if n.upper().startswith("SM")))


def portable_compute_capabilities(trt_api: Any = None) -> tuple[tuple[int, int], ...]:
    excluded = {sm_to_capability(n) for n in PORTABLE_EXCLUDES}
    return tuple(c for c in library_compute_capabilities(trt_api) if c not in excluded)


def engine_compute_capabilities(record: Any = None) -> Optional[tuple[tuple[int, int], ...]]:
    """The targets an engine record was built for; None for a portable build (or no record)."""
    targets = record.target_capabilities if record is not None else None
    if not targets:
        return None
    return tuple(sorted(sm_to_capability(t) for t in targets))


def runs_on(capability: tuple[int, int], targets: Optional[Iterable[tuple[int, int]]] = None,
            trt_api: Any = None) -> bool:
    """Whether an engine built for ``targets`` (None = portable) runs on a GPU of ``capability``."""
    if targets is not None:
        return tuple(capability) in set(targets)
    portable = portable_compute_capabilities(trt_api)
    return tuple(capability) in portable or tuple(capability) > max(portable)


def is_supported_compute_capability(major: int, minor: int, trt_api: Any = None) -> bool:
    """Whether a portable engine runs on a GPU of compute capability ``major.minor``."""
    return runs_on((major, minor), None, trt_api)


def describe_targets(targets: Optional[Iterable[tuple[int, int]]] = None, trt_api: Any = None) -> str:
    """Where an engine runs, e.g. "8.0, 8.6, 8.9, 12.0, 12.1 or newer (7.5 only ...)"."""
    if targets is not None:
        return " or ".join(_fmt(targets)) + " (the compute capabilities the engine was built for)"
    try:
        portable = portable_compute_capabilities(trt_api)
        excluded = _fmt(sm_to_capability(n) for n in PORTABLE_EXCLUDES)
    except Exception as exc:  # tensorrt_rtx missing or broken: say so instead of guessing
        return f"(unknown: tensorrt_rtx is not importable: {exc})"
    return (", ".join(_fmt(portable)) + " or newer (" + ", ".join(excluded) + " only for engines "
            "built with compute_capabilities=" + repr(sorted(PORTABLE_EXCLUDES)) + ")")


def _current_device() -> tuple[Optional[int], Optional[tuple[int, int]], str]:
    try:
        import torch
    except Exception as exc:  # pragma: no cover - torch is a hard dependency
        return None, None, f"torch is not importable ({exc})"
    try:
        if not torch.cuda.is_available():
            return None, None, ("no CUDA device is available to torch "
                                f"(torch {torch.__version__}, CUDA build: {torch.version.cuda})")
        index = torch.cuda.current_device()
        capability = tuple(torch.cuda.get_device_capability(index))
        name = torch.cuda.get_device_name(index)
    except Exception as exc:
        return None, None, f"querying the CUDA device failed ({exc})"
    return index, capability, f"cuda:{index} {name} with compute capability {capability[0]}.{capability[1]}"


@functools.lru_cache(maxsize=None)
def _device() -> tuple[Optional[int], Optional[tuple[int, int]], str]:
    return _current_device()


def gpu_status(targets: Optional[Iterable[tuple[int, int]]] = None) -> GPUStatus:
    """Whether the current CUDA device runs an engine built for ``targets`` (None = portable)."""
    index, capability, found = _device()
    if capability is None:
        return GPUStatus(False, None, found)
    try:
        ok = runs_on(capability, targets)
    except Exception as exc:
        return GPUStatus(False, index, f"{found}; TensorRT-RTX is not usable ({exc})", capability)
    if not ok:
        return GPUStatus(False, index, f"{found}, which TensorRT-RTX cannot run this engine on", capability)
    return GPUStatus(True, index, found, capability)


@functools.lru_cache(maxsize=None)
def supported_gpu() -> GPUStatus:
    """Status of the current CUDA device for portable engines (cached for the process)."""
    return gpu_status(None)


def unavailable_message(what: str, reason: str, targets: Optional[Iterable[tuple[int, int]]] = None) -> str:
    return (f"{what} needs an NVIDIA RTX GPU with compute capability {describe_targets(targets)} "
            f"to execute TensorRT-RTX engines; found: {reason}. "
            f"Compiling, saving and loading work without one. To check the compiled program "
            f"on this machine, run it on CPU with the reference executor: "
            f"torch_tensorrt_rtx.verify(...).")


def require_supported_gpu(what: str, record: Any = None) -> int:
    """The CUDA device index to run ``record``'s engine on, or ``RTXGPUUnavailableError``."""
    targets = engine_compute_capabilities(record)
    status = supported_gpu() if targets is None else gpu_status(targets)
    if not status.supported:
        raise RTXGPUUnavailableError(unavailable_message(what, status.reason, targets))
    assert status.device_index is not None
    return status.device_index


def check_engine(what: str, trt_runtime: Any, engine: Any, trt_api: Any, record: Any) -> None:
    """TensorRT-RTX's verdict on the engine bytes before deserializing them, the engine-run
    contract's check (the C++ runtime's TRTEngine::Engine makes the same): MALFORMED_ENGINE (or
    no bytes) raises ``EngineRecordError``, UNSUPPORTED_CC ``RTXGPUUnavailableError``, each with
    the contract's message; other diagnostics are left to deserialization."""
    from torch_tensorrt_rtx.runtime import engine_contract
    from torch_tensorrt_rtx.runtime.engine_record import EngineRecordError

    view = memoryview(engine)
    diagnostics = 0
    validity = getattr(trt_runtime, "get_engine_validity", None)
    if view.nbytes and validity is not None:
        _, diagnostics = validity(view)
    if not view.nbytes or int(diagnostics) & int(trt_api.EngineInvalidityDiagnostics.MALFORMED_ENGINE):
        raise EngineRecordError(engine_contract.malformed_engine(what, view.nbytes))
    if int(diagnostics) & int(trt_api.EngineInvalidityDiagnostics.UNSUPPORTED_CC):
        raise RTXGPUUnavailableError(engine_contract.unsupported_gpu(what, record.compute_capabilities))
