"""``Debugger``: upstream's debugging context manager, writing what each compile did to a directory.

    with torch_tensorrt_rtx.dynamo.Debugger(logging_dir="/tmp/trtx_debug"):
        compiled = torch_tensorrt_rtx.compile(model, inputs=[x])

writes, for the n-th compile in the block (``torch.compile`` builds included),
``compile_<n>/lowered_graph.txt`` (the ATen graph after lowering), ``partitioned_graph.txt``
(TensorRT-RTX partitions as ``_run_on_trt_<k>`` calls, the rest PyTorch), ``<engine>_layers.txt``
(each engine's layers: name, type, output dtypes and shapes) and ``compile_report.txt``, plus
``torch_tensorrt_rtx.log`` with every log record at ``log_level`` and above.

The compiler emits these as records of the ``torch_tensorrt_rtx.artifacts`` logger at level
GRAPHS (5), formatted only when someone listens: the Debugger, or ``logging.graphs()``.
"""
from __future__ import annotations

import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional

GRAPHS = 5  # one level below DEBUG: graphs and layer lists (torch_tensorrt_rtx.logging.graphs())
logging.addLevelName(GRAPHS, "GRAPHS")
PACKAGE_LOGGER = "torch_tensorrt_rtx"
ARTIFACT_LOGGER = logging.getLogger(f"{PACKAGE_LOGGER}.artifacts")
_ARTIFACT = "torch_tensorrt_rtx_artifact"
FIRST_ARTIFACT = "lowered_graph.txt"  # each compile writes it first: it starts a new compile_<n>/
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "warnings": logging.WARNING,
           "error": logging.ERROR, "errors": logging.ERROR, "internal_errors": logging.CRITICAL, "graphs": GRAPHS}


def _has_handlers(logger: logging.Logger) -> bool:
    """True when a record of `logger` reaches a handler that is not a NullHandler."""
    current: Optional[logging.Logger] = logger
    while current is not None:
        if any(not isinstance(h, logging.NullHandler) for h in current.handlers):
            return True
        current = current.parent if current.propagate else None
    return False


class PackageLogLevel:
    """The package logger at `level` for a block (restored after); when the application
    configured no handler, the block's records are printed to stderr."""

    def __init__(self, level: int) -> None:
        self.level = level

    def __enter__(self) -> "PackageLogLevel":
        logger = logging.getLogger(PACKAGE_LOGGER)
        self._previous, self._handler = logger.level, None
        if not _has_handlers(logger):
            self._handler = logging.StreamHandler(sys.stderr)
            self._handler.setFormatter(logging.Formatter("%(levelname)s:%(name)s:%(message)s"))
            logger.addHandler(self._handler)
        logger.setLevel(self.level)
        return self

    def __exit__(self, *exc: Any) -> None:
        logger = logging.getLogger(PACKAGE_LOGGER)
        logger.setLevel(self._previous)
        if self._handler is not None:
            logger.removeHandler(self._handler)


def emit(file_name: str, content: Any) -> None:
    """Hand one artifact (formatted with str() only if someone listens) to the Debugger."""
    if ARTIFACT_LOGGER.isEnabledFor(GRAPHS):
        ARTIFACT_LOGGER.log(GRAPHS, "%s", content, extra={_ARTIFACT: file_name})


class LayerList:
    """An engine's layers, one per line, formatted lazily. `network`: an INetworkDefinition, or a
    LazyNetwork (converted only when the list is formatted)."""

    def __init__(self, network: Any) -> None:
        self.network = network

    def __str__(self) -> str:
        network = self.network.get().network if hasattr(self.network, "get") else self.network
        lines = []
        for i in range(network.num_layers):
            layer = network.get_layer(i)
            outputs = ", ".join(f"{layer.get_output(k).dtype.name} {tuple(layer.get_output(k).shape)}"
                                for k in range(layer.num_outputs))
            lines.append(f"{i}\t{layer.name}\t{layer.type.name}\t{outputs}")
        return "\n".join(lines) + "\n"


class _ArtifactWriter(logging.Handler):
    def __init__(self, directory: Path) -> None:
        super().__init__(level=GRAPHS)
        self.directory = directory
        self.compiles = 0
        self.written: List[Path] = []

    def emit(self, record: logging.LogRecord) -> None:
        name = getattr(record, _ARTIFACT, None)
        if name is None:
            return
        if name == FIRST_ARTIFACT or self.compiles == 0:
            self.compiles += 1
        target = self.directory / f"compile_{self.compiles}" / name
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(record.getMessage())
            self.written.append(target)
        except OSError:
            self.handleError(record)


_UNSUPPORTED = {
    "capture_fx_graph_before": "graphs between lowering passes are not captured; lowered_graph.txt is the graph "
                               "after all of them",
    "capture_fx_graph_after": "graphs between lowering passes are not captured; lowered_graph.txt is the graph "
                              "after all of them",
    "save_engine_profile": "engine profiling runs the engine, which needs an RTX GPU; not implemented",
}


class Debugger:
    """Context manager; see the module docstring. Upstream's arguments: `log_level` ('debug',
    'info', 'warning', 'error', 'internal_errors', 'graphs'), `logging_dir`, `save_layer_info`
    and `engine_builder_monitor` (layers and build progress are always recorded here);
    `capture_fx_graph_before/after` and `save_engine_profile` are refused with the reason."""

    def __init__(self, log_level: str = "debug", capture_fx_graph_before: Optional[List[str]] = None,
                 capture_fx_graph_after: Optional[List[str]] = None, save_engine_profile: bool = False,
                 profile_format: str = "perfetto", engine_builder_monitor: bool = True,
                 logging_dir: Optional[str] = None, save_layer_info: bool = False) -> None:
        if log_level not in _LEVELS:
            raise ValueError(f"Debugger: log_level={log_level!r}; expected one of {sorted(_LEVELS)}")
        given = {"capture_fx_graph_before": capture_fx_graph_before,
                 "capture_fx_graph_after": capture_fx_graph_after, "save_engine_profile": save_engine_profile}
        for name, value in given.items():
            if value:
                raise ValueError(f"Debugger: {name}={value!r} is not supported by torch_tensorrt_rtx: "
                                 f"{_UNSUPPORTED[name]}")
        self.level = _LEVELS[log_level]
        self.logging_dir = Path(logging_dir or os.path.join(tempfile.gettempdir(), "torch_tensorrt_rtx",
                                                            "debug_logs"))
        self._saved: Dict[str, Any] = {}
        self._writer: Optional[_ArtifactWriter] = None
        self._log_file: Optional[logging.Handler] = None

    @property
    def written(self) -> List[Path]:
        """Artifact files written so far (the log file not included)."""
        return list(self._writer.written) if self._writer is not None else []

    def __enter__(self) -> "Debugger":
        self.logging_dir.mkdir(parents=True, exist_ok=True)
        package = logging.getLogger(PACKAGE_LOGGER)
        self._saved = {"level": package.level, "artifact_level": ARTIFACT_LOGGER.level,
                       "propagate": ARTIFACT_LOGGER.propagate}
        self._writer = _ArtifactWriter(self.logging_dir)
        self._log_file = logging.FileHandler(self.logging_dir / "torch_tensorrt_rtx.log")
        self._log_file.setLevel(self.level)
        self._log_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        package.addHandler(self._log_file)
        package.setLevel(min(self.level, package.getEffectiveLevel()))
        ARTIFACT_LOGGER.addHandler(self._writer)
        ARTIFACT_LOGGER.setLevel(GRAPHS)
        ARTIFACT_LOGGER.propagate = self.level <= GRAPHS  # graphs reach other handlers only when asked for
        return self

    def __exit__(self, *exc: Any) -> None:
        package = logging.getLogger(PACKAGE_LOGGER)
        package.removeHandler(self._log_file)
        self._log_file.close()
        ARTIFACT_LOGGER.removeHandler(self._writer)
        package.setLevel(self._saved["level"])
        ARTIFACT_LOGGER.setLevel(self._saved["artifact_level"])
        ARTIFACT_LOGGER.propagate = self._saved["propagate"]
