"""Both runtimes report the settings an engine runs with, a disabled cache included: the C++
``Engine.get_runtime_settings()`` and the Python ``TRTModule.effective_settings()`` name the
same ``RuntimeSettings`` for the same requests."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from torch_tensorrt_rtx.runtime import _native
from torch_tensorrt_rtx.runtime import EngineRecord, RuntimeSettings, TRTModule

pytestmark = pytest.mark.skipif(not _native.runtime_available(),
                                reason="C++ runtime not built: run scripts/build_native.sh")

CASES = {
    "defaults": RuntimeSettings(),
    "cache_disabled": RuntimeSettings(cache_path=None, kernel_strategy="none"),
    "explicit": RuntimeSettings(cache_path="/data/rtx.cache", kernel_strategy="eager",
                                cuda_graph_strategy="whole_graph_capture",
                                allocation_strategy="user_managed"),
}


@pytest.mark.parametrize("settings", CASES.values(), ids=CASES.keys())
def test_cxx_engine_and_python_module_report_the_same_settings(settings):
    record = EngineRecord.new(b"not-an-engine", name="blk0", input_names=["x"], output_names=["y"])
    engine = torch.classes.tensorrt.Engine(record.to_list())
    engine.set_runtime_settings(_native.settings_entries(dataclasses.asdict(settings)))
    entries = list(engine.get_runtime_settings())
    assert ("cache_disabled" in entries) == (settings.cache_path is None), entries
    assert _native.settings_from_entries(entries) == settings

    module = TRTModule(record)
    module.set_runtime_settings(**dataclasses.asdict(settings))
    assert module.effective_settings() == settings


def test_a_disabled_cache_is_not_reported_as_the_default_path():
    record = EngineRecord.new(b"e", name="blk0", input_names=["x"], output_names=["y"])
    engine = torch.classes.tensorrt.Engine(record.to_list())
    engine.set_runtime_settings(["cache_disabled"])
    disabled = list(engine.get_runtime_settings())
    engine.set_runtime_settings(["cache_path="])
    assert disabled != list(engine.get_runtime_settings())
    assert "cache_disabled" in disabled and "cache_path=" in list(engine.get_runtime_settings())
