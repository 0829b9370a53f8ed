"""With enabled_precisions={torch.float16}, lookups in weight tables (embeddings) gather in fp16
when their consumers compute in fp16, so the engine stores the table at half the bytes; a table
tied to an LM head is stored once. Numerics are checked by the reference executor."""
from __future__ import annotations

import torch
import torch.nn as nn

import torch_tensorrt_rtx as trtx
from torch_tensorrt_rtx.dynamo._export import export_aten
from torch_tensorrt_rtx.dynamo.lowering._precision import reduce_precision

from tests.py.dynamo.conversion.harness import compile_and_verify

VOCAB, WIDTH, SEQ = 4096, 128, 16
TABLE_FP16_BYTES = VOCAB * WIDTH * 2  # 1 MiB


class TiedLM(nn.Module):
    """GPT-2 in miniature: token + position embeddings, a linear layer, an LM head tied to the table."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens = nn.Embedding(VOCAB, WIDTH)
        self.positions = nn.Embedding(SEQ, WIDTH)
        self.mix = nn.Linear(WIDTH, WIDTH)
        self.head = nn.Linear(WIDTH, VOCAB, bias=False)
        self.head.weight = self.tokens.weight

    def forward(self, ids):
        x = self.tokens(ids) + self.positions(torch.arange(ids.shape[1]))
        return self.head(torch.relu(self.mix(x)))


class TableIntoReduction(nn.Module):
    """A table whose only consumer computes in fp32 (a sum): it keeps fp32."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens = nn.Embedding(64, WIDTH)

    def forward(self, ids):
        return self.tokens(ids).sum(-1)


def _lookup_dtypes(module, dtype=torch.float16):
    """The dtype each embedding lookup produces once reduce_precision has run."""
    ids = torch.randint(0, 64, (2, SEQ))
    gm = export_aten(module.eval(), [trtx.Input.from_tensor(ids)]).graph_module
    reduce_precision(gm, dtype)
    return {n.meta["val"].dtype for n in gm.graph.nodes if n.target == torch.ops.aten.embedding.default}


def test_tables_follow_their_consumers_precision():
    assert _lookup_dtypes(TiedLM()) == {torch.float16}
    assert _lookup_dtypes(TiedLM(), torch.bfloat16) == {torch.bfloat16}
    assert _lookup_dtypes(TableIntoReduction()) == {torch.float32}


def test_tied_fp16_table_is_stored_once_at_half_size():
    ids = torch.randint(0, VOCAB, (2, SEQ))
    _, report, _ = compile_and_verify(TiedLM(), [ids], full=True, enabled_precisions={torch.float16})
    engine_bytes = sum(e.engine_bytes for e in report.engines)
    # fp32 table + fp16 head copy was 3 MiB; one fp16 table is 1 MiB (+ the small layers).
    assert engine_bytes < 1.5 * TABLE_FP16_BYTES, f"{engine_bytes} bytes\n{report.format()}"
