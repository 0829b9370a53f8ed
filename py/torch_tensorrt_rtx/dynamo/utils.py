"""Upstream's ``torch_tensorrt.dynamo.utils`` helpers that user code (and upstream's examples)
import to compare a compiled module's outputs with PyTorch's:

    from torch_tensorrt_rtx.dynamo.utils import COSINE_THRESHOLD, cosine_similarity
    assert cosine_similarity(model(x), compiled(x)) > COSINE_THRESHOLD

For a check of every engine on a machine without a GPU, use ``torch_tensorrt_rtx.verify``.
"""
from __future__ import annotations

import torch

COSINE_THRESHOLD = 0.99  # upstream's threshold for "the outputs agree"


def cosine_similarity(expected: torch.Tensor, actual: torch.Tensor) -> float:
    """Cosine similarity of two tensors of the same number of elements, flattened, computed in
    float32 on the CPU. Two all-zero (or otherwise equal) tensors give 1.0."""
    if not isinstance(expected, torch.Tensor) or not isinstance(actual, torch.Tensor):
        raise TypeError(f"cosine_similarity takes two tensors, got {type(expected).__name__} and "
                        f"{type(actual).__name__}")
    a = expected.detach().flatten().to("cpu", torch.float32)
    b = actual.detach().flatten().to("cpu", torch.float32)
    if a.numel() != b.numel():
        raise ValueError(f"cosine_similarity: {a.numel()} elements against {b.numel()}")
    if torch.equal(a, b):
        return 1.0
    return float(torch.nn.functional.cosine_similarity(a, b, dim=0, eps=1e-6))
