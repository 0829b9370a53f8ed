"""A partition's TensorRT-RTX network, converted when something first needs it.

    network = LazyNetwork(sub, input_ranges, name_weights, settings)
    network.input_names, network.output_names, network.converted_ops   # from the graph: no conversion
    network.get()        # the NetworkDefinition: converted on the first call (once, thread-safe)
    network.converted    # whether get() has converted it

A compile whose engine comes from the engine cache packages it without a network. Conversion is
left to what reads the network: `verify`'s reference executor, the Debugger's layer list, or the
build itself when the cached entry turned out unreadable. `get()` runs the same `build_network` the
compile would have run (same graph, input ranges, weight naming, and converter settings as
upstream-style converters see them), so the network is the one an eager conversion gives.
"""
from __future__ import annotations

import threading
from typing import Any, Dict, List, Optional, Sequence, Tuple

from torch.fx import GraphModule

from torch_tensorrt_rtx.dynamo.conversion._interpreter import (
    NetworkDefinition,
    build_network,
    converted_ops,
    io_names,
)
from torch_tensorrt_rtx.dynamo.conversion._upstream_registry import converter_settings

DimRange = Tuple[int, int, int]


class LazyNetwork:
    """See the module docstring. `settings`: the CompilationSettings the compile runs with."""

    def __init__(self, module: GraphModule, input_ranges: Sequence[Dict[int, DimRange]],
                 name_weights: bool = False, settings: Any = None) -> None:
        self.module = module
        self.input_ranges = [dict(r) for r in input_ranges]
        self.name_weights, self.settings = name_weights, settings
        self._network: Optional[NetworkDefinition] = None
        self._lock = threading.Lock()

    @property
    def converted(self) -> bool:
        return self._network is not None

    def get(self) -> NetworkDefinition:
        """The network; converts the partition on the first call (a ConversionError if it fails)."""
        with self._lock:
            if self._network is None:
                with converter_settings(self.settings):
                    self._network = build_network(self.module, self.input_ranges, self.name_weights)
            return self._network

    @property
    def input_names(self) -> List[str]:
        return self._network.input_names if self._network is not None else io_names(self.module)[0]

    @property
    def output_names(self) -> List[str]:
        return self._network.output_names if self._network is not None else io_names(self.module)[1]

    @property
    def converted_ops(self) -> List[str]:
        return self._network.converted_ops if self._network is not None else converted_ops(self.module)
