"""Session-wide cache of compiled acceptance models: each (model, precision, entry point) is
compiled once per pytest session and shared by every test that needs it.

Under pytest-xdist (scripts/test.sh: -n 2 --dist loadgroup) every test of one model carries
xdist_group(<model>), so all of them run on one worker, which builds the model once (and each
compiled model is used by one test only, so none is compiled twice in a session); xdist's
loadgroup sends the larger groups first, so the model groups start while the one-test units of
the rest of the suite fill in the gaps."""
from __future__ import annotations

import warnings
from typing import Any, Dict, Optional, Tuple

import pytest
import torch

import torch_tensorrt_rtx as trtx

from tests.py.models.zoo import BUILDERS, MORE, Case

ALL = {**BUILDERS, **MORE}
PRECISIONS = {"fp32": frozenset(), "fp16": frozenset({torch.float16})}


# Before xdist's own hook, which appends the group to the node id.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/py/models/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.models)
            name = model_of(item)
            if name is not None:
                item.add_marker(pytest.mark.xdist_group(name))


def model_of(item) -> Optional[str]:
    """The zoo model of a test parametrized by `name` (tests that use one model by name, such as
    the BERT torch.compile(dynamic=True) test, carry their xdist_group mark themselves)."""
    callspec = getattr(item, "callspec", None)
    name = callspec.params.get("name") if callspec is not None else None
    return name if name in ALL else None


class Zoo:
    def __init__(self) -> None:
        self.cases: Dict[str, Case] = {}
        self.compiled: Dict[Tuple[str, str, str], Any] = {}

    def case(self, name: str) -> Case:
        if name not in self.cases:
            torch.manual_seed(0)
            self.cases[name] = ALL[name]()
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
