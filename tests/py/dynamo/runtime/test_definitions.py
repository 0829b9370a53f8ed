"""The shared definitions files: parsed once, used by the record and the settings."""
import pytest

from torch_tensorrt_rtx.runtime.definitions import CACHE_PROTOCOL_FILE

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


def test_cache_protocol_constants_come_from_the_file():
    from torch_tensorrt_rtx.runtime import runtime_cache_file as store
    from torch_tensorrt_rtx.runtime.definitions import CACHE_PROTOCOL

    assert store.LOCK_SUFFIX == CACHE_PROTOCOL.lock_suffix == ".lock"
    assert store.DEFAULT_LOCK_TIMEOUT_S == CACHE_PROTOCOL.lock_timeout_ms / 1000 == 10.0
    assert store.LOCK_POLL_INTERVAL_S == 0.05
    assert store.default_cache_path(create_dir=False).parts[-2:] == (CACHE_PROTOCOL.default_cache_dir,
                                                                     CACHE_PROTOCOL.default_cache_file)


@pytest.mark.parametrize("text, message", [
    ("lock_suffix .lock\n", "missing lock_timeout_ms"),
    ("lock_suffix .lock\nlock_suffix .lck\n", "repeated"),
    ("lock_sufix .lock\n", "unknown"),
    (CACHE_PROTOCOL_FILE.read_text().replace("lock_timeout_ms 10000", "lock_timeout_ms ten"),
     "whole numbers"),
    (CACHE_PROTOCOL_FILE.read_text().replace("container_magic TRTXRTC1", "container_magic LONGMAGIC"),
     "8 ASCII bytes"),
])
def test_bad_cache_protocol_text_is_rejected(text, message):
    from torch_tensorrt_rtx.runtime.definitions import parse_cache_protocol

    with pytest.raises(DefinitionError, match=message):
        parse_cache_protocol(text)
