"""Verification: check compiled programs on the CPU, with no GPU, against eager PyTorch.

- `verify` (`_verify.py`): run every engine of a compiled program through the reference
  executor and compare with the same subgraph run eagerly (public as `torch_tensorrt_rtx.verify`).
- `run_network` (`reference_executor.py`; one handler per layer type, registered with
  `_layer_registry.handles` in `reference_layers.py` and `reference_data_layers.py`): run a built
  INetworkDefinition layer by layer with torch; the converters' test oracle.
- `check_input_shapes` (`profile_check.py`): refuse inputs an engine's optimization profile
  does not cover, naming the input, dimension and range.
- `engine_sources`: the in-process index from an engine to the FX graph and network it was
  built from, filled by the compiler and read by `verify`.

Conversion never imports this package: the oracle is kept apart from what it checks.
"""
from torch_tensorrt_rtx.dynamo.verification._verify import VerificationReport, VerificationUnavailableError, verify
from torch_tensorrt_rtx.dynamo.verification.profile_check import InputOutsideProfileError, check_input_shapes
from torch_tensorrt_rtx.dynamo.verification.reference_executor import (InvalidLayerError, UnsupportedLayerError,
                                                                        run_network)

__all__ = ["InputOutsideProfileError", "InvalidLayerError", "UnsupportedLayerError", "VerificationReport", "VerificationUnavailableError",
           "check_input_shapes", "run_network", "verify"]
