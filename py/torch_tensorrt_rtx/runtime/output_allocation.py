"""Outputs whose shapes are known only after an engine ran, and output-buffer reuse.

An engine output whose shape the execution context reports with a -1 after the input shapes are
set is data-dependent (``nonzero``-like). TensorRT-RTX then asks an ``IOutputAllocator`` for its
memory during the run (``reallocate_output_async``: name, current memory, size, alignment,
stream) and reports the final shape (``notify_shape``) before ``execute_async_v3`` returns.
``TorchOutputAllocator`` answers with torch tensors on the output's device and records the
shapes; ``outputs()`` gives the correctly shaped tensors.

Two per-thread (contextvars) modes, entered through upstream's names in ``upstream_api``:

- ``forced_output_allocator()``: every output goes through the output allocator, data-dependent
  or not (upstream's ``enable_output_allocator``).
- ``pre_allocated_outputs()``: an engine reuses its previous call's output tensors when the
  output shapes are the same (no allocation per call). The tensors a call returns are then
  overwritten by the next call of the same engine and shapes: clone what you keep.
"""
from __future__ import annotations

import contextlib
import contextvars
from typing import Any, Dict, Iterator, List, Optional, Tuple

_FORCED = contextvars.ContextVar("torch_tensorrt_rtx_output_allocator", default=False)
_REUSE = contextvars.ContextVar("torch_tensorrt_rtx_pre_allocated_outputs", default=False)


def output_allocator_forced() -> bool:
    return _FORCED.get()


def reusing_outputs() -> bool:
    return _REUSE.get()


@contextlib.contextmanager
def _mode(var: contextvars.ContextVar) -> Iterator[None]:
    token = var.set(True)
    try:
        yield
    finally:
        var.reset(token)


def forced_output_allocator() -> Any:
    """Within the block (this thread), every engine output is fetched through the output allocator."""
    return _mode(_FORCED)


def pre_allocated_outputs() -> Any:
    """Within the block (this thread), engines reuse their output tensors across calls of the same shapes."""
    return _mode(_REUSE)


def data_dependent(shape: Tuple[int, ...]) -> bool:
    return any(d < 0 for d in shape)


def torch_output_allocator(api: Any, device: Any) -> Any:
    """An instance of a subclass of ``api.IOutputAllocator`` that allocates torch tensors."""

    class TorchOutputAllocator(api.IOutputAllocator):
        def __init__(self) -> None:
            api.IOutputAllocator.__init__(self)
            self.device = device
            self.buffers: Dict[str, Any] = {}  # name -> uint8 tensor holding the output
            self.shapes: Dict[str, Tuple[int, ...]] = {}
            self.keep = False  # True: reuse a buffer that is big enough (pre-allocated outputs)

        def reallocate_output_async(self, tensor_name: str, memory: int, size: int, alignment: int,
                                    stream: Any = None) -> int:
            import torch

            current = self.buffers.get(tensor_name)
            if self.keep and current is not None and current.numel() >= size:
                return current.data_ptr()
            # At least one byte (a null address tells TensorRT-RTX that allocation failed), aligned
            # as asked: torch's CUDA blocks always are; host memory (the test double) may not be.
            align = max(int(alignment), 1)
            raw = torch.empty(max(int(size), 1) + align - 1, dtype=torch.uint8, device=self.device)
            buffer = raw[(-raw.data_ptr()) % align:][:max(int(size), 1)]
            self.buffers[tensor_name] = buffer
            return buffer.data_ptr()

        def reallocate_output(self, tensor_name: str, memory: int, size: int, alignment: int) -> int:
            return self.reallocate_output_async(tensor_name, memory, size, alignment)

        def notify_shape(self, tensor_name: str, shape: Any) -> None:
            self.shapes[tensor_name] = tuple(int(d) for d in shape)

        def output(self, name: str, dtype: Any, engine_name: str) -> Any:
            import torch

            if name not in self.shapes or name not in self.buffers:
                raise RuntimeError(f"TRTModule {engine_name!r}: TensorRT-RTX ran the engine but reported no "
                                   f"{'shape' if name not in self.shapes else 'memory request'} for output {name!r} "
                                   "through the output allocator")
            shape = self.shapes[name]
            count = 1
            for d in shape:
                count *= d
            nbytes = count * torch.empty((), dtype=dtype).element_size()
            buffer = self.buffers[name]
            if nbytes > buffer.numel():
                raise RuntimeError(f"TRTModule {engine_name!r}: output {name!r} has shape {shape} ({nbytes} bytes) "
                                   f"but TensorRT-RTX asked for {buffer.numel()} bytes")
            return buffer[:nbytes].view(dtype).reshape(shape)

    return TorchOutputAllocator()


class OutputBuffers:
    """One engine's output tensors for a call: preallocated (shape known after the input shapes
    are set) or through the output allocator (data-dependent, or forced)."""

    def __init__(self) -> None:
        self.allocator: Optional[Any] = None
        self._allocator_context: Optional[Any] = None
        self._previous: Dict[str, Any] = {}  # name -> tensor of the last call (pre-allocated outputs)

    def bind(self, api: Any, context: Any, names: List[str], dtypes: List[Any], device: Any) -> List[Any]:
        """Bind every output of ``context``; returns, per output, a tensor or None (allocator)."""
        import torch

        reuse, forced = reusing_outputs(), output_allocator_forced()
        if not reuse:
            self._previous = {}
        bound: List[Any] = []
        for name, dtype in zip(names, dtypes):
            shape = tuple(context.get_tensor_shape(name))
            if forced or data_dependent(shape):
                allocator = self._allocator_for(api, context, device)
                allocator.keep = reuse
                if not context.set_output_allocator(name, allocator):
                    raise RuntimeError(f"TensorRT-RTX refused an output allocator for output {name!r}")
                bound.append(None)
                continue
            out = self._previous.get(name)
            if out is None or tuple(out.shape) != shape or out.dtype != dtype or out.device != device:
                out = torch.empty(shape, dtype=dtype, device=device)
            if reuse:
                self._previous[name] = out
            context.set_tensor_address(name, out.data_ptr())
            bound.append(out)
        return bound

    def _allocator_for(self, api: Any, context: Any, device: Any) -> Any:
        if self.allocator is None or self._allocator_context is not context or self.allocator.device != device:
            self.allocator = torch_output_allocator(api, device)
            self._allocator_context = context
        return self.allocator

    def results(self, bound: List[Any], names: List[str], dtypes: List[Any], engine_name: str) -> List[Any]:
        """After the run: the bound tensors, with the allocator's outputs in their final shapes."""
        results = []
        for out, name, dtype in zip(bound, names, dtypes):
            if out is None:
                out = self.allocator.output(name, dtype, engine_name)
                if not self.allocator.keep:
                    self.allocator.buffers.pop(name, None)  # the caller owns it now
            results.append(out)
        return results
