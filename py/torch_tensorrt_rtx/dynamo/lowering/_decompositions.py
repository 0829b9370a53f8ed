"""The ATen decomposition table applied after torch.export.

It is torch's default (core ATen) table minus every op that has a registered converter: an op
we convert natively (e.g. silu -> one activation) is better kept whole than decomposed.

Building it materializes torch's table, which walks every operator namespace for
CompositeImplicitAutograd ops (20-60 ms warm, a few hundred ms on the first call), so it is
built once and rebuilt only when a converter or a dispatcher operator (e.g. a custom-op library
loaded later, whose CIA ops torch's table also decomposes) has been registered since. Each
caller gets its own copy.
"""
from __future__ import annotations

import functools
from typing import Callable, Dict, FrozenSet

import torch

from torch_tensorrt_rtx.dynamo.conversion._registry import registered_targets


def decomposition_table() -> Dict[torch._ops.OperatorBase, Callable]:
    operator_count = len(torch._C._dispatch_get_all_op_names())  # ~3 ms; grows when any op is defined
    # A fresh dict each call: run_decompositions copies it today, but callers may edit theirs.
    return dict(_table_without(frozenset(registered_targets()), operator_count))


@functools.lru_cache(maxsize=1)
def _table_without(converted: FrozenSet[object], operator_count: int) -> Dict[torch._ops.OperatorBase, Callable]:
    del operator_count  # only part of the cache key
    table = dict(torch.export.default_decompositions())
    for target in converted:
        table.pop(target, None)
    return table
