"""The ATen decomposition table applied after torch.export.

It is torch's default (core ATen) table minus every op that has a registered converter: an op
we convert natively (e.g. silu -> one activation) is better kept whole than decomposed.
"""
from __future__ import annotations

from typing import Callable, Dict

import torch

from torch_tensorrt_rtx.dynamo.conversion._registry import registered_targets


def decomposition_table() -> Dict[torch._ops.OperatorBase, Callable]:
    table = dict(torch.export.default_decompositions())
    for target in registered_targets():
        table.pop(target, None)
    return table
