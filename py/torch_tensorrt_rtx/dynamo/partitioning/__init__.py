"""Partitioning: split a lowered graph into TensorRT-RTX subgraphs and PyTorch fallback."""
from torch_tensorrt_rtx.dynamo.partitioning._partitioner import PartitionResult, partition

__all__ = ["PartitionResult", "partition"]
