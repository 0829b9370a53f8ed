"""Contract of the C++ TensorRT seam, as far as the headers on this machine allow.

No TensorRT-RTX headers are reachable here (only NVIDIA's SDK has them), so:
1. every nvinfer1 name core/runtime/backend_tensorrt.cpp uses must be in
   tests/core/runtime/tensorrt_rtx_api_names.txt -- names written down by hand from the public
   TensorRT-RTX C++ API reference -- and every entry there must still be used;
2. each entry's Python twin must exist in the installed ``tensorrt_rtx`` wheel (the bindings
   mirror the C++ API, so a misspelt or removed C++ name usually shows here too);
3. the narrow interface (core/runtime/trt_interface.h) and its two implementations -- the
   TensorRT backend and the scripted test backend -- implement exactly the same methods.
The compile check against standard TensorRT 10.14 headers stays in scripts/test.sh.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[4]
BACKEND = REPO / "core/runtime/backend_tensorrt.cpp"
INTERFACE = REPO / "core/runtime/trt_interface.h"
SCRIPTED = [REPO / "tests/core/runtime/scripted_backend.h", REPO / "tests/core/runtime/scripted_backend.cpp"]
NAMES = REPO / "tests/core/runtime/tensorrt_rtx_api_names.txt"

# Expressions in backend_tensorrt.cpp that hold nvinfer1 objects, with the operator that
# reaches the object (members held in unique_ptr use ->; `config_.get()` is unique_ptr's).
RECEIVERS = {("cache_", "->"): "IRuntimeCache", ("config_", "->"): "IRuntimeConfig",
             ("config", "."): "IRuntimeConfig", ("context_", "->"): "IExecutionContext",
             ("engine_", "->"): "ICudaEngine", ("runtime_", "->"): "IRuntime",
             ("runtime", "."): "IRuntime", ("memory", "->"): "IHostMemory", ("d", "."): "Dims",
             ("refitter_", "->"): "IRefitter", ("w", "."): "Weights"}
OWN_RECEIVERS = {"rtx", "allocator_"}  # our own wrapper classes and interfaces
# Interfaces of trt_interface.h the runtime implements (execute_engine.cpp), not the backends.
RUNTIME_IMPLEMENTED = {"OutputAllocator"}


def _strip_comments(source: str) -> str:
    source = re.sub(r"/\*.*?\*/", "", source, flags=re.S)
    return re.sub(r"//[^\n]*", "", source)


def api_names() -> dict[str, str]:
    names = {}
    for line in NAMES.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            cpp, twin = line.split()
            names[cpp] = twin
    return names


def nvinfer_uses(source: str) -> tuple[dict[str, int], list[str]]:
    """(nvinfer1 name -> first line using it, calls on receivers nobody classified)."""
    src = _strip_comments(source)
    aliases = dict(re.findall(r"using\s+(\w+)\s*=\s*nv::(\w+)\s*;", src))
    uses: dict[str, int] = {}
    unknown = []

    def add(name: str, lineno: int) -> None:
        uses.setdefault(name, lineno)

    for lineno, line in enumerate(src.splitlines(), 1):
        for m in re.finditer(r"\bnv::(\w+(?:::\w+)*)", line):
            add(m.group(1), lineno)
        for alias, target in aliases.items():
            for m in re.finditer(rf"(?<![\w:]){alias}::(\w+)", line):
                add(f"{target}::{m.group(1)}", lineno)
        for m in re.finditer(r"(?<![\w:])Severity::(\w+)", line):
            add(f"ILogger::Severity::{m.group(1)}", lineno)
        for m in re.finditer(r"\b(\w+)\s*(->|\.)\s*([A-Za-z_]\w*)", line):
            receiver, op, member = m.groups()
            if (receiver, op) in RECEIVERS:
                add(f"{RECEIVERS[(receiver, op)]}::{member}", lineno)
            elif op == "->" and receiver not in OWN_RECEIVERS:
                unknown.append(f"line {lineno}: {receiver}->{member}")
    for m in re.finditer(r"class\s+\w+\s+final\s*:\s*public\s+nv::(\w+)\s*\{(.*?)\n\};", src, re.S):
        for o in re.finditer(r"(?<![~\w])(\w+)\s*\([^;{]*\)[^;{]*\boverride\b", m.group(2)):
            add(f"{m.group(1)}::{o.group(1)}", src[:m.start()].count("\n") + 1)
    return uses, unknown


def interface_methods(header: str) -> dict[str, set[str]]:
    src = _strip_comments(header)
    out = {}
    for m in re.finditer(r"\nclass\s+(\w+)\s*\{(.*?)\n\};", src, re.S):
        out[m.group(1)] = set(re.findall(r"virtual\s+[^;~(]*?\b(\w+)\s*\(", m.group(2)))
    return {k: v for k, v in out.items() if v}


def implementations(source: str, interfaces: set[str]) -> dict[str, dict[str, set[str]]]:
    """interface -> {implementing class -> overridden method names}."""
    src = _strip_comments(source)
    out: dict[str, dict[str, set[str]]] = {}
    for m in re.finditer(r"class\s+(\w+)\s+final\s*:\s*public\s+(?:[\w]+::)*(\w+)\s*\{(.*?)\n\};", src, re.S):
        cls, base, body = m.groups()
        if base in interfaces:
            overrides = set(re.findall(r"(?<![~\w])(\w+)\s*\([^;{]*\)[^;{]*\boverride\b", body))
            out.setdefault(base, {})[cls] = overrides
    return out


def interface_mismatches(header: str, backends: dict[str, str]) -> list[str]:
    wanted = {k: v for k, v in interface_methods(header).items() if k not in RUNTIME_IMPLEMENTED}
    problems = []
    for backend, source in backends.items():
        impls = implementations(source, set(wanted))
        for iface, methods in sorted(wanted.items()):
            if iface not in impls:
                problems.append(f"{backend}: no class implements trt::{iface} "
                                f"(trt_interface.h declares {sorted(methods)})")
                continue
            for cls, overrides in impls[iface].items():
                if overrides != methods:
                    problems.append(
                        f"{backend}: {cls} overrides {sorted(overrides)}, trt_interface.h's {iface} "
                        f"declares {sorted(methods)} (missing {sorted(methods - overrides)}, "
                        f"extra {sorted(overrides - methods)})")
    return problems


# -- the contract -------------------------------------------------------------------------------

def test_backend_uses_only_listed_tensorrt_rtx_names_and_every_listed_name():
    uses, unknown = nvinfer_uses(BACKEND.read_text())
    listed = api_names()
    assert "IRuntimeConfig::setRuntimeCache" in uses and "IExecutionContext::enqueueV3" in uses
    unlisted = [f"{n} (line {line})" for n, line in sorted(uses.items()) if n not in listed]
    assert not unlisted, (f"{BACKEND.name} uses nvinfer1 names that are not in {NAMES.name} (check "
                          f"each against the public TensorRT-RTX C++ API reference, then add it):\n"
                          + "\n".join(unlisted))
    stale = sorted(set(listed) - set(uses))
    assert not stale, f"{NAMES.name} lists names {BACKEND.name} no longer uses: {stale}"
    assert not unknown, ("calls through receivers the contract does not classify; add them to "
                         "RECEIVERS (nvinfer1 objects) or OWN_RECEIVERS:\n" + "\n".join(unknown))


def test_python_twins_exist_in_the_installed_tensorrt_rtx():
    trt = pytest.importorskip("tensorrt_rtx")
    missing = []
    for cpp, twin in sorted(api_names().items()):
        if twin == "-":
            continue
        obj = trt
        for part in twin.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                missing.append(f"{cpp}: Python twin tensorrt_rtx.{twin} not found (no {part!r})")
                break
    assert not missing, f"tensorrt_rtx {trt.__version__}:\n" + "\n".join(missing)


def test_both_backends_implement_exactly_the_interface():
    backends = {BACKEND.name: BACKEND.read_text(),
                "scripted_backend": "\n".join(p.read_text() for p in SCRIPTED)}
    wanted = interface_methods(INTERFACE.read_text())
    assert {"RuntimeCache", "RuntimeConfig", "ExecutionContext", "Engine", "Runtime"} <= set(wanted)
    assert "CreateExecutionContext" in wanted["Engine"]  # the private factory counts too
    problems = interface_mismatches(INTERFACE.read_text(), backends)
    assert not problems, "\n".join(problems)


# -- the checks can fail ------------------------------------------------------------------------

def test_an_unlisted_or_unclassified_call_is_reported():
    fake = """
    class TensorRTEngine final : public Engine {
      int Slot() { return engine_->getBindingIndex("x"); }   // TensorRT 8, gone in RTX
      void Other() { widget_->enqueueV2(nullptr); }
      nv::DataType t = nv::DataType::kFP8;
    };
    """
    uses, unknown = nvinfer_uses(fake)
    listed = api_names()
    assert "ICudaEngine::getBindingIndex" in uses and "ICudaEngine::getBindingIndex" not in listed
    assert "DataType::kFP8" in uses and "DataType::kFP8" not in listed
    assert unknown == ["line 4: widget_->enqueueV2"]


def test_a_backend_missing_a_method_is_reported():
    header = "\nclass RuntimeCache {\n public:\n  virtual bool Deserialize(const void* d) = 0;\n" \
             "  virtual void Reset() = 0;\n};\n"
    backend = "\nclass Cache final : public trt::RuntimeCache {\n  ~Cache() override;\n" \
              "  bool Deserialize(const void*) override;\n" \
              "  void Merge() override;\n};\n"
    (problem,) = interface_mismatches(header, {"fake_backend": backend})
    assert "missing ['Reset']" in problem and "extra ['Merge']" in problem and "fake_backend: Cache" in problem
    (problem,) = interface_mismatches(header, {"empty": ""})
    assert "no class implements trt::RuntimeCache" in problem
