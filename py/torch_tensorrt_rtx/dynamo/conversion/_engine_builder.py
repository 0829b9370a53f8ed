"""AOT engine build: optimization profile from the dynamic ranges, target compute
capabilities, progress reporting. Builds on a machine without a GPU (TensorRT-RTX CPU-only AOT).

    engine, seconds = build_engine(network_def, settings, label="_run_on_trt_0")
    engine.nbytes, engine.sha256     # size and SHA-256 of the serialized engine
    engine.readinto(buffer)          # the engine's bytes, straight into the caller's buffer

Engines of networks with more than STREAM_ABOVE_BYTES of constant weights (the engine's size
follows them) are built for memory; smaller ones for speed, with `build_serialized_network` into
TensorRT-RTX's host memory (a `HostEngine`, hashed once, copied once into the packed record).

For memory, one copy of the engine: TensorRT-RTX streams the serialized engine
(`build_serialized_network_to_stream`) into an unnamed temporary file while it still holds its own
build state, hashing it behind the writes (`_trailing_hash.py`), each chunk taken where TensorRT-RTX
holds it, without the Python binding's copy where that can be done (`_in_place_writer.py`), behind
room left for the packed record's header. The file then becomes the packed engine record
(`map_record`: the header written into that room, the file mapped copy-on-write), so the engine is
never copied again: its pages stay in the page cache (the unnamed file on the temporary directory's
disk, for as long as the record lives) and enter the process's resident memory only when read
(measured on BERT-base: 0.2-0.35 s of packaging less than reading it into an anonymous record).
While TensorRT-RTX builds, a thread writes zeros over the part of the file the engine is expected to
fill (its network's weights), so the chunks later rewrite pages the file has rather than make them
(`_Prefault`). Heap memory the build freed is handed back to the system (`malloc_trim`, glibc) at
each build phase and, from a `HeapTrimmer` thread, whenever the resident size grew by 32 MB, so the
peak is TensorRT-RTX's own working set.
"""
from __future__ import annotations

import ctypes
import hashlib
import logging
import mmap
import os
import sys
import tempfile
import threading
import time
from typing import Any, List, Optional, Sequence, Tuple, Union

import tensorrt_rtx as trt

from torch_tensorrt_rtx.dynamo._file_prefault import FilePrefault as _Prefault
from torch_tensorrt_rtx.dynamo.conversion._context import ConversionError
from torch_tensorrt_rtx.dynamo.conversion._in_place_writer import InPlaceStreamWriter
from torch_tensorrt_rtx.dynamo.conversion._interpreter import NetworkDefinition, trt_logger
from torch_tensorrt_rtx.dynamo.conversion._native_callbacks import quiet_monitor
from torch_tensorrt_rtx.dynamo.conversion._trailing_hash import TrailingFileHash
from torch_tensorrt_rtx.runtime._libc import PAGE_SIZE, libc_function

logger = logging.getLogger(__name__)

PORTABLE = ()  # no explicit compute capability: TensorRT-RTX builds for every supported GPU

# Networks with more constant weights than this stream their engine to a temporary file; smaller
# ones take it from TensorRT-RTX's host memory: no temporary file, no trimming thread, 0.03-0.12 CPU s
# less per build on the zoo models. Peak above the baseline of build + packing, one N MB constant
# (measured, chunks in place): 16 MB 102 in memory / 151 streamed, 64 MB 199 / 199, 128 MB 327 / 263,
# 256 MB 584 / 391; streaming pays a fixed 2 x 64 MB of TensorRT-RTX buffers (3 x 64 MB where the
# binding copies the chunks), the host path a second engine copy. resnet50 (98 MB engine) streamed:
# peak 221 instead of 269 MB, but 0.06 s more per build and packaging no shorter
# (benchmarks/host_packaging.py --peak, load 0.6).
STREAM_ABOVE_BYTES = 128 << 20


_MALLOC_TRIM = libc_function("malloc_trim", [ctypes.c_size_t], ctypes.c_int)  # glibc's; None elsewhere


def release_free_memory() -> None:
    """Return the heap memory that is free but still mapped (after TensorRT-RTX's build steps,
    tens to hundreds of MB) to the system, where glibc allows it; a no-op elsewhere."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def _resident_bytes() -> Optional[int]:
    """This process's resident set size (Linux /proc), or None where it cannot be read."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * PAGE_SIZE
    except (OSError, ValueError, IndexError):
        return None


class HeapTrimmer:
    """While TensorRT-RTX builds, a thread hands freed heap memory back to the system each time the
    resident size has grown by `step_bytes` since the last trim. Between two progress callbacks the
    build converts the weights, freeing and allocating hundreds of MB; memory it freed but glibc
    kept would otherwise add to the peak (measured: GPT-2 1056 -> 995 MB above the baseline). Polls
    cost a /proc read; trims happen only on growth. A no-op without glibc or /proc."""

    def __init__(self, step_bytes: int = 32 << 20, poll_seconds: float = 0.01) -> None:
        self.step_bytes, self.poll_seconds = step_bytes, poll_seconds
        self.trims = 0
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def __enter__(self) -> "HeapTrimmer":
        if _MALLOC_TRIM is not None and _resident_bytes() is not None:
            self._thread = threading.Thread(target=self._run, name="trtx-heap-trim", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            logger.debug("heap trimmer: %d trim(s) during the build", self.trims)

    def _run(self) -> None:
        floor = _resident_bytes() or 0
        while not self._stop.wait(self.poll_seconds):
            now = _resident_bytes() or 0
            if now >= floor + self.step_bytes:
                release_free_memory()
                self.trims += 1
                floor = _resident_bytes() or now


class RefitBuildNeedsGpu(ConversionError):
    """A refittable/weightless build failed on a machine without a CUDA GPU: never a reason to
    keep the model in PyTorch silently."""


class _EngineBlob:
    """What packing and the engine cache need of an engine: `nbytes`, `sha256` (hex), `readinto`
    (fill a buffer of exactly `nbytes`), `copy_to` (write to a file object), `close`."""

    nbytes = 0
    copies_from_memory = False  # readinto copies from memory (True) or reads a file (False)

    def __len__(self) -> int:
        return self.nbytes

    def _target(self, buffer) -> memoryview:
        view = memoryview(buffer).cast("B")
        if view.nbytes != self.nbytes:
            raise ValueError(f"engine buffer has {view.nbytes} bytes, expected {self.nbytes}")
        return view

    def tobytes(self) -> bytes:
        out = bytearray(self.nbytes)
        self.readinto(out)
        return bytes(out)


class _HashThread(threading.Thread):
    """``hashlib.sha256(data)`` on another thread (hashlib lets go of the GIL for large buffers), so
    a copy or a file write of the same bytes runs beside it; `join` before `data` changes or goes."""

    def __init__(self, digest: "hashlib._Hash", data) -> None:
        super().__init__(name="trtx-engine-hash", daemon=True)
        self.digest, self.data, self.error = digest, data, None
        self.start()

    def run(self) -> None:
        try:
            self.digest.update(self.data)
        except BaseException as exc:  # noqa: BLE001 - raised again by the joining thread
            self.error = exc
        finally:
            self.data = None

    def wait(self) -> "hashlib._Hash":
        self.join()
        if self.error is not None:
            raise self.error
        return self.digest


_HASH_BESIDE_BYTES = 1 << 20  # smaller chunks are hashed where they are written (a thread costs more)


class SerializedEngine(_EngineBlob):
    """A serialized engine in an unnamed temporary file (deleted when closed or collected, or when
    the record mapped from it goes), with its size and SHA-256. Not a copy in memory: `readinto`
    reads it where the caller wants it; `map_record` makes the file itself the packed record.
    `record_offset`: room left in front of the engine for the record's header (`map_record`).
    `write_seconds`: the time spent writing (and, where the hash cannot trail the writes, hashing)
    the chunks: our work inside the build. On POSIX the hash trails the writes on another core
    (`_trailing_hash.py`); what is left of it when `sha256` is first asked is waited for then."""

    def __init__(self, record_offset: int = 0, expected_bytes: int = 0) -> None:
        self._file = tempfile.TemporaryFile(prefix="trtx_engine_", buffering=0)
        self._hash = hashlib.sha256()
        self._trailing = TrailingFileHash(self._file.fileno(), record_offset) if hasattr(os, "pread") else None
        self.record_offset = record_offset
        self.mapped = False  # the file became a record (once: a mapping sees later writes to the file)
        self.nbytes = 0
        self.write_seconds = 0.0
        # The engine's pages of the file, made while TensorRT-RTX builds (see _Prefault).
        self._prefault = _Prefault(self._file.fileno(), record_offset, expected_bytes) if expected_bytes else None

    def _stop_prefault(self) -> None:
        if self._prefault is not None:
            self._prefault.stop()
            self._prefault = None

    def write(self, chunk) -> int:
        self._stop_prefault()  # before the first chunk: the zeros never land on the engine
        start = time.perf_counter()
        size = len(chunk)
        offset = self.record_offset + self.nbytes
        hashing = None
        try:
            if self._trailing is None:  # hashed here: a large chunk on one core while the other writes it
                if size < _HASH_BESIDE_BYTES:
                    self._hash.update(chunk)
                else:
                    hashing = _HashThread(self._hash, chunk)
            try:
                self._write_at(chunk, offset)
            finally:
                if hashing is not None:
                    hashing.wait()
            if self._trailing is not None:
                self._trailing.advance(offset + size)
        finally:
            self.write_seconds += time.perf_counter() - start
        self.nbytes += size
        return size

    def _write_at(self, data, offset: int) -> None:
        view = memoryview(data).cast("B")
        self._file.seek(offset)
        done = 0
        while done < view.nbytes:  # an unbuffered write may be short (Linux caps one at about 2 GB)
            done += self._file.write(view[done:])

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest() if self._trailing is None else self._trailing.finish()

    def readinto(self, buffer) -> None:
        """Fill `buffer` (writable, exactly `nbytes` long) with the engine."""
        view = self._target(buffer)
        self._file.seek(self.record_offset)
        done = 0
        while done < self.nbytes:
            count = self._file.readinto(view[done:])
            if not count:
                raise OSError(f"engine file ended after {done} of {self.nbytes} bytes")
            done += count

    def copy_to(self, out, chunk_bytes: int = 16 << 20) -> None:
        """Write the engine to the file object `out`, a chunk at a time (no whole-engine copy)."""
        self._file.seek(self.record_offset)
        done = 0
        while done < self.nbytes:
            chunk = self._file.read(min(chunk_bytes, self.nbytes - done))
            if not chunk:
                raise OSError(f"engine file ended {self.nbytes - done} bytes short of {self.nbytes}")
            out.write(chunk)
            done += len(chunk)

    def map_record(self, before: bytes, after: bytes) -> Optional[mmap.mmap]:
        """The file as a packed record: `before` (header and the fields before the engine) written
        into the room left in front of the engine, `after` behind it, the whole mapped
        copy-on-write (writes to the mapping never reach the file). No copy of the engine: its
        pages stay in the page cache, shared with the file, and the file (unnamed) lives as long
        as the mapping. None where that cannot be done (room of another size, no POSIX mapping
        semantics, a failed write or map, a file already mapped as a record, whose pages not written
        through that mapping would see these writes): the caller then copies the engine with `readinto`."""
        if os.name != "posix" or len(before) != self.record_offset or self.mapped:
            return None
        self._stop_prefault()
        size = self.record_offset + self.nbytes + len(after)
        try:
            self._write_at(before, 0)
            self._write_at(after, self.record_offset + self.nbytes)
            os.ftruncate(self._file.fileno(), size)  # zeros made beyond a smaller engine than expected
            record = mmap.mmap(self._file.fileno(), size, access=mmap.ACCESS_COPY)
            self.mapped = True
            return record
        except (OSError, ValueError) as exc:
            logger.debug("engine record not mapped from its temporary file (%s): copying it instead", exc)
            return None

    def close(self) -> None:
        self._stop_prefault()
        if self._trailing is not None:
            self._trailing.close()  # it reads the file: done before the file goes (sha256 still known)
        self._file.close()


class HostEngine(_EngineBlob):
    """A serialized engine TensorRT-RTX returned in its own host memory (`IHostMemory`), with its
    size and SHA-256: a small engine, built without streaming. `readinto` copies it once into the
    caller's buffer (the packed record); `close` frees it. Packaging waits for the hash, not the copy
    (resnet50, 98 MB: hash 0.057 s, copy into fresh pages 0.05 s beside it): mapping the record's
    memory during the build cut the copy to 0.01 s but not packaging (0.058 s either way), and added
    the record to the build's peak (269 -> 370 MB): benchmarks/host_packaging.py."""

    copies_from_memory = True

    def __init__(self, host: "trt.IHostMemory") -> None:
        self._host = host
        self._view = memoryview(host).cast("B")  # the binding's format is "f" with 1-byte items
        self.nbytes = self._view.nbytes
        # Hashed on another core while the caller copies the engine into its packed record.
        self._hashing = _HashThread(hashlib.sha256(), self._view)

    @property
    def sha256(self) -> str:
        return self._hashing.wait().hexdigest()  # at once when the hash is done (after close too)

    def readinto(self, buffer) -> None:
        """Fill `buffer` (writable, exactly `nbytes` long) with the engine."""
        self._target(buffer)[:] = self._view

    def copy_to(self, out) -> None:
        out.write(self._view)

    def close(self) -> None:
        self._hashing.join()  # the hash may still read the view: let it finish first
        self._view.release()
        self._host = None


class _EngineWriter(InPlaceStreamWriter):
    """Writes TensorRT-RTX's chunks to the SerializedEngine, in place where possible (no copy)."""

    def __init__(self, engine: SerializedEngine) -> None:
        super().__init__()
        self.engine = engine
        self.chunks = 0
        self.error: Optional[OSError] = None  # a failed write (a full disk, say): the build then fails

    def write_chunk(self, data) -> int:
        # Before the first chunk the build state is complete: drop what building it freed; before
        # each later one, the previous chunk's copy (the binding's bytes, where not in place) if the
        # allocator kept it.
        release_free_memory()
        self.chunks += 1
        try:
            return self.engine.write(data)
        except OSError as exc:
            self.error = self.error or exc
            return 0


class BuildProgress(trt.IProgressMonitor):
    """Logs build phases and (`trim`) hands memory freed by each phase back to the system; draws a
    one-line progress bar only when `draw` and stderr is a terminal."""

    def __init__(self, label: str, stream=None, draw: bool = True, trim: bool = True) -> None:
        trt.IProgressMonitor.__init__(self)
        self.label, self.trim = label, trim
        self.stream = stream if stream is not None else sys.stderr
        self.interactive = draw and bool(getattr(self.stream, "isatty", lambda: False)())
        self._phases: dict = {}
        self._lock = threading.Lock()
        self.phases_seen: List[str] = []
        self.probe: Optional[list] = None
        # Unwatched (no bar, no debug logging): native steps and phases, no Python (_native_callbacks.py).
        watched = self.interactive or logger.isEnabledFor(logging.DEBUG)
        self.native = None if watched else quiet_monitor(self, trim)

    def __del__(self) -> None:
        if getattr(self, "native", None) is not None:
            self.native.restore()  # the C++ object's destructor is called through its own table

    def phase_start(self, phase_name, parent_phase, num_steps):
        if self.probe is not None:
            self.probe.append(("phase_start", phase_name))
            return
        with self._lock:
            self._phases[phase_name] = (0, max(int(num_steps), 1))
            self.phases_seen.append(phase_name)
        logger.debug("[%s] build phase %s started (%d steps)", self.label, phase_name, num_steps)

    def step_complete(self, phase_name, step):
        if self.probe is not None:
            self.probe.append(("step_complete", phase_name))
            return True
        with self._lock:
            done, total = self._phases.get(phase_name, (0, 1))
            self._phases[phase_name] = (int(step) + 1, total)
            if self.interactive:
                width = 30
                filled = int(width * min(step + 1, total) / total)
                self.stream.write(f"\r[{self.label}] {phase_name[:32]:<32} [{'#' * filled}{'.' * (width - filled)}]")
                self.stream.flush()
        return True  # returning False would cancel the build

    def phase_finish(self, phase_name):
        if self.probe is not None:
            self.probe.append(("phase_finish", phase_name))
            return
        if self.trim:
            release_free_memory()
        with self._lock:
            self._phases.pop(phase_name, None)
            if self.interactive and not self._phases:
                self.stream.write("\r" + " " * 80 + "\r")
                self.stream.flush()
        logger.debug("[%s] build phase %s finished", self.label, phase_name)


def compute_capability(name: str) -> "trt.ComputeCapability":
    key = name.upper().replace(".", "")
    key = key if key.startswith("SM") else "SM" + key
    try:
        return trt.ComputeCapability.__members__[key]
    except KeyError:
        allowed = [k for k in trt.ComputeCapability.__members__ if k.startswith("SM")]
        raise ValueError(f"unknown compute capability {name!r}; expected one of {allowed}") from None


def apply_builder_options(config: "trt.IBuilderConfig", settings: Any) -> None:
    """The IBuilderConfig knobs of CompilationSettings (upstream's names); defaults change nothing."""
    if settings.workspace_size:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, settings.workspace_size)
    if settings.optimization_level is not None:
        config.builder_optimization_level = settings.optimization_level
    if settings.max_aux_streams is not None:
        config.max_aux_streams = settings.max_aux_streams
    if settings.tiling_optimization_level != "none":
        config.tiling_optimization_level = trt.TilingOptimizationLevel.__members__[
            settings.tiling_optimization_level.upper()]
    if settings.l2_limit_for_tiling >= 0:
        config.l2_limit_for_tiling = settings.l2_limit_for_tiling
    flags = {"disable_tf32": (trt.BuilderFlag.TF32, False), "sparse_weights": (trt.BuilderFlag.SPARSE_WEIGHTS, True),
             "enable_weight_streaming": (trt.BuilderFlag.WEIGHT_STREAMING, True)}
    for name, (flag, on) in flags.items():
        if getattr(settings, name):
            (config.set_flag if on else config.clear_flag)(flag)
    for flag in refit_flags(settings):
        config.set_flag(flag)


def refit_flags(settings: Any) -> List["trt.BuilderFlag"]:
    """STRIP_PLAN for strip_engine_weights, REFIT (or REFIT_IDENTICAL) for refittable engines."""
    flags = [trt.BuilderFlag.STRIP_PLAN] if settings.strip_engine_weights else []
    if refittable(settings):
        flags.append(trt.BuilderFlag.REFIT_IDENTICAL if settings.refit_identical_engine_weights
                     else trt.BuilderFlag.REFIT)
    return flags


def _has_cuda_gpu() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def refittable(settings: Any) -> bool:
    """Engines built with REFIT: strip_engine_weights=True or immutable_weights=False."""
    return bool(settings.strip_engine_weights or not settings.immutable_weights)


def builder_config(network_def: NetworkDefinition, compute_capabilities: Sequence[str] = PORTABLE,
                   label: str = "engine", progress: bool = True, settings: Any = None,
                   trim: bool = True) -> "trt.IBuilderConfig":
    """The IBuilderConfig of a build: `settings`' builder options, target compute capabilities, the
    optimization profile of the network's dynamic ranges, the progress monitor (which trims the
    heap after each build phase when `trim`)."""
    builder, network = network_def.builder, network_def.network
    config = builder.create_builder_config()
    if settings is not None:
        apply_builder_options(config, settings)
    if compute_capabilities:
        config.num_compute_capabilities = len(compute_capabilities)
        for i, name in enumerate(compute_capabilities):
            config.set_compute_capability(compute_capability(name), i)
    if any(network_def.input_ranges):
        profile = builder.create_optimization_profile()
        for i, name in enumerate(network_def.input_names):
            tensor = network.get_input(i)
            ranges = network_def.input_ranges[i]
            shape = list(tensor.shape)
            lo, opt, hi = ([ranges[d][k] if d in ranges else s for d, s in enumerate(shape)] for k in range(3))
            profile.set_shape(name, lo, opt, hi)
        config.add_optimization_profile(profile)
    config.progress_monitor = BuildProgress(label, draw=progress, trim=trim)
    return config


_WEIGHTED_LAYERS = {  # layer type -> (its class, its weight attributes)
    trt.LayerType.CONSTANT: (trt.IConstantLayer, "weights"),
    trt.LayerType.CONVOLUTION: (trt.IConvolutionLayer, "kernel", "bias"),  # weights given to the layer
    trt.LayerType.DECONVOLUTION: (trt.IDeconvolutionLayer, "kernel", "bias"),  # (ours use tensors)
}


def _layer_weights(network: "trt.INetworkDefinition") -> List[Tuple[Any, int]]:
    """(layer, bytes of its weights) of the network's layers that hold weights."""
    found = []
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        kind = _WEIGHTED_LAYERS.get(layer.type)
        if kind is not None:
            layer.__class__ = kind[0]  # the binding's way to reach a layer's own attributes
            found.append((layer, sum(getattr(layer, name).nbytes for name in kind[1:])))
    return found


def network_weight_bytes(network: "trt.INetworkDefinition", weighted: Optional[list] = None) -> int:
    """The bytes of the weights of the network's layers whose output is used, known before the
    build: the serialized engine's size follows them (BERT-base 418 MB of weights, a 425 MB engine;
    1-3 MB of kernels on the zoo's tiny models). Constants nothing reads (a weight the converters
    replaced by a host-reshaped copy) are left out."""
    used = {network.get_output(i).name for i in range(network.num_outputs)}
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        used.update(t.name for t in map(layer.get_input, range(layer.num_inputs)) if t is not None)
    weighted = _layer_weights(network) if weighted is None else weighted
    return sum(nbytes for layer, nbytes in weighted if layer.get_output(0).name in used)


def streamed_weight_bytes(network: "trt.INetworkDefinition") -> Optional[int]:
    """The used weights' bytes when `build_engine` streams the engine to a temporary file (weights
    above STREAM_ABOVE_BYTES), else None (the engine is taken in TensorRT-RTX's host memory). All
    weights are summed first (about 1 ms on the zoo models); only above the bound are the unused
    ones left out."""
    weighted = _layer_weights(network)
    if sum(nbytes for _, nbytes in weighted) <= STREAM_ABOVE_BYTES:
        return None
    used = network_weight_bytes(network, weighted)
    return used if used > STREAM_ABOVE_BYTES else None


def _build_in_memory(network_def: NetworkDefinition, config: "trt.IBuilderConfig"):
    """(HostEngine or None, None): `build_serialized_network`, the engine in TensorRT-RTX's memory."""
    host = network_def.builder.build_serialized_network(network_def.network, config)
    return (HostEngine(host) if host is not None and host.nbytes else None), None


def _build_streamed(network_def: NetworkDefinition, config: "trt.IBuilderConfig", record_offset: int,
                    expected_bytes: int):
    """(SerializedEngine or None, the OSError a chunk's write raised or None)."""
    engine = SerializedEngine(record_offset, expected_bytes)
    writer = _EngineWriter(engine)
    with HeapTrimmer(), writer:
        built = network_def.builder.build_serialized_network_to_stream(network_def.network, config, writer)
    release_free_memory()
    if writer.error is not None or not built or engine.nbytes == 0:
        engine.close()
        return None, writer.error
    return engine, None


def build_engine(network_def: NetworkDefinition, compute_capabilities: Sequence[str] = PORTABLE,
                 label: str = "engine", progress: bool = True,
                 settings: Any = None, record_offset: int = 0) -> Tuple[Union[HostEngine, SerializedEngine], float]:
    """`settings`: a CompilationSettings whose builder options apply (None: TensorRT-RTX's defaults).
    An engine whose network holds more than STREAM_ABOVE_BYTES of weights is streamed to a temporary
    file (see the module's docstring), `record_offset` bytes into it (room for the packed record's
    header: `engine_record.engine_offset`); a smaller one is built into host memory (a HostEngine)."""
    weights = streamed_weight_bytes(network_def.network)  # the engine's size follows them
    stream = weights is not None
    config = builder_config(network_def, compute_capabilities, label, progress, settings, trim=stream)
    trt_logger().errors.clear()
    start = time.perf_counter()
    if stream:  # the engine's expected size, for the pages made ahead; none for an engine without its weights
        expected = 0 if settings is not None and settings.strip_engine_weights else weights
        engine, write_error = _build_streamed(network_def, config, record_offset, expected)
    else:
        engine, write_error = _build_in_memory(network_def, config)
    # TensorRT-RTX's time alone: the chunks' writing and hashing, ours, count as packaging.
    seconds = time.perf_counter() - start - getattr(engine, "write_seconds", 0.0)
    if write_error is not None:
        raise ConversionError(f"TensorRT-RTX built engine {label} but it could not be written to a temporary file "
                              f"(in {tempfile.gettempdir()}): {write_error}")
    if engine is None:
        recent = "; ".join(trt_logger().errors[-3:]) or "no message"
        if settings is not None and refit_flags(settings) and not _has_cuda_gpu():
            raise RefitBuildNeedsGpu(
                f"TensorRT-RTX {trt.__version__} failed to build the refittable engine {label} "
                f"(strip_engine_weights={settings.strip_engine_weights}, immutable_weights="
                f"{settings.immutable_weights}) on this machine, which has no CUDA GPU: its REFIT/STRIP_PLAN "
                f"builds need one (measured). Compile on a machine with an NVIDIA GPU, or leave these "
                f"options out to build on the CPU ({recent})")
        raise ConversionError(f"TensorRT-RTX failed to build engine {label}: {recent}")
    return engine, seconds
