"""The xdist work units of the acceptance models (groups.py): every test that builds a zoo model
is grouped under that model, and nothing else is."""
from __future__ import annotations

import pytest

from tests.py.models.groups import model_group
from tests.py.models.zoo import ALL_MODELS


def test_matrix_node_ids_group_by_model():
    for name in ALL_MODELS:
        for test in ("test_compile_dynamic_and_verify_at_three_sizes", "test_torch_compile_static"):
            for precision in ("fp32", "fp16"):
                assert model_group(f"tests/py/models/test_models.py::{test}[{name}-{precision}]") == name
    assert model_group("tests/py/models/test_models.py::test_torch_compile_static[resnet18-fp16]") == "resnet18"
    assert model_group("tests/py/models/test_models.py::test_torch_compile_static[resnet18d-fp16]") == "resnet18d"
    assert model_group("tests/py/models/test_models.py::test_torch_compile_static[not_a_model-fp16]") is None
    assert model_group("tests/py/dynamo/test_x.py::test_y[bert-fp32]") is None


def test_every_collected_test_that_builds_a_zoo_model_has_its_group(request):
    items = [item for item in request.session.items
             if "tests/py/models/" in item.nodeid and "zoo" in getattr(item, "fixturenames", ())]
    if not any(item.nodeid.endswith("]") for item in items):
        pytest.skip("no matrix test selected in this run")
    missing = [item.nodeid for item in items if model_group(item.nodeid) is None]
    assert not missing, f"tests that build a zoo model without a group in groups.py: {missing}"
