"""Weights that went into engines leave the compiled program (dynamo/_compiler.py
`_drop_unused_state`), under every name: a tied weight (an LM head sharing the token embedding's
table, as GPT-2's) was kept, and saved, under its second name."""
from __future__ import annotations

import torch
import torch.nn as nn

import torch_tensorrt_rtx as trtx

ROWS, WIDTH = 50, 8
IDS = trtx.Input(min_shape=(1, 2), opt_shape=(2, 4), max_shape=(4, 8), dtype=torch.int64)


class Tied(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.tokens = nn.Embedding(ROWS, WIDTH)
        self.head = nn.Linear(WIDTH, ROWS, bias=False)
        self.head.weight = self.tokens.weight

    def forward(self, ids):
        return self.head(torch.tanh(self.tokens(ids)))


def _state(module: nn.Module) -> dict:
    return {name: tuple(t.shape) for name, t in
            list(module.named_parameters(remove_duplicate=False)) + list(module.named_buffers(remove_duplicate=False))}


def test_a_tied_weight_inside_the_engine_leaves_under_both_names():
    compiled = trtx.compile(Tied().eval(), [IDS], min_block_size=1, progress=False)
    state = _state(compiled)
    assert [name for name in state if not name.endswith("_engine")] == [], state


def test_a_tied_weight_still_read_in_pytorch_stays():
    compiled = trtx.compile(Tied().eval(), [IDS], min_block_size=1, progress=False,
                            torch_executed_ops={torch.ops.aten.embedding.default})
    read = {str(n.target) for n in compiled.graph.nodes if n.op == "get_attr"}
    kept = {name for name in _state(compiled) if not name.endswith("_engine")}
    assert kept and kept <= read, (kept, read)  # the embedding's table, under the name the graph reads
