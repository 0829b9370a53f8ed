"""The decomposition table is rebuilt when an operator it could decompose is defined, and only then."""
import torch

from torch_tensorrt_rtx.dynamo.lowering import _decompositions
from torch_tensorrt_rtx.dynamo.lowering._decompositions import decomposition_table


def _builds() -> int:
    return _decompositions._table_without.cache_info().misses


def test_a_new_composite_op_is_in_the_next_table():
    decomposition_table()
    lib = torch.library.Library("trtx_table_test_cia", "DEF")
    try:
        lib.define("double_it(Tensor x) -> Tensor")
        lib.impl("double_it", lambda x: x + x, "CompositeImplicitAutograd")
        assert torch.ops.trtx_table_test_cia.double_it.default in decomposition_table()
    finally:
        lib._destroy()


def test_a_new_op_without_a_composite_kernel_does_not_rebuild_the_table():
    first = decomposition_table()
    builds = _builds()
    lib = torch.library.Library("trtx_table_test_plain", "DEF")
    try:
        lib.define("plain(Tensor x) -> Tensor")
        lib.impl("plain", lambda x: x.clone(), "CPU")
        again = decomposition_table()
        assert _builds() == builds
        assert again == first and again is not first  # the same entries, in a fresh dict
    finally:
        lib._destroy()


def test_a_composite_op_going_away_rebuilds_the_table():
    lib = torch.library.Library("trtx_table_test_gone", "DEF")
    lib.define("gone(Tensor x) -> Tensor")
    lib.impl("gone", lambda x: x + x, "CompositeImplicitAutograd")
    gone = torch.ops.trtx_table_test_gone.gone.default
    assert gone in decomposition_table()
    builds = _builds()
    lib._destroy()
    assert gone not in decomposition_table()
    assert _builds() == builds + 1


def test_a_plain_op_going_away_does_not_rebuild_the_table():
    lib = torch.library.Library("trtx_table_test_plain_gone", "DEF")
    lib.define("plain_gone(Tensor x) -> Tensor")
    lib.impl("plain_gone", lambda x: x.clone(), "CPU")
    decomposition_table()
    builds = _builds()
    lib._destroy()
    decomposition_table()
    assert _builds() == builds


def test_a_composite_kernel_added_to_an_op_seen_before_is_in_the_next_table():
    """The op is defined (and seen by a table build) before its composite kernel is registered."""
    lib = torch.library.Library("trtx_table_test_late_cia", "DEF")
    try:
        lib.define("late(Tensor x) -> Tensor")
        late = torch.ops.trtx_table_test_late_cia.late.default
        assert late not in decomposition_table()
        lib.impl("late", lambda x: x + x, "CompositeImplicitAutograd")
        assert late in decomposition_table()
    finally:
        lib._destroy()
