"""Lowering: ATen decompositions (at export time) and graph passes before partitioning."""
from torch_tensorrt_rtx.dynamo.lowering._decompositions import decomposition_table
from torch_tensorrt_rtx.dynamo.lowering._passes import lower

__all__ = ["decomposition_table", "lower"]
