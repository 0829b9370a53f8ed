"""AOT engine build: optimization profile from the dynamic ranges, target compute
capabilities, progress reporting. Builds on a machine without a GPU (TensorRT-RTX CPU-only AOT).

    engine_bytes, seconds = build_engine(network_def, settings, label="_run_on_trt_0")
"""
from __future__ import annotations

import logging
import sys
import threading
import time
from typing import Any, List, Optional, Sequence, Tuple

import tensorrt_rtx as trt

from torch_tensorrt_rtx.dynamo.conversion._context import ConversionError
from torch_tensorrt_rtx.dynamo.conversion._interpreter import NetworkDefinition, trt_logger

logger = logging.getLogger(__name__)

PORTABLE = ()  # no explicit compute capability: TensorRT-RTX builds for every supported GPU


class BuildProgress(trt.IProgressMonitor):
    """Logs build phases; draws a one-line progress bar only when stderr is a terminal."""

    def __init__(self, label: str, stream=None) -> None:
        trt.IProgressMonitor.__init__(self)
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self._phases: dict = {}
        self._lock = threading.Lock()
        self.phases_seen: List[str] = []

    def phase_start(self, phase_name, parent_phase, num_steps):
        with self._lock:
            self._phases[phase_name] = (0, max(int(num_steps), 1))
            self.phases_seen.append(phase_name)
        logger.debug("[%s] build phase %s started (%d steps)", self.label, phase_name, num_steps)

    def step_complete(self, phase_name, step):
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


def build_engine(network_def: NetworkDefinition, compute_capabilities: Sequence[str] = PORTABLE,
                 label: str = "engine", progress: bool = True, settings: Any = None) -> Tuple[memoryview, float]:
    """`settings`: a CompilationSettings whose builder options apply (None: TensorRT-RTX's defaults)."""
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
    monitor: Optional[BuildProgress] = BuildProgress(label) if progress else None
    if monitor is not None:
        config.progress_monitor = monitor
    trt_logger().errors.clear()
    start = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    seconds = time.perf_counter() - start
    if serialized is None:
        recent = "; ".join(trt_logger().errors[-3:]) or "no message"
        raise ConversionError(f"TensorRT-RTX failed to build engine {label}: {recent}")
    # A view of TensorRT-RTX's own buffer (it lives as long as the view): packing the engine
    # record is then the only copy of the engine the compile makes.
    return memoryview(serialized).cast("B"), seconds
