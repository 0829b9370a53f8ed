"""Runtime settings: validation, scoping, restoration, thread isolation, warnings."""
from __future__ import annotations

import threading

import pytest

from torch_tensorrt_rtx import runtime
from torch_tensorrt_rtx.runtime import (CUDA_GRAPH_STRATEGIES, KERNEL_STRATEGIES, RuntimeSettings,
                                        current_settings)
from torch_tensorrt_rtx.runtime.runtime_settings import TRT_ENUMS, warn_if_incompatible


def test_defaults():
    s = current_settings()
    assert (s.cache_path, s.kernel_strategy, s.cuda_graph_strategy, s.allocation_strategy) == (
        runtime.DEFAULT_CACHE_PATH, "lazy", "disabled", "static")
    assert runtime.DEFAULT_CACHE_PATH == ""  # "" names no file: the per-user default


def test_cache_path_with_a_nul_is_a_clear_error():
    with pytest.raises(ValueError, match="NUL"):
        runtime.RuntimeSettings(cache_path="/tmp/a\0b")


@pytest.mark.parametrize("key, bad, valid", [
    ("kernel_strategy", "eagre", KERNEL_STRATEGIES),
    ("cuda_graph_strategy", "per_layer", CUDA_GRAPH_STRATEGIES),
    ("allocation_strategy", 3, ("static", "on_profile_change", "user_managed")),
])
def test_unknown_strategy_names_list_valid_ones(key, bad, valid):
    with pytest.raises(ValueError) as info:
        with runtime.settings(**{key: bad}):
            pass
    for name in valid:
        assert repr(name) in str(info.value)
    assert repr(bad) in str(info.value)
    assert current_settings() == RuntimeSettings()


def test_unknown_setting_keyword_is_a_type_error():
    with pytest.raises(TypeError, match="kernel_strategie"):
        RuntimeSettings().replace(kernel_strategie="eager")


def test_names_are_case_insensitive_and_map_to_trt_enums():
    trt = pytest.importorskip("tensorrt_rtx")
    s = RuntimeSettings(kernel_strategy="EAGER", cuda_graph_strategy="whole_graph_capture",
                        allocation_strategy="on_profile_change")
    assert s.kernel_strategy == "eager"
    assert s.trt_enum("kernel_strategy", trt) == trt.DynamicShapesKernelSpecializationStrategy.EAGER
    assert s.trt_enum("cuda_graph_strategy", trt) == trt.CudaGraphStrategy.WHOLE_GRAPH_CAPTURE
    for setting, enum_name in TRT_ENUMS.items():  # every strategy name exists in tensorrt_rtx
        for name in {
                "kernel_strategy": KERNEL_STRATEGIES,
                "cuda_graph_strategy": CUDA_GRAPH_STRATEGIES,
                "allocation_strategy": runtime.ALLOCATION_STRATEGIES}[setting]:
            assert hasattr(getattr(trt, enum_name), name.upper()), (enum_name, name)


def test_nested_scopes_restore_previous_settings_even_on_error(tmp_path):
    with runtime.settings(kernel_strategy="eager", cache_path=tmp_path / "a") as outer:
        assert current_settings() is outer and outer.cache_path == str(tmp_path / "a")
        with pytest.raises(KeyError):
            with runtime.settings(kernel_strategy="none"):
                assert current_settings().kernel_strategy == "none"
                assert current_settings().cache_path == str(tmp_path / "a")  # inherited
                raise KeyError("boom")
        assert current_settings().kernel_strategy == "eager"
    assert current_settings() == RuntimeSettings()


def test_scopes_are_per_thread():
    seen = {}
    entered, release = threading.Event(), threading.Event()

    def other():
        entered.wait()
        seen["other"] = current_settings().kernel_strategy
        release.set()

    t = threading.Thread(target=other)
    t.start()
    with runtime.settings(kernel_strategy="eager"):
        entered.set()
        release.wait(5)
    t.join()
    assert seen["other"] == "lazy"


def test_incompatible_combination_warns_only_when_dynamic():
    bad = RuntimeSettings(cuda_graph_strategy="whole_graph_capture", kernel_strategy="lazy")
    with pytest.warns(RuntimeWarning, match="whole_graph_capture.*lazy"):
        assert warn_if_incompatible(bad, True, "m")
    assert not warn_if_incompatible(bad, False, "m")
    assert not warn_if_incompatible(bad.replace(kernel_strategy="eager"), True, "m")
