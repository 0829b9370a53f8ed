"""The precision pass's cast fake tensors are what `.to(dtype)` gives, made once per distinct layout."""
import pytest
import torch
from torch._dynamo.source import ConstantSource
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.fx.experimental.symbolic_shapes import DimDynamic, ShapeEnv, StatelessSymbolicContext

from torch_tensorrt_rtx.dynamo.lowering._precision import _FakeCasts


def _fakes():
    mode = FakeTensorMode(shape_env=ShapeEnv())
    symbolic = mode.from_tensor(torch.empty(4, 3, 8, 8))  # every size a symbol
    with mode:
        static = torch.empty(2, 5)
    context = StatelessSymbolicContext(dynamic_sizes=[DimDynamic.DYNAMIC, DimDynamic.STATIC, DimDynamic.DYNAMIC])
    dynamic = mode.from_tensor(torch.empty(4, 6, 16), source=ConstantSource("x"), symbolic_context=context)
    with mode:
        yield "static", static
        yield "all sizes symbolic", symbolic
        yield "dynamic sizes", dynamic
        yield "dynamic, transposed (dense, not contiguous)", dynamic.transpose(1, 2)
        yield "dynamic, a size-1 dim", dynamic[:, :1]
        yield "dynamic, channels last", dynamic.unsqueeze(-1).contiguous(memory_format=torch.channels_last)
        yield "expanded (overlapping)", dynamic[:, :1].expand(-1, 6, -1)
        yield "sliced (not dense)", dynamic[:, :, ::2]
        weight = torch.nn.Parameter(torch.empty(3, 5))
        yield "requires grad", mode.from_tensor(weight)


@pytest.mark.parametrize("grad", [True, False])
def test_casts_match_to(grad):
    casts = _FakeCasts()
    with torch.set_grad_enabled(grad):
        for label, val in _fakes():
            for dtype in (torch.float16, torch.bfloat16):
                made = casts(val, dtype)
                with val.fake_mode:
                    expected = val.to(dtype)
                assert (made.dtype, made.device, made.requires_grad) == (
                    expected.dtype, expected.device, expected.requires_grad), label
                assert [str(s) for s in made.shape] == [str(s) for s in expected.shape], label
                assert [str(s) for s in made.stride()] == [str(s) for s in expected.stride()], label
                assert made.fake_mode is val.fake_mode, label
                back = casts(made, val.dtype)  # the way back may be answered by `val` itself
                with val.fake_mode:
                    expected = made.to(val.dtype)
                assert (back.dtype, back.device, back.requires_grad) == (
                    expected.dtype, expected.device, expected.requires_grad), label
                assert [str(s) for s in back.shape] == [str(s) for s in expected.shape], label
                assert [str(s) for s in back.stride()] == [str(s) for s in expected.stride()], label
                assert back.storage_offset() == 0, label


def test_one_fake_tensor_per_layout():
    mode = FakeTensorMode(shape_env=ShapeEnv())
    with mode:
        a, b, c = torch.empty(2, 3), torch.empty(2, 3), torch.empty(3, 2)
    casts = _FakeCasts()
    assert casts(a, torch.float16) is casts(b, torch.float16)
    assert casts(a, torch.float16) is not casts(c, torch.float16)
    assert casts(a, torch.float16) is not casts(a, torch.bfloat16)
    assert casts.with_dtype((a, torch.empty(1, dtype=torch.int64, device="meta")), torch.float16)[0].dtype == torch.float16


def test_contiguous_layouts_skip_the_symbolic_density_check(monkeypatch):
    from torch_tensorrt_rtx.dynamo.lowering import _precision

    checked = []
    real = _precision.is_non_overlapping_and_dense_or_false
    monkeypatch.setattr(_precision, "is_non_overlapping_and_dense_or_false", lambda t: checked.append(t) or real(t))
    fakes = dict(_fakes())
    casts = _FakeCasts()
    casts(fakes["dynamic sizes"], torch.float16)
    casts(fakes["all sizes symbolic"], torch.float16)
    assert checked == []
    casts(fakes["dynamic, transposed (dense, not contiguous)"], torch.float16)
    assert len(checked) == 1


def test_the_way_back_is_the_source_itself_when_plain():
    mode = FakeTensorMode(shape_env=ShapeEnv())
    with mode:
        a = torch.empty(2, 3)
        offset = torch.empty(4, 3)[2:]  # same layout, storage offset 6: not what a cast makes
    constant = mode.from_tensor(torch.ones(2, 3))
    constant.constant = torch.ones(2, 3)  # a folded weight's value rides on its fake tensor
    casts = _FakeCasts()
    assert casts(casts(a, torch.float16), torch.float32) is a
    for val in (offset, constant):
        fresh = _FakeCasts()
        back = fresh(fresh(val, torch.float16), torch.float32)
        assert back is not val and back.storage_offset() == 0 and getattr(back, "constant", None) is None
