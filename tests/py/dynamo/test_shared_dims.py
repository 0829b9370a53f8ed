"""Shared dims: one `dim_names` entry on several inputs is one export Dim; sizes that are sums or
products of input sizes are expressions of input sizes (never "data-dependent"); dims that
export unifies itself (x + y) stay dynamic under torch.compile."""
from __future__ import annotations

import torch
import torch.nn as nn

import torch_tensorrt_rtx as trtx
from torch_tensorrt_rtx.dynamo._export import export_aten


class TwoImages(nn.Module):
    """Optical-flow style: both images through one encoder as one batch, then split again."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, image1, image2):
        features = self.conv(torch.cat([image1, image2], dim=0))
        n = image1.shape[0]
        return (features[:n] * features[n:]).sum(1)


def _image(name="batch"):
    return trtx.Input(min_shape=(1, 3, 8, 8), opt_shape=(2, 3, 8, 8), max_shape=(4, 3, 8, 8),
                      dim_names=(name, None, None, None))


def test_one_name_on_two_inputs_is_one_symbol():
    exported = export_aten(TwoImages(), [_image(), _image()])
    shapes = [n.meta["val"].shape for n in exported.graph_module.graph.find_nodes(op="placeholder")]
    assert shapes[0][0].node.expr == shapes[1][0].node.expr
    assert list(exported.symbol_ranges.values()) == [(1, 2, 4)]


def test_shared_batch_compiles_to_one_dynamic_engine_and_verifies():
    model = TwoImages().eval()
    compiled = trtx.compile(model, [_image(), _image()], min_block_size=1, progress=False)
    report = compiled.compile_report
    assert len(report.engines) == 1 and not report.fallback_ops, report.format()
    for batch in (1, 3, 4):
        x, y = torch.randn(batch, 3, 8, 8), torch.randn(batch, 3, 8, 8)
        assert trtx.verify(compiled, x, y, reference_module=model).ok


class CatThenMore(nn.Module):
    """A size s_a + s_b (cat of two independently dynamic widths) crossing an engine boundary."""

    def forward(self, x, y):
        z = torch.sigmoid(torch.cat([x.relu(), y.relu()], dim=1))  # sigmoid stays in PyTorch below
        return (z * 2 + 1).tanh()


def test_sum_of_input_sizes_is_an_expression_not_data_dependent():
    model = CatThenMore().eval()
    a = trtx.Input(min_shape=(2, 4), opt_shape=(2, 8), max_shape=(2, 16))
    b = trtx.Input(min_shape=(2, 5), opt_shape=(2, 9), max_shape=(2, 17))
    compiled = trtx.compile(model, [a, b], min_block_size=1, progress=False,
                            torch_executed_ops=["aten.sigmoid.default"])
    report = compiled.compile_report
    assert len(report.engines) == 2, report.format()
    assert set(report.fallback_ops) == {"aten.sigmoid.default"}, report.format()
    assert "data" not in report.format()
    assert report.engines[1].input_ranges == ["{1: (9, 17, 33)}"]
    for wx, wy in ((4, 5), (16, 17), (7, 12)):
        assert trtx.verify(compiled, torch.randn(2, wx), torch.randn(2, wy), reference_module=model).ok


class AddTwo(nn.Module):
    def forward(self, x, y):
        return (x.relu() + y).tanh() * 2


def test_torch_compile_keeps_dims_export_unifies_dynamic(fresh_dynamo):
    """x + y makes export unify both batches (a guard Eq(s77, s17) that holds by construction):
    one dynamic engine for every batch, not one static engine per batch."""
    model = AddTwo().eval()
    fast = torch.compile(model, backend="tensorrt_rtx", dynamic=True, options={"min_block_size": 1, "progress": False})
    with trtx.compile_reports() as reports:
        for batch in (2, 3, 5):
            x, y = torch.randn(batch, 6), torch.randn(batch, 6)
            assert trtx.verify(fast, x, y, reference_module=model).ok
    assert len(reports) == 1, [r.format() for r in reports]
    assert reports[0].engines[0].input_ranges[0].startswith("{0: (2, 2, 4096)"), reports[0].format()
