"""The shared definitions files: parsed once, used by the record and the settings."""
import pytest

from torch_tensorrt_rtx import runtime
from torch_tensorrt_rtx.runtime.definitions import (STRATEGIES, STRATEGIES_FILE, DefinitionError,
                                                     parse_strategies)
from torch_tensorrt_rtx.runtime.engine_record import PACK_MAGIC


def test_strategy_names_come_from_the_file():
    lines = [l.split() for l in STRATEGIES_FILE.read_text().splitlines() if l.startswith("strategy ")]
    assert {words[1]: tuple(words[3:]) for words in lines} == {
        "kernel_strategy": runtime.KERNEL_STRATEGIES,
        "cuda_graph_strategy": runtime.CUDA_GRAPH_STRATEGIES,
        "allocation_strategy": runtime.ALLOCATION_STRATEGIES,
    }


def test_defaults_are_the_first_names():
    defaults = runtime.RuntimeSettings()
    for setting, strategy in STRATEGIES.items():
        assert getattr(defaults, setting) == strategy.names[0]


def test_pack_magic_comes_from_the_layout():
    assert PACK_MAGIC == runtime.LAYOUT.pack_magic and len(PACK_MAGIC) == 8
    assert bytes(runtime.EngineRecord.new(b"x", name="n", input_names=["a"], output_names=["b"])
                 .pack()[:8]) == PACK_MAGIC


@pytest.mark.parametrize("text, message", [
    ("", "defines no strategy"),
    ("strategy kernel_strategy Enum\n", "expected 'strategy SETTING"),
    ("stratgy kernel_strategy Enum lazy\n", "expected 'strategy SETTING"),
    ("strategy a E x\nstrategy a E y\n", "duplicate"),
    ("strategy a E x x\n", "duplicate"),
])
def test_bad_strategies_text_is_rejected(text, message):
    with pytest.raises(DefinitionError, match=message):
        parse_strategies(text)
