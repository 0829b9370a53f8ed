"""Attention: scaled_dot_product_attention (causal, boolean and additive masks, a constant mask,
grouped-query attention) and softmax on masks that hide whole rows: the engine must give what
eager PyTorch gives (0 for a query row whose keys are all masked, not NaN), with boolean and
additive -inf masks, causal masks with padding, is_causal together with a mask, and dynamic batch
and sequence."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import torch_tensorrt_rtx as trtx

from tests.py.dynamo.conversion.harness import (compile_and_verify, compile_checked, constant_operand_test, floats,
                                                op_case_tests)


SDPA = "aten.scaled_dot_product_attention.default"
L, S, E = 5, 6, 8


class Attention(nn.Module):
    def __init__(self, is_causal=False, enable_gqa=False):
        super().__init__()
        self.is_causal, self.enable_gqa = is_causal, enable_gqa

    def forward(self, q, k, v, mask=None):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=self.is_causal,
                                              enable_gqa=self.enable_gqa)


def _qkv(dtype, heads=2, kv_heads=2, batch=2):
    torch.manual_seed(0)
    return (torch.randn(batch, heads, L, E, dtype=dtype), torch.randn(batch, kv_heads, S, E, dtype=dtype),
            torch.randn(batch, kv_heads, S, E, dtype=dtype))


def _keep(batch=2):
    """A boolean mask (True = attend) with query row 3 fully hidden and key column 1 hidden."""
    torch.manual_seed(1)
    keep = torch.rand(batch, 1, L, S) > 0.3
    keep[:, :, :, 1] = False
    keep[:, :, 3, :] = False
    keep[:, :, 0, 0] = True
    return keep


def _check(module, inputs, expect_zero_rows=True):
    with torch.no_grad():
        eager = module(*inputs)
    assert not eager.isnan().any(), "the test expects eager PyTorch to give no NaN"
    if expect_zero_rows:
        assert torch.equal(eager[:, :, 3], torch.zeros_like(eager[:, :, 3])), "eager gives 0 for a hidden row"
    _, report, verification = compile_and_verify(module, inputs, expect_ops=[SDPA], full=True)
    assert verification.end_to_end_ok, str(verification)
    return report


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_boolean_mask_with_fully_masked_row_and_column(dtype):
    _check(Attention(), [*_qkv(dtype), _keep()])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_additive_minus_inf_mask_with_fully_masked_row(dtype):
    additive = torch.zeros(2, 1, L, S, dtype=dtype).masked_fill(~_keep(), float("-inf"))
    additive[:, :, 2, 4] = -3.0  # a finite bias beside the -inf entries
    _check(Attention(), [*_qkv(dtype), additive])


def test_causal_mask_combined_with_padding():
    """A causal mask AND a key-padding mask, where padded query rows see nothing at all."""
    causal = torch.ones(L, S, dtype=torch.bool).tril()
    padding = torch.ones(2, 1, 1, S, dtype=torch.bool)
    padding[1, :, :, 3:] = False
    keep = causal & padding
    keep[:, :, 3, :] = False  # a padded query row
    _check(Attention(), [*_qkv(torch.float32), keep])


@pytest.mark.parametrize("additive", [False, True])
def test_is_causal_together_with_a_mask(additive):
    """PyTorch's CPU kernels apply both: a key must be visible under the causal rule and the mask."""
    keep = _keep()
    mask = torch.zeros(keep.shape).masked_fill(~keep, float("-inf")) if additive else keep
    q, k, v = _qkv(torch.float32)
    both = F.scaled_dot_product_attention(q, k, v, attn_mask=keep & torch.ones(L, S, dtype=torch.bool).tril())
    try:
        eager = Attention(is_causal=True)(q, k, v, mask)
    except RuntimeError as exc:  # torch 2.14 refuses the combination: so must compiling it
        assert "is_causal" in str(exc), exc
        with pytest.raises(Exception, match="is_causal"):
            trtx.compile(Attention(is_causal=True).eval(), [q, k, v, mask], min_block_size=1, progress=False)
        return
    assert torch.allclose(eager, both), "PyTorch's semantics changed"  # torch 2.13's CPU kernels apply both
    _check(Attention(is_causal=True), [q, k, v, mask])


@pytest.mark.parametrize("kv_heads", [1, 2, 4])
def test_grouped_query_attention(kv_heads):
    report = _check(Attention(enable_gqa=True), [*_qkv(torch.float32, heads=4, kv_heads=kv_heads), _keep()])
    assert not report.fallback_ops


def test_grouped_query_attention_dynamic_batch_and_sequence():
    spec = dict(dim_names=("batch", None, "seq", None))
    inputs = [trtx.Input(min_shape=(1, h, 1, E), opt_shape=(2, h, 4, E), max_shape=(4, h, 16, E), **spec)
              for h in (4, 2, 2)]
    module = Attention(is_causal=True, enable_gqa=True)
    runs = [[torch.randn(b, h, n, E) for h in (4, 2, 2)] for b, n in ((1, 1), (3, 7), (4, 16))]
    compile_and_verify(module, inputs, run_inputs=runs, expect_ops=[SDPA], full=True)


def test_dynamic_sequence_with_fully_masked_rows():
    class Padded(nn.Module):
        def forward(self, q, keep):
            return F.scaled_dot_product_attention(q, q, q, attn_mask=keep[:, None, None, :])

    inputs = [trtx.Input(min_shape=(1, 2, 1, E), opt_shape=(2, 2, 4, E), max_shape=(4, 2, 16, E),
                         dim_names=("batch", None, "seq", None)),
              trtx.Input(min_shape=(1, 1), opt_shape=(2, 4), max_shape=(4, 16), dtype=torch.bool,
                         dim_names=("batch", "seq"))]
    keep = torch.ones(3, 7, dtype=torch.bool)
    keep[1] = False  # every key of batch 1 is padding: all its rows are hidden
    compile_and_verify(Padded(), inputs, run_inputs=[torch.randn(3, 2, 7, E), keep], expect_ops=[SDPA], full=True)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_softmax_of_all_minus_inf_rows_matches_eager(dtype):
    """Plain softmax has no safe variant in PyTorch: a row of -inf is NaN in eager, and in the engine."""
    class Softmax(nn.Module):
        def forward(self, x):
            return torch.softmax(x.masked_fill(x > 1.0, float("-inf")), dim=-1)

    x = torch.randn(3, 4, 6, dtype=dtype)
    x[1, 2] = 2.0
    expected = Softmax()(x)
    assert expected[1, 2].isnan().all() and not expected[0].isnan().any()
    compiled = compile_checked(Softmax(), [x], full=True)
    assert any("softmax" in op for op in compiled.compile_report.converted_op_counts), compiled.compile_report
    # The engine's check: reference executor against the same graph run eagerly, NaN where eager has NaN.
    # (No end-to-end check: verify's fp16 end-to-end comparison does not accept NaN == NaN today.)
    verification = trtx.verify(compiled, x)
    assert verification.ok and verification.engines, str(verification)


def _sdpa_mask(m, x):
    q = x.view(x.shape[0], x.shape[1], 2, 4).transpose(1, 2)
    mask = torch.ones(x.shape[1], x.shape[1], dtype=torch.bool).tril()
    return F.scaled_dot_product_attention(q, q * 0.5, q, attn_mask=mask, scale=0.3)


def _sdpa_float_mask(m, x):
    q = x.view(x.shape[0], x.shape[1], 2, 4).transpose(1, 2)
    bias = x[:, None, :, :1].transpose(-1, -2) * 0.1  # (B, 1, 1, S) additive mask
    return F.scaled_dot_product_attention(q, q, q, attn_mask=bias)


# name -> (function of (module, x), input kind, ops that must be converted); harness.op_case_tests
CASES = {
    "sdpa_causal": (lambda m, x: F.scaled_dot_product_attention(*(x.view(x.shape[0], x.shape[1], 2, 4)
                                                                   .transpose(1, 2),) * 3, is_causal=True), "seq",
                    [SDPA]),
    "sdpa_bool_mask": (_sdpa_mask, "seq", [SDPA]),
    "sdpa_float_mask": (_sdpa_float_mask, "seq", [SDPA]),
}

test_op_dynamic, test_op_static_fp32, test_op_bf16 = op_case_tests(CASES, bf16=["sdpa_causal"])


# name -> (fn, operand makers, converted op, operand positions that may be constant)
CONSTANTS = {
    "sdpa_mask": (lambda q, m: F.scaled_dot_product_attention(q, q, q, attn_mask=m),
                  [floats(1, 2, 4, 8), lambda dtype: torch.ones(4, 4, dtype=torch.bool).tril()],
                  SDPA, (1,)),
}

test_constant_operand = constant_operand_test(CONSTANTS)
