"""Engine output sizes that are functions of rounded input sizes (`((s - 1)//16) + 1`
after strided convolutions was reported as data-dependent and sent the rest of the model to
PyTorch)."""
from __future__ import annotations

import sympy
import torch
import torch.nn as nn
from torch.utils._sympy.functions import FloorDiv

import torch_tensorrt_rtx as trtx
from torch_tensorrt_rtx.dynamo._size_solve import solve

S = sympy.Symbol("s0", integer=True, positive=True)
D = sympy.Symbol("i0_2", integer=True, positive=True)


def test_linear_size_is_inverted_exactly():
    assert solve(S, [(64 * S + 3, D)], {}) == FloorDiv(D - 3, 64)


def test_rounded_size_through_a_checked_preimage():
    conv = FloorDiv(S - 1, 2) + 1          # a stride-2 convolution's output size
    twice = FloorDiv(S - 1, 4) + 1         # after a second one
    found = solve(S, [(conv, D)], {S: (16, 33, 64)}, [twice])
    assert found is not None
    for s in range(16, 65):  # the engine computes `twice` from its input dim alone
        d = int(conv.xreplace({S: s}))
        assert int(twice.xreplace({S: found.xreplace({D: d})})) == int(twice.xreplace({S: s})), s


def test_output_not_determined_by_the_input_dim_is_refused():
    half = FloorDiv(S, 2)
    assert solve(S, [(half, D)], {S: (2, 8, 64)}, [S]) is None  # s = 2d or 2d + 1: unknown
    assert solve(S, [(FloorDiv(S - 1, 2) + 1, D)], {}, [S]) is None  # no range to check over


class TwoStridedConvs(nn.Module):
    """conv(stride 2) -> [PyTorch] -> conv(stride 2): the second engine's input is (s-1)//2 + 1,
    its output (s-1)//4 + 1."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.c2 = nn.Conv2d(8, 8, 3, stride=2, padding=1)

    def forward(self, x):
        y = torch.sigmoid(torch.relu(self.c1(x)))
        return torch.relu(self.c2(y)) * 2


def test_engine_after_strided_conv_keeps_dynamic_spatial_dims():
    model = TwoStridedConvs().eval()
    spec = trtx.Input(min_shape=(1, 3, 16, 16), opt_shape=(1, 3, 33, 33), max_shape=(1, 3, 64, 64))
    compiled = trtx.compile(model, [spec], min_block_size=1, progress=False,
                            torch_executed_ops={"aten.sigmoid.default"})
    report = compiled.compile_report
    assert report.fallback_ops == {"aten.sigmoid.default": 1} and len(report.engines) == 2, report.format()
    assert not report.failed_nodes, report.format()
    for side in (16, 33, 63):
        verification = trtx.verify(compiled, torch.randn(1, 3, side, side), reference_module=model)
        assert verification.ok, f"side {side}:\n{verification}"
