"""A compile whose engines come from the engine cache does not convert its partitions: the networks
are converted when something reads them (verify, the Debugger's layer lists), and are then the same
as a cold compile's (conversion/_lazy_network.py)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import torch_tensorrt_rtx as trtx
from torch_tensorrt_rtx.dynamo._debugger import LayerList
from torch_tensorrt_rtx.dynamo._engine_cache import SUFFIX, EngineCacheSession, EngineCacheWarning
from torch_tensorrt_rtx.dynamo.conversion import _lazy_network
from torch_tensorrt_rtx.dynamo.verification import VerificationUnavailableError

from tests.py.dynamo.test_engine_cache import cache_enabled  # noqa: F401 - a fixture (cache on; builds: conftest.py)


@pytest.fixture
def conversions(monkeypatch):
    """The partitions converted to a network, in order."""
    calls = []
    real = _lazy_network.build_network

    def counting(module, *args, **kwargs):
        calls.append(module)
        return real(module, *args, **kwargs)

    monkeypatch.setattr(_lazy_network, "build_network", counting)
    return calls


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.GELU(), torch.nn.Linear(32, 8), torch.nn.ReLU()).eval()


def _compile(cache_dir):
    """Two engines with GELU between them in PyTorch."""
    spec = trtx.Input(min_shape=(1, 16), opt_shape=(4, 16), max_shape=(8, 16))
    return trtx.compile(_model(), [spec], engine_cache_dir=cache_dir, progress=False, min_block_size=1,
                        torch_executed_ops={"aten::gelu"})


def _layers(compiled) -> dict:
    return {name: str(LayerList(source.network.network)) for name, source in compiled._engine_sources.items()}


def _engines(report) -> list:
    return [(e.name, e.converted_ops, e.engine_bytes, e.input_ranges) for e in report.engines]


def test_a_hit_converts_nothing_and_packages_the_same_program(tmp_path, conversions, builds):
    cold = _compile(tmp_path)
    assert len(conversions) == 2 and len(builds) == 2
    conversions.clear()
    warm = _compile(tmp_path)
    assert warm.compile_report.engine_cache_hits == 2 and len(builds) == 2
    assert conversions == [], "a compile whose engines were all in the cache converted a partition"
    assert warm.graph.python_code("self").src == cold.graph.python_code("self").src  # same specs, same engines
    assert _engines(warm.compile_report) == _engines(cold.compile_report)
    assert (warm.compile_report.fallback_ops, warm.compile_report.failed_nodes) == \
        (cold.compile_report.fallback_ops, cold.compile_report.failed_nodes)
    for name, source in warm._engine_sources.items():
        lazy = source.lazy_network
        assert not lazy.converted
        unconverted = (lazy.input_names, lazy.output_names, lazy.converted_ops)
        network = source.network  # converted now
        assert lazy.converted and unconverted == (network.input_names, network.output_names, network.converted_ops)
        assert len(conversions) == list(warm._engine_sources).index(name) + 1


def test_verify_after_a_hit_converts_then_gives_the_cold_compile_verdict(tmp_path, conversions):
    cold = _compile(tmp_path)
    warm = _compile(tmp_path)
    assert warm.compile_report.engine_cache_hits == 2
    conversions.clear()
    x = torch.randn(3, 16)
    cold_report, warm_report = trtx.verify(cold, x, reference_module=_model()), \
        trtx.verify(warm, x, reference_module=_model())
    assert len(conversions) == 2  # the warm compile's two networks, converted by verify
    assert warm_report.ok and str(warm_report) == str(cold_report)
    assert _layers(warm) == _layers(cold)
    assert len(conversions) == 2  # converted once


def test_a_damaged_entry_found_after_the_look_up_said_hit_is_converted_and_built(tmp_path, conversions, builds,
                                                                                monkeypatch):
    cold = _compile(tmp_path)
    for entry in Path(tmp_path).glob(f"*{SUFFIX}"):
        data = bytearray(entry.read_bytes())
        data[-1] ^= 0xFF  # the engine's last byte: only the checksum, read on the worker thread, finds it
        entry.write_bytes(data)
    said = []
    real_look_up = EngineCacheSession.look_up
    monkeypatch.setattr(EngineCacheSession, "look_up", lambda self, *a: said.append(real_look_up(self, *a)) or said[-1])
    conversions.clear()
    builds.clear()
    with pytest.warns(EngineCacheWarning, match="checksum"):
        warm = _compile(tmp_path)
    assert said == [True, True]
    assert warm.compile_report.engine_cache_hits == 0 and len(builds) == 2 and len(conversions) == 2
    assert all(source.lazy_network.converted for source in warm._engine_sources.values())
    x = torch.randn(5, 16)
    assert str(trtx.verify(warm, x)) == str(trtx.verify(cold, x))
    assert _compile(tmp_path).compile_report.engine_cache_hits == 2  # the rebuilt engines replaced the entries


def test_debugger_output_is_the_same_on_a_hit(tmp_path, conversions):
    with trtx.dynamo.Debugger(logging_dir=str(tmp_path / "cold")):
        _compile(tmp_path / "cache")
    conversions.clear()
    with trtx.dynamo.Debugger(logging_dir=str(tmp_path / "warm")):
        warm = _compile(tmp_path / "cache")
    assert warm.compile_report.engine_cache_hits == 2
    assert len(conversions) == 2  # the layer lists asked for the networks
    for name in ["lowered_graph.txt", "partitioned_graph.txt", "_run_on_trt_0_layers.txt", "_run_on_trt_1_layers.txt"]:
        cold_text = (tmp_path / "cold" / "compile_1" / name).read_text()
        assert cold_text and (tmp_path / "warm" / "compile_1" / name).read_text() == cold_text, name
    assert "2 TensorRT-RTX subgraph(s)" in (tmp_path / "warm" / "compile_1" / "compile_report.txt").read_text()


def test_keep_networks_false_keeps_no_network_on_a_hit(tmp_path, conversions):
    spec = trtx.Input(min_shape=(1, 16), opt_shape=(4, 16), max_shape=(8, 16))
    for _ in range(2):
        compiled = trtx.compile(_model(), [spec], engine_cache_dir=tmp_path, progress=False, min_block_size=1,
                                keep_networks=False)
    assert compiled.compile_report.engine_cache_hits == 1 and len(conversions) == 1
    with pytest.raises(VerificationUnavailableError, match="keep_networks=False"):
        trtx.verify(compiled, torch.randn(2, 16))


def test_a_refittable_hit_still_converts_for_its_weight_names(tmp_path, conversions, monkeypatch):
    """The refit weights' names and derived weights come out of conversion: a hit converts. (REFIT
    builds need a GPU: here the engine is built without the REFIT flag, which the packing never reads.)"""
    from torch_tensorrt_rtx.dynamo import _compiler

    real = _compiler.build_engine
    monkeypatch.setattr(_compiler, "build_engine", lambda network, caps, label, progress, settings, **rest:
                        real(network, caps, label=label, progress=progress, settings=None, **rest))
    spec = trtx.Input(min_shape=(1, 16), opt_shape=(4, 16), max_shape=(8, 16))
    cold, warm = (trtx.compile(_model(), [spec], engine_cache_dir=tmp_path, progress=False, min_block_size=1,
                               immutable_weights=False) for _ in range(2))
    assert warm.compile_report.engine_cache_hits == 1 and len(conversions) == 2
    assert warm._engine_sources["_run_on_trt_0"].lazy_network.converted
    assert warm.graph.python_code("self").src == cold.graph.python_code("self").src
    assert "_run_on_trt_0_weight_0" in warm.graph.python_code("self").src  # the weights are the engine's inputs
