"""Converters added for ops that fell back on popular models outside the acceptance zoo
(benchmarks/model_sweep.py finds them): each builds a real engine and is compared with eager
PyTorch through the reference executor."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from torch_tensorrt_rtx import Input

from tests.py.dynamo.conversion.harness import compile_and_verify


class Fn(nn.Module):
    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, *xs):
        return self.fn(*xs)


# -- max_pool2d(ceil_mode=True): GoogLeNet, SqueezeNet ------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("kernel,stride,padding,side", [(3, 2, 0, 13), (3, 2, 1, 8), (2, 2, 0, 7), (3, 3, 1, 10)])
def test_max_pool2d_ceil_mode(dtype, kernel, stride, padding, side):
    # Windows hang past the right/bottom edge; negative inputs check the fill is -inf, not 0.
    module = Fn(lambda x: F.max_pool2d(x, kernel, stride, padding, ceil_mode=True))
    x = (torch.rand(2, 3, side, side + 1) - 2).to(dtype)
    _, report, _ = compile_and_verify(module, [x], expect_ops=["aten.max_pool2d.default"], full=True)
    assert not report.failed_nodes, report.format()


def test_max_pool2d_ceil_mode_dynamic_batch():
    module = Fn(lambda x: F.max_pool2d(x, 3, 2, ceil_mode=True))
    spec = Input(min_shape=(1, 2, 10, 10), opt_shape=(2, 2, 10, 10), max_shape=(4, 2, 10, 10))
    compile_and_verify(module, [spec], [[torch.randn(1, 2, 10, 10) - 3], [torch.randn(4, 2, 10, 10) - 3]],
                       expect_ops=["aten.max_pool2d.default"], full=True)


# -- adaptive_avg_pool2d with uneven windows: VGG/AlexNet classifier heads at small inputs -------
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("side,out", [(1, (7, 7)), (8, (3, 3)), (5, (3, 2)), (13, (6, 6)), (6, (4, 3))])
def test_adaptive_avg_pool2d_uneven(dtype, side, out):
    # (1, (7, 7)) is vgg11 at 32x32; (6, (4, 3)) mixes an uneven dim with an even one.
    module = Fn(lambda x: F.adaptive_avg_pool2d(x, out))
    x = torch.randn(2, 3, side, side + 1 if side > 1 else 1).to(dtype)
    compile_and_verify(module, [x], expect_ops=["aten.adaptive_avg_pool2d.default"], full=True)


def test_adaptive_avg_pool2d_uneven_dynamic_batch():
    module = Fn(lambda x: F.adaptive_avg_pool2d(x, (4, 4)))
    spec = Input(min_shape=(1, 3, 7, 7), opt_shape=(2, 3, 7, 7), max_shape=(4, 3, 7, 7))
    compile_and_verify(module, [spec], [[torch.randn(1, 3, 7, 7)], [torch.randn(4, 3, 7, 7)]],
                       expect_ops=["aten.adaptive_avg_pool2d.default"], full=True)


# -- linalg_vector_norm: F.normalize (EdgeNeXt's cross-covariance attention), ConvNeXt-V2's GRN ---
NORMS = [
    ("l2_last", lambda x: torch.linalg.vector_norm(x, dim=-1)),
    ("normalize", lambda x: F.normalize(x, dim=-1) * 3),
    ("grn", lambda x: torch.norm(x, p=2, dim=(1, 2), keepdim=True)),   # ConvNeXt-V2 GRN, NHWC
    ("l1_all", lambda x: torch.linalg.vector_norm(x, ord=1)),
    ("inf", lambda x: torch.linalg.vector_norm(x, ord=float("inf"), dim=1)),
    ("neg_inf", lambda x: torch.linalg.vector_norm(x, ord=float("-inf"), dim=(0, 2), keepdim=True)),
    ("p3", lambda x: torch.linalg.vector_norm(x, ord=3, dim=2)),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("name,fn", NORMS, ids=[n for n, _ in NORMS])
def test_vector_norm(dtype, name, fn):
    x = torch.randn(2, 5, 6, 4).to(dtype)
    compile_and_verify(Fn(fn), [x], expect_ops=["aten.linalg_vector_norm.default"], full=True)


def test_vector_norm_fp16_large_values():
    # Squares of fp16 values above 256 overflow fp16: the sum is taken in fp32, as torch does.
    x = (torch.randn(2, 64) * 600).half()
    compile_and_verify(Fn(lambda x: torch.linalg.vector_norm(x, dim=-1)), [x],
                       expect_ops=["aten.linalg_vector_norm.default"], full=True)


def test_vector_norm_dynamic():
    spec = Input(min_shape=(1, 2, 8), opt_shape=(2, 6, 8), max_shape=(4, 9, 8))
    compile_and_verify(Fn(lambda x: F.normalize(x, dim=1)), [spec],
                       [[torch.randn(1, 2, 8)], [torch.randn(4, 9, 8)]],
                       expect_ops=["aten.linalg_vector_norm.default"], full=True)


# -- EdgeNeXt's Fourier position encoding: bool cumsum, floor division ---------------------------
@pytest.mark.parametrize("out_dtype", [torch.float32, torch.int64, torch.int32])
def test_cumsum_bool(out_dtype):
    # (~mask).cumsum(1, dtype=...) and a plain bool cumsum (torch gives int64).
    module = Fn(lambda x: ((x > 0).cumsum(1, dtype=out_dtype), (x < 0.5).cumsum(-1)))
    x = torch.randn(2, 7, 9)
    compile_and_verify(module, [x], expect_ops=["aten.cumsum.default"], full=True)


DIVISIONS = [
    ("floor_tensor", lambda a, b: torch.div(a, b, rounding_mode="floor")),
    ("trunc_tensor", lambda a, b: torch.div(a, b, rounding_mode="trunc")),
    ("floor_scalar", lambda a, b: torch.div(a, 3, rounding_mode="floor") + b),
    ("trunc_scalar", lambda a, b: torch.div(a, -2.5, rounding_mode="trunc") + b),
]


# An int tensor divided by a float scalar is float division, covered by the float dtypes.
_DIV_CASES = [pytest.param(dtype, name, fn, id=f"{name}-{str(dtype).split('.')[-1]}")
              for name, fn in DIVISIONS for dtype in (torch.float32, torch.float16, torch.int32, torch.int64)
              if not (name == "trunc_scalar" and not dtype.is_floating_point)]


@pytest.mark.parametrize("dtype,name,fn", _DIV_CASES)
def test_rounded_div(dtype, name, fn):
    a = (torch.randn(3, 8) * 20).to(dtype)
    b = torch.randint(1, 6, (3, 8)).mul(torch.tensor([1, -1]).repeat(4)).to(dtype)  # +-divisors, no zero
    _, report, _ = compile_and_verify(Fn(fn), [a, b], full=True)
    assert any(k.startswith("aten.div.") and k.endswith("_mode") for k in report.converted_op_counts), \
        report.format()


def test_fourier_position_encoding():
    """timm's PositionalEncodingFourier (EdgeNeXt's) as one module: a bool mask's cumsum,
    arange, floor division, sin/cos, stacked and flattened."""
    from tests.py.models.zoo import import_torchvision

    import_torchvision()
    from timm.models.edgenext import PositionalEncodingFourier

    module = PositionalEncodingFourier(hidden_dim=8, dim=16).eval()
    module_fn = Fn(lambda x: module((x.shape[0], x.shape[2], x.shape[3])) + x)
    x = torch.randn(2, 16, 4, 5)
    compile_and_verify(module_fn, [x], expect_ops=["aten.cumsum.default"], full=True)


# -- softmax(x, dim, dtype=...): Bloom, Gemma-2 and Funnel attention -----------------------------
@pytest.mark.parametrize("in_dtype,out_dtype", [(torch.float16, torch.float32), (torch.float32, torch.float16),
                                                (torch.float32, torch.float32)])
def test_softmax_with_dtype(in_dtype, out_dtype):
    module = Fn(lambda x: F.softmax(x * 4, dim=-1, dtype=out_dtype))
    _, report, _ = compile_and_verify(module, [torch.randn(2, 3, 5, 7).to(in_dtype)], expect_ops=["aten.softmax.int"],
                                      full=True)
    assert report.engines


# -- pow with an integer operand: Bloom's ALiBi slopes, base ** arange(1, n + 1, dtype=int32) ------
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_pow_integer_exponent(dtype):
    def alibi(x):
        powers = torch.arange(1, x.shape[1] + 1, dtype=torch.int32)   # symbolic length: built in the engine
        base = torch.tensor(0.5, dtype=dtype)
        return x * torch.pow(base, powers)

    spec = Input(min_shape=(2, 2), opt_shape=(2, 5), max_shape=(2, 8), dtype=dtype)
    compile_and_verify(Fn(alibi), [spec], [[torch.randn(2, 3).to(dtype)], [torch.randn(2, 8).to(dtype)]],
                       expect_ops=["aten.pow.Tensor_Tensor"], full=True)


def test_pow_integer_base_float_exponent():
    module = Fn(lambda n, e: torch.pow(n, e))
    compile_and_verify(module, [torch.randint(1, 5, (3, 4), dtype=torch.int32), torch.rand(3, 4) * 2],
                       expect_ops=["aten.pow.Tensor_Tensor"], full=True)


# -- ops on constants alone are folded on the host, converter or not ------------------------------
class RelativeIndex(nn.Module):
    """BEiT's relative-position index: int64 arithmetic on buffers (sum over int64 has no
    converter), then a gather of a learned table by that index."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("coords", torch.randint(0, 5, (6, 6, 2)))
        self.table = nn.Parameter(torch.randn(20, 3), requires_grad=False)

    def forward(self, x):
        index = self.coords.sum(-1) * 2 - self.coords[..., 0]      # int64, constants only
        return x + self.table[index].permute(2, 0, 1)


class WeightStandardizedConv(nn.Conv2d):
    """timm's ScaledStdConv2d (NF-ResNet, NFNet): the weight normalized per output channel with
    F.batch_norm(training=True, no running stats) before every convolution."""

    def forward(self, x):
        weight = F.batch_norm(self.weight.reshape(1, self.out_channels, -1), None, None, training=True,
                              momentum=0.0, eps=1e-6).reshape_as(self.weight)
        return F.conv2d(x, weight * 0.5, self.bias, self.stride, self.padding)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_constant_subgraph_folded(dtype):
    module = RelativeIndex().to(dtype)
    _, report, _ = compile_and_verify(module, [torch.randn(2, 3, 6, 6).to(dtype)], full=True)
    assert "aten.sum.dim_IntList" in report.converted_op_counts, report.format()


def test_weight_standardization_folded():
    module = WeightStandardizedConv(3, 8, 3, padding=1)
    _, report, _ = compile_and_verify(module, [torch.randn(2, 3, 8, 8)], expect_ops=["aten.convolution.default"],
                                      full=True)
    assert "aten._native_batch_norm_legit.no_stats" in report.converted_op_counts, report.format()


def test_op_on_graph_input_without_converter_still_falls_back():
    # The same int64 sum, but of a graph input: nothing to fold, it stays in PyTorch with a reason.
    module = Fn(lambda x, i: x + i.sum(-1, keepdim=True).float() * 2)
    _, report, _ = compile_and_verify(module, [torch.randn(3, 4), torch.randint(0, 9, (3, 4))])
    assert "aten.sum.dim_IntList" in report.fallback_ops, report.format()
    assert "torch.int64 tensor: this converter takes" in report.fallback_reasons["aten.sum.dim_IntList"], \
        report.format()  # the validator's Refusal names the dtype it does not take


# -- arange with symbolic bounds and a negative step (relative positions counted down) -----------
@pytest.mark.parametrize("step", [-1, -2, -3])
def test_arange_negative_step_dynamic(step):
    # n, n-|step|, ... down to > -1: the length ceil((n + 1) / |step|) depends on the input.
    module = Fn(lambda x: (x * 2, torch.arange(x.shape[1], -1, step)))
    spec = Input(min_shape=(2, 3), opt_shape=(2, 6), max_shape=(2, 12), dtype=torch.int64)
    compile_and_verify(module, [spec], [[torch.randint(1, 9, (2, 5))], [torch.randint(1, 9, (2, 12))]],
                       expect_ops=["aten.arange.start_step"])


def test_host_constant_check_on_a_deep_graph():
    # An op without a converter at the end of a long chain: deciding it is not a constant walks
    # back toward the input without recursing node by node (Python's limit is 1000 frames).
    from torch_tensorrt_rtx.dynamo.conversion._registry import lookup

    def chain(x, i):
        for _ in range(1200):
            i = i + 1
        return x + i.sum(-1, keepdim=True).float()

    graph = torch.export.export(Fn(chain), (torch.randn(2, 3), torch.randint(0, 9, (2, 3)))).graph
    total = next(n for n in graph.nodes if n.target == torch.ops.aten.sum.dim_IntList)
    assert lookup(total) is None
