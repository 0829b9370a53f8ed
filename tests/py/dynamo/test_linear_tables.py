"""A linear weight of at least 1 MiB whose row count is not a multiple of 4 (GPT-2's 50257-row LM
head, tied to the token embedding or not) is padded with zero rows in lowering, the linear's output
sliced back (lowering/_linear_tables.py): TensorRT-RTX then stores a tied table once. Numerics are
checked against eager PyTorch through the reference executor, with dynamic batch and sequence."""
from __future__ import annotations

import pytest
import tensorrt_rtx as trt
import torch
import torch.nn as nn

import torch_tensorrt_rtx as trtx
from torch_tensorrt_rtx.dynamo._export import export_aten
from torch_tensorrt_rtx.dynamo.conversion._interpreter import build_network
from torch_tensorrt_rtx.dynamo.lowering import lower
from torch_tensorrt_rtx.dynamo.lowering._linear_tables import MIN_TABLE_BYTES

from tests.py.dynamo.conversion.harness import FP32_FP16, compile_and_verify

aten = torch.ops.aten
ROWS, WIDTH = 4099, 64  # 1.05 MB of fp32: just above the size floor
assert ROWS * WIDTH * 4 >= MIN_TABLE_BYTES


class LM(nn.Module):
    """Token embedding, a nonlinearity, an LM head (tied to the embedding or its own weight)."""

    def __init__(self, rows: int = ROWS, width: int = WIDTH, tied: bool = True, bias: bool = False) -> None:
        super().__init__()
        self.tokens = nn.Embedding(rows, width)
        self.head = nn.Linear(width, rows, bias=bias)
        if tied:
            self.head.weight = self.tokens.weight

    def forward(self, ids):
        return self.head(torch.tanh(self.tokens(ids)))


class HeadOnly(nn.Module):
    def __init__(self, rows: int = ROWS, bias: bool = True) -> None:
        super().__init__()
        self.head = nn.Linear(WIDTH, rows, bias=bias)

    def forward(self, x):
        return self.head(x)


class LookupOnly(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.tokens = nn.Embedding(ROWS, WIDTH)

    def forward(self, ids):
        return self.tokens(ids) * 2


class TableAlsoSummed(LM):
    """The tied table has a third reader (a reduction): it must keep its shape."""

    def forward(self, ids):
        return super().forward(ids) + self.tokens.weight.sum()


IDS = trtx.Input(min_shape=(1, 2), opt_shape=(2, 8), max_shape=(4, 16), dtype=torch.int64)
ID_RUNS = [[torch.randint(0, ROWS, shape)] for shape in [(1, 2), (4, 16), (3, 5)]]
ID_RUNS[0][0][0, 0] = ROWS - 1  # the last real row is read


def _lowered(module: nn.Module, spec=IDS, **kwargs):
    return lower(export_aten(module.eval(), [spec]).graph_module, **kwargs)


def _pads(gm) -> list:
    return [n for n in gm.graph.nodes if n.target == aten.constant_pad_nd.default]


def test_tied_table_is_padded_once_for_lookup_and_head_and_the_output_sliced():
    gm = _lowered(LM())
    [padded] = _pads(gm)
    assert tuple(padded.meta["val"].shape) == (ROWS + 1, WIDTH)
    assert {u.target for u in padded.users} == {aten.embedding.default, aten.linear.default}
    linear = next(u for u in padded.users if u.target == aten.linear.default)
    assert linear.meta["val"].shape[-1] == ROWS + 1
    [sliced] = linear.users
    assert sliced.target == aten.slice.Tensor and sliced.args[1:] == (2, 0, ROWS)
    assert sliced.meta["val"].shape[-1] == ROWS
    # Batch and sequence stay symbolic: the pass added no guard that fixed them.
    assert all(not isinstance(d, int) for d in sliced.meta["val"].shape[:2])


def test_network_gathers_and_multiplies_from_one_padded_constant():
    gm = _lowered(LM())
    network_def = build_network(gm, [{0: (1, 2, 4), 1: (2, 8, 16)}])
    network = network_def.network
    layers = [network.get_layer(i) for i in range(network.num_layers)]
    gather = next(layer for layer in layers if layer.type == trt.LayerType.GATHER and layer.name.startswith("embedding"))
    matmul = next(layer for layer in layers if layer.type == trt.LayerType.MATRIX_MULTIPLY)
    table = gather.get_input(0)
    assert tuple(table.shape) == (ROWS + 1, WIDTH)
    producers = {layer.get_output(0).name: layer for layer in layers}
    head = matmul.get_input(1)  # the table, or a rank-aligning unsqueeze of it
    if tuple(head.shape) != tuple(table.shape):
        head = producers[head.name].get_input(0)
    assert head.name == table.name


@pytest.mark.parametrize("dtype", **FP32_FP16)
def test_tied_lm_matches_eager_and_stores_its_table_once(dtype):
    precisions = {torch.float16} if dtype == torch.float16 else set()
    _, report, _ = compile_and_verify(LM(), [IDS], ID_RUNS, full=True, enabled_precisions=precisions)
    table_bytes = ROWS * WIDTH * dtype.itemsize
    engine_bytes = sum(e.engine_bytes for e in report.engines)
    # Unpadded, TensorRT-RTX keeps a second copy for the head: 2.28 MB (fp32) / 1.28 MB (fp16).
    assert engine_bytes < 2 * table_bytes, f"{engine_bytes} bytes\n{report.format()}"


def test_untied_head_with_bias_is_padded_and_matches_eager():
    gm = _lowered(HeadOnly(), trtx.Input(shape=(2, WIDTH)))
    padded = _pads(gm)
    assert sorted(tuple(p.meta["val"].shape) for p in padded) == [(ROWS + 1,), (ROWS + 1, WIDTH)]
    spec = trtx.Input(min_shape=(1, 3, WIDTH), opt_shape=(2, 5, WIDTH), max_shape=(4, 9, WIDTH))
    runs = [[torch.randn(shape)] for shape in [(1, 3, WIDTH), (4, 9, WIDTH), (3, 4, WIDTH)]]
    compile_and_verify(HeadOnly(), [spec], runs, full=True)


def test_untied_lm_pads_only_the_head():
    gm = _lowered(LM(tied=False))
    [padded] = _pads(gm)
    assert [u.target for u in padded.users] == [aten.linear.default]
    compile_and_verify(LM(tied=False), [IDS], ID_RUNS, full=True)


@pytest.mark.parametrize("module", [LM(rows=4100), LM(rows=99, width=8), LookupOnly(), TableAlsoSummed()],
                         ids=["rows_multiple_of_4", "below_size_floor", "lookup_only", "table_read_by_another_op"])
def test_tables_left_as_they_are(module):
    gm = _lowered(module)
    assert not _pads(gm) and not [n for n in gm.graph.nodes if n.target == aten.slice.Tensor]


def test_refittable_lowering_keeps_weight_shapes():
    assert not _pads(_lowered(LM(), pad_tables=False))


def test_table_read_by_another_op_still_matches_eager():
    compile_and_verify(TableAlsoSummed(), [IDS], ID_RUNS, full=True)
