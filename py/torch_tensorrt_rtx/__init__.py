"""torch_tensorrt_rtx: compile PyTorch models for NVIDIA TensorRT-RTX on any machine.

Importing this package never touches CUDA, so it works on build servers without a GPU.
"""
import logging as _logging

from torch_tensorrt_rtx._version import __version__

_logging.getLogger(__name__).addHandler(_logging.NullHandler())
