"""Contract tests: the tensorrt_rtx test double (trt_double.py) against the real module.

Forward: everything the double offers exists in the real ``tensorrt_rtx`` with a compatible
signature (parsed from its pybind docstrings) and the same enum values.
Reverse: every tensorrt_rtx member the Python runtime touches (found by scanning its source
with ``ast``) exists in the double and in the real module.
Both checks are shown to fail on deliberately wrong inputs.
"""
from __future__ import annotations

import ast
import enum
import sys
import textwrap
from pathlib import Path

import pytest

import torch_tensorrt_rtx.runtime as runtime_pkg
from torch_tensorrt_rtx.runtime.definitions import STRATEGIES

trt = pytest.importorskip("tensorrt_rtx")
sys.path.insert(0, str(Path(__file__).parent))
import trt_double  # noqa: E402
from api_contract import (DoubleApi, double_mismatches, missing_members,  # noqa: E402
                          normalise_type, parse_pybind_signatures)

RUNTIME_DIR = Path(runtime_pkg.__file__).parent
# The runtime's source files that talk to tensorrt_rtx, and in each, which expressions hold
# which tensorrt_rtx object ("module" = the tensorrt_rtx module itself).
RUNTIME_SOURCES = {
    "trt_module.py": {
        "api": "module", "api.Logger": "Logger", "runtime": "Runtime", "engine": "ICudaEngine",
        "self._engine": "ICudaEngine", "config": "IRuntimeConfig", "cache": "IRuntimeCache",
        "self._runtime_cache": "IRuntimeCache", "context": "IExecutionContext",
        "self._context": "IExecutionContext", "self._trt_runtime": "Runtime",
        "trt_dtype": "DataType",
    },
    "engine_record.py": {
        "trt_api": "module", "trt_runtime": "Runtime",
        "trt_api.EngineInvalidityDiagnostics": "EngineInvalidityDiagnostics",
    },
    "runtime_settings.py": {"trt_api": "module"},
    "output_allocation.py": {"api": "module", "context": "IExecutionContext"},
    "refit.py": {"api": "module", "api.Logger": "Logger", "refitter": "Refitter", "engine": "ICudaEngine"},
}
# Receivers in those files that are not tensorrt_rtx objects although they use a name the
# real API also has (e.g. a record's ``name``, torch dtypes, a ContextVar's ``reset``).
NOT_TENSORRT = {"self", "self.record", "record", "torch", "f", "_current", "s", "t", "out", "var", "host", "weight"}
_API_CLASSES = ("Runtime", "ICudaEngine", "IRuntimeConfig", "IRuntimeCache", "IExecutionContext",
                "Logger", "Refitter", "EngineInvalidityDiagnostics")


def describe_double(module) -> DoubleApi:
    """The double's API, with one live object of each class (a tiny engine's object graph)."""
    api = module.TrtDouble()
    logger = api.Logger()
    runtime = api.Runtime(logger)
    engine = runtime.deserialize_cuda_engine(module.make_engine_bytes({"x": ((1, 4), (2, 4), (8, 4))}, ["y"]))
    config = engine.create_runtime_config()
    cache = config.create_runtime_cache()
    context = engine.create_execution_context(config)
    classes = {n: v for n, v in vars(module).items()
               if isinstance(v, type) and v.__module__ == module.__name__ and n != "TrtDouble"}
    return DoubleApi(
        module_names={n: v for n, v in vars(module.TrtDouble).items()
                      if not n.startswith("_") and n not in module.DOUBLE_ONLY["TrtDouble"]},
        classes=classes,
        instances={"Logger": logger, "Runtime": runtime, "ICudaEngine": engine, "IRuntimeConfig": config,
                   "IRuntimeCache": cache, "IExecutionContext": context},
        double_only=module.DOUBLE_ONLY)


# -- reverse direction: what the runtime uses ----------------------------------------------------

def _real_api_names(real) -> set[str]:
    names = {n for n in dir(real) if not n.startswith("_")}
    for cls in _API_CLASSES:
        names |= {n for n in dir(getattr(real, cls)) if not n.startswith("_")}
    return names


def scan_uses(source: str, receivers: dict[str, str], real) -> tuple[dict[str, set], set, list[str]]:
    """(class -> member names used, (class, name) pairs assigned, unclassified uses)."""
    uses: dict[str, set] = {}
    assigned: set = set()
    unclassified = []
    api_names = _real_api_names(real)
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute):
            receiver, attr = ast.unparse(node.value), node.attr
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr"
              and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant)
              and isinstance(node.args[1].value, str)):
            receiver, attr = ast.unparse(node.args[0]), node.args[1].value
        else:
            continue
        if receiver in receivers:
            cls = receivers[receiver]
            uses.setdefault(cls, set()).add(attr)
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                assigned.add((cls, attr))
        elif attr in api_names and receiver not in NOT_TENSORRT and not attr.startswith("_"):
            unclassified.append(f"{receiver}.{attr} (line {node.lineno})")
    return uses, assigned, unclassified


def runtime_api_uses(real) -> tuple[dict[str, set], set, list[str]]:
    uses: dict[str, set] = {}
    assigned: set = set()
    unclassified = []
    for name, receivers in RUNTIME_SOURCES.items():
        u, a, x = scan_uses((RUNTIME_DIR / name).read_text(), receivers, real)
        for cls, names in u.items():
            uses.setdefault(cls, set()).update(names)
        assigned |= a
        unclassified += [f"{name}: {item}" for item in x]
    # runtime_settings.trt_enum looks the strategy enums up by name from the one definition, and
    # RuntimeSettings.apply_strategies hands each to IRuntimeConfig by its trt_setter.
    for strategy in STRATEGIES.values():
        uses["module"].add(strategy.trt_enum)
        uses.setdefault(strategy.trt_enum, set()).update(n.upper() for n in strategy.names)
        uses.setdefault("IRuntimeConfig", set()).add(strategy.trt_setter)
        if not strategy.trt_setter.startswith("set_"):
            assigned.add(("IRuntimeConfig", strategy.trt_setter))
    return uses, assigned, unclassified


# -- the contract on the real double -------------------------------------------------------------

def test_double_matches_the_real_module():
    problems = double_mismatches(describe_double(trt_double), trt)
    assert not problems, "the test double differs from tensorrt_rtx " + trt.__version__ + ":\n" + \
        "\n".join(problems)


def test_every_member_the_runtime_uses_exists_in_the_double_and_the_real_module():
    uses, _, _ = runtime_api_uses(trt)
    assert {"ICudaEngine", "IRuntimeConfig", "IRuntimeCache", "IExecutionContext"} <= set(uses)
    assert "execute_async_v3" in uses["IExecutionContext"]  # the scan really sees the runtime
    problems = missing_members(describe_double(trt_double), trt, uses)
    assert not problems, "\n".join(problems)


def test_every_tensorrt_name_in_the_runtime_is_on_a_known_receiver():
    _, _, unclassified = runtime_api_uses(trt)
    assert not unclassified, (
        "these attribute uses in the runtime have tensorrt_rtx names but a receiver the contract "
        "test does not know; add the receiver to RUNTIME_SOURCES (a tensorrt_rtx object) or to "
        "NOT_TENSORRT:\n" + "\n".join(unclassified))


def test_properties_the_runtime_assigns_are_settable_in_the_real_module():
    _, assigned, _ = runtime_api_uses(trt)
    assert ("IRuntimeConfig", "cuda_graph_strategy") in assigned
    for cls, name in sorted(assigned):
        prop = getattr(getattr(trt, cls), name)
        assert isinstance(prop, property) and prop.fset is not None, \
            f"the runtime assigns tensorrt_rtx.{cls}.{name}, which the real module cannot set ({prop!r})"


def test_strategy_names_map_to_real_enum_members_with_the_doubles_values():
    for setting, strategy in STRATEGIES.items():
        real_enum, double_enum = getattr(trt, strategy.trt_enum), getattr(trt_double, strategy.trt_enum)
        for name in strategy.names:
            assert int(real_enum.__members__[name.upper()]) == double_enum[name.upper()].value, \
                f"{setting} {name!r}: real {real_enum.__members__[name.upper()]!r} vs double " \
                f"{double_enum[name.upper()]!r}"


# -- the checks can fail -------------------------------------------------------------------------

def test_parser_reads_overloads_defaults_and_normalises_types():
    doc = trt.ICudaEngine.create_execution_context.__doc__
    overloads = parse_pybind_signatures(doc, "create_execution_context")
    assert [o.params for o in overloads] == [(("strategy", True),), (("runtime_config", True),)]
    assert {o.returns for o in overloads} == {"IExecutionContext"}
    (cache,) = parse_pybind_signatures(trt.IRuntimeConfig.set_runtime_cache.__doc__, "set_runtime_cache")
    assert cache.params == (("cache", True),) and cache.returns == "bool"
    assert normalise_type("list[tensorrt_rtx_bindings.tensorrt_rtx.Dims]") == "list[shape]"
    assert normalise_type("ICudaEngine | None") == normalise_type("nvinfer1::ICudaEngine") == "ICudaEngine"


def _wrong_double() -> DoubleApi:
    class CudaGraphStrategy(enum.Enum):
        DISABLED = 0
        WHOLE_GRAPH_CAPTURE = 2  # wrong value

    class IRuntimeCache:
        def serialize(self) -> int:  # wrong return type
            return 0

        def deserialize(self, data) -> bool:  # wrong parameter name (real: blob)
            return True

        def merge(self, other) -> bool:  # does not exist in 1.7
            return True

    class IRuntimeConfig:
        def set_runtime_cache(self, cache) -> bool:  # real has a default
            return True

        def __init__(self):
            self.kernel_strategy = None  # a plain attribute the real class lacks

    class Logger:
        def __init__(self, severity=2):  # real: min_severity
            pass

    def Runtime(self, logger, flags):  # noqa: N802 - one parameter too many
        return None

    return DoubleApi(
        module_names={"CudaGraphStrategy": CudaGraphStrategy, "Logger": Logger, "Runtime": Runtime,
                      "Merger": IRuntimeCache},
        classes={"IRuntimeCache": IRuntimeCache, "IRuntimeConfig": IRuntimeConfig, "Logger": Logger},
        instances={"IRuntimeConfig": IRuntimeConfig()},
        double_only={"IRuntimeCache": frozenset({"serialize"})})


def test_a_wrong_double_is_reported_naming_both_sides():
    problems = "\n".join(double_mismatches(_wrong_double(), trt))
    expected = [
        "CudaGraphStrategy.WHOLE_GRAPH_CAPTURE: double value 2 != real value 1",
        "tensorrt_rtx.IRuntimeCache.deserialize: signature differs",
        "tensorrt_rtx.IRuntimeCache.merge: the double has it",
        "tensorrt_rtx.IRuntimeConfig.set_runtime_cache: signature differs",
        "tensorrt_rtx.IRuntimeConfig.kernel_strategy: attribute of the double's objects",
        "tensorrt_rtx.Logger(...): signature differs",
        "tensorrt_rtx.Runtime(...): signature differs",
        "tensorrt_rtx.Merger: the double has it; the real module does not",
        "tensorrt_rtx.IRuntimeCache.serialize: declared a double-only test hook",
    ]
    for text in expected:
        assert text in problems, f"not reported: {text}\nreported:\n{problems}"
    deserialize = next(p for p in problems.splitlines() if ".deserialize:" in p)
    assert "'data'" in deserialize and "blob" in deserialize  # both sides named
    logger = next(p for p in problems.splitlines() if "Logger(...)" in p)
    assert "severity" in logger and "min_severity" in logger


def test_a_wrong_return_type_is_reported():
    class IRuntimeCache:
        def serialize(self) -> int:
            return 0
    api = DoubleApi({}, {"IRuntimeCache": IRuntimeCache}, {}, {})
    (problem,) = double_mismatches(api, trt)
    assert "returns int" in problem and "returns buffer" in problem


def test_a_runtime_use_missing_from_double_or_real_is_reported():
    source = textwrap.dedent("""
        def run(engine, context, widget):
            engine.get_tensor_nme(0)          # a typo: in neither
            context.execute_v2([])            # real, but the double lacks it
            widget.num_io_tensors             # a tensorrt_rtx name on an unknown receiver
    """)
    uses, _, unclassified = scan_uses(source, {"engine": "ICudaEngine", "context": "IExecutionContext"}, trt)
    problems = missing_members(describe_double(trt_double), trt, uses)
    assert "runtime uses ICudaEngine.get_tensor_nme: missing from the real tensorrt_rtx" in problems
    assert "runtime uses ICudaEngine.get_tensor_nme: missing from the test double" in problems
    assert "runtime uses IExecutionContext.execute_v2: missing from the test double" in problems
    assert not any("execute_v2: missing from the real" in p for p in problems)
    assert unclassified == ["widget.num_io_tensors (line 5)"]



# -- failure conventions that the real module shows without a GPU -------------------------------

@pytest.mark.parametrize("blob", [b"\x00" * 4096, b"not an engine", b"DBLENG0"], ids=["zeros", "text", "short-magic"])
def test_bad_engine_bytes_are_reported_alike(blob):
    """The double claims the real failure conventions: a malformed engine is INVALID with the
    MALFORMED_ENGINE diagnostic, and deserialize_cuda_engine returns None instead of raising."""
    real_rt = trt.Runtime(trt.Logger(trt.Logger.INTERNAL_ERROR))
    double = trt_double.TrtDouble()
    double_rt = double.Runtime(double.Logger())
    real_validity, real_diag = real_rt.get_engine_validity(blob)
    double_validity, double_diag = double_rt.get_engine_validity(blob)
    assert (real_validity.name, int(real_diag)) == (double_validity.name, int(double_diag)), \
        f"real {real_validity!r}/{real_diag} vs double {double_validity!r}/{double_diag}"
    assert real_rt.deserialize_cuda_engine(blob) is None
    assert double_rt.deserialize_cuda_engine(blob) is None


def test_dtype_names_the_runtime_maps_are_real_datatype_members():
    """DataType member names the runtime spells as strings (its tensorrt_rtx -> torch dtype map)."""
    tree = ast.parse((RUNTIME_DIR / "trt_module.py").read_text())
    maps = [node.value for node in ast.walk(tree) if isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "_TORCH_DTYPES" for t in node.targets)]
    assert len(maps) == 1 and isinstance(maps[0], ast.Dict), "trt_module.py's dtype map moved"
    names = {k.value for k in maps[0].keys}
    assert names <= set(trt.DataType.__members__), \
        f"not tensorrt_rtx.DataType members: {sorted(names - set(trt.DataType.__members__))}"
    assert set(trt_double.DataType.__members__) <= names  # every double dtype is one the runtime maps
