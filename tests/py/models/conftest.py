"""Session-wide cache of compiled acceptance models: each (model, precision, entry point) is
compiled once per pytest session and shared by every test that needs it.

Under pytest-xdist (scripts/test.sh: -n 2 --dist loadgroup) all tests of one model run on one
worker, which builds the model once (each compiled model is used by one test, so none is compiled
twice): tests/py/conftest.py schedules by tests/py/models/groups.py. Not by xdist_group marks: xdist
3.8.0 groups them by renaming each item's node id (`item._nodeid`), which pytest 9.2 no longer
reads, so under pytest 9.2 every marked test would still be a work unit of its own."""
from __future__ import annotations

import warnings
from typing import Any, Dict, Tuple

import pytest
import torch

import torch_tensorrt_rtx as trtx

from tests.py.models.zoo import ALL_MODELS, Case

PRECISIONS = {"fp32": frozenset(), "fp16": frozenset({torch.float16})}


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/py/models/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.models)


class Zoo:
    def __init__(self) -> None:
        self.cases: Dict[str, Case] = {}
        self.compiled: Dict[Tuple[str, str, str], Any] = {}

    def case(self, name: str) -> Case:
        if name not in self.cases:
            torch.manual_seed(0)
            self.cases[name] = ALL_MODELS[name]()
        return self.cases[name]

    def aot(self, name: str, precision: str):
        key = (name, precision, "aot")
        if key not in self.compiled:
            case = self.case(name)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # fallback is asserted from the report
                self.compiled[key] = trtx.compile(case.model, case.args or None, kwarg_inputs=case.kwargs or None,
                                                  progress=False, enabled_precisions=PRECISIONS[precision])
        return self.compiled[key]

    def torch_compile(self, name: str, precision: str):
        """torch.compile(backend="tensorrt_rtx") at one static size, and its compile report."""
        key = (name, precision, "torch.compile")
        if key not in self.compiled:
            case = self.case(name)
            torch._dynamo.reset()
            compiled = torch.compile(case.model, backend="tensorrt_rtx", dynamic=False,
                                     options={"progress": False, "enabled_precisions": PRECISIONS[precision]})
            args, kwargs = case.make(*case.sizes[1])
            with warnings.catch_warnings(), trtx.compile_reports() as reports:
                warnings.simplefilter("ignore")
                verification = trtx.verify(compiled, *args, reference_module=case.model, **kwargs)
            self.compiled[key] = (verification, reports)
        return self.compiled[key]


@pytest.fixture(scope="session")
def zoo() -> Zoo:
    return Zoo()
