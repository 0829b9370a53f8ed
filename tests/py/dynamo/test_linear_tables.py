"""A linear weight of at least 1 MiB whose row count is not a multiple of 4 (GPT-2's 50257-row LM
head, tied to the token embedding or not) is padded with zero rows in the network, the linear's
output sliced back (conversion/_linear_tables.py): TensorRT-RTX then stores a tied table once.
Numerics are checked against eager PyTorch through the reference executor, with dynamic batch and
sequence."""
from __future__ import annotations

import pytest
import tensorrt_rtx as trt
import torch
import torch.nn as nn

import torch_tensorrt_rtx as trtx
from torch_tensorrt_rtx.dynamo._export import export_aten
from torch_tensorrt_rtx.dynamo.conversion._interpreter import build_network
from torch_tensorrt_rtx.dynamo.lowering import lower
from torch_tensorrt_rtx.dynamo.conversion._linear_tables import MIN_TABLE_BYTES

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


RANGES = [{0: (1, 2, 4), 1: (2, 8, 16)}]


def _network(module: nn.Module, spec=IDS, ranges=RANGES, name_weights: bool = False) -> "trt.INetworkDefinition":
    gm = lower(export_aten(module.eval(), [spec]).graph_module)
    network_def = build_network(gm, ranges, name_weights=name_weights)
    return network_def.network


def _layers(network) -> list:
    return [network.get_layer(i) for i in range(network.num_layers)]


def _slices(network) -> list:
    return [layer for layer in _layers(network) if layer.type == trt.LayerType.SLICE]


def _source(network, tensor):
    """`tensor`, or the input of the rank-aligning unsqueeze that made it."""
    for layer in _layers(network):
        if layer.type == trt.LayerType.UNSQUEEZE and layer.get_output(0).name == tensor.name:
            return layer.get_input(0)
    return tensor


def test_tied_table_is_padded_once_for_lookup_and_head_and_the_output_sliced():
    network = _network(LM())
    gather = next(layer for layer in _layers(network) if layer.type == trt.LayerType.GATHER
                  and layer.name.startswith("embedding"))
    matmul = next(layer for layer in _layers(network) if layer.type == trt.LayerType.MATRIX_MULTIPLY)
    table = gather.get_input(0)
    assert tuple(table.shape) == (ROWS + 1, WIDTH)
    assert _source(network, matmul.get_input(1)).name == table.name  # one padded table for both
    assert matmul.get_output(0).shape[-1] == ROWS + 1
    output = network.get_output(0)
    assert output.shape[-1] == ROWS and tuple(output.shape[:2]) == (-1, -1)  # batch and sequence stay dynamic


@pytest.mark.parametrize("dtype", **FP32_FP16)
def test_tied_lm_matches_eager_and_stores_its_table_once(dtype):
    precisions = {torch.float16} if dtype == torch.float16 else set()
    _, report, _ = compile_and_verify(LM(), [IDS], ID_RUNS, full=True, enabled_precisions=precisions)
    table_bytes = ROWS * WIDTH * dtype.itemsize
    engine_bytes = sum(e.engine_bytes for e in report.engines)
    # Unpadded, TensorRT-RTX keeps a second copy for the head: 2.28 MB (fp32) / 1.28 MB (fp16).
    assert engine_bytes < 2 * table_bytes, f"{engine_bytes} bytes\n{report.format()}"


def test_untied_head_with_bias_is_padded_and_matches_eager():
    spec = trtx.Input(min_shape=(1, 3, WIDTH), opt_shape=(2, 5, WIDTH), max_shape=(4, 9, WIDTH))
    network = _network(HeadOnly(), spec, [{0: (1, 2, 4), 1: (3, 5, 9)}])
    padded = sorted(tuple(layer.get_output(0).shape) for layer in _slices(network))
    assert padded == [(-1, -1, ROWS), (ROWS + 1,), (ROWS + 1, WIDTH)]  # output sliced back; bias and weight padded
    runs = [[torch.randn(shape)] for shape in [(1, 3, WIDTH), (4, 9, WIDTH), (3, 4, WIDTH)]]
    compile_and_verify(HeadOnly(), [spec], runs, full=True)


def test_untied_lm_pads_only_the_head():
    network = _network(LM(tied=False))
    gather = next(layer for layer in _layers(network) if layer.type == trt.LayerType.GATHER
                  and layer.name.startswith("embedding"))
    assert tuple(gather.get_input(0).shape) == (ROWS, WIDTH)
    assert (ROWS + 1, WIDTH) in [tuple(layer.get_output(0).shape) for layer in _slices(network)]
    compile_and_verify(LM(tied=False), [IDS], ID_RUNS, full=True)


@pytest.mark.parametrize("module", [LM(rows=4100), LM(rows=99, width=8), LookupOnly(), TableAlsoSummed()],
                         ids=["rows_multiple_of_4", "below_size_floor", "lookup_only", "table_read_by_another_op"])
def test_tables_left_as_they_are(module):
    assert not _slices(_network(module))


def test_weightless_networks_keep_weight_shapes():
    assert not _slices(_network(LM(), name_weights=True))


def test_table_read_by_another_op_still_matches_eager():
    compile_and_verify(TableAlsoSummed(), [IDS], ID_RUNS, full=True)


def test_lookup_kept_in_pytorch_reads_the_unpadded_table():
    """Planned per partition: the head's engine pads its own copy; nothing padded crosses engines."""
    _, report, _ = compile_and_verify(LM(), [IDS], ID_RUNS, torch_executed_ops={aten.embedding.default})
    [engine] = report.engines
    assert "aten.linear.default" in engine.converted_ops and "aten.embedding.default" not in engine.converted_ops
