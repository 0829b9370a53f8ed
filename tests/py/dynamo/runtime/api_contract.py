"""The contract between a test double of ``tensorrt_rtx`` and the real module (tests only).

A double passes when everything it offers exists in the real module with the same kind
(class, method, property, enum, constant), a compatible signature and the same enum
values. Signatures of the real module are read from the pybind11 docstrings, which carry
them as text (``set_runtime_cache(self: ..., cache: nvinfer1::IRuntimeCache = None) ->
bool``); they are parsed, never evaluated.

    problems = double_mismatches(describe_double(trt_double), tensorrt_rtx)
    assert not problems, "\\n".join(problems)

Compatible means: the same parameter names in the same order, a default on exactly the
parameters that have one in the real overload (a double that accepts a call the real
module rejects would hide a bug), and, where the double annotates a parameter or return,
the same type once both sides are normalised (module prefixes dropped; ``bytes``,
``IHostMemory`` and ``Buffer`` are buffers; ``tuple`` and ``Dims`` are shapes;
``SupportsInt`` is ``int``; ``X | None`` is ``X``). An overloaded real method matches when
any overload does. Every mismatch names the double's side and the real side.
"""
from __future__ import annotations

import dataclasses
import enum
import inspect
import re
from typing import Any, Mapping, Optional


@dataclasses.dataclass(frozen=True)
class Signature:
    params: tuple[tuple[str, bool], ...]  # (name, has_default), self excluded
    returns: Optional[str]  # normalised type, None when unknown
    text: str  # as written, for messages

    def describe(self) -> str:
        return self.text


@dataclasses.dataclass
class DoubleApi:
    """What a double offers: module-level names and, per class, its members."""
    module_names: dict[str, Any]               # name -> class / factory / enum
    classes: dict[str, type]                   # API class name -> double class
    instances: dict[str, Any]                  # API class name -> a live double object
    double_only: Mapping[str, frozenset]       # class -> inspection hooks not in the real API


# -- pybind docstring parsing ---------------------------------------------------------------

def _split_top_level(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "([<{":
            depth += 1
        elif ch in ")]>}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if text[start:].strip():
        parts.append(text[start:])
    return [p.strip() for p in parts]


_TYPE_ALIASES = {"SupportsInt": "int", "SupportsFloat": "float", "Buffer": "buffer",
                 "IHostMemory": "buffer", "bytes": "buffer", "memoryview": "buffer",
                 "bytearray": "buffer", "Dims": "shape", "tuple": "shape"}


def normalise_type(text: Optional[str]) -> Optional[str]:
    """``tensorrt_rtx_bindings.tensorrt_rtx.Dims`` -> ``shape``; ``X | None`` -> ``X``."""
    if text is None:
        return None
    text = text.strip()
    if text in ("", "Any", "typing.Any", "inspect._empty"):
        return None
    opt = re.fullmatch(r"(?:typing\.)?Optional\[(.*)\]", text)
    if opt:
        text = opt.group(1)
    alternatives = [a.strip() for a in _split_top_level(text.replace("|", ","))]
    alternatives = [a for a in alternatives if a not in ("None", "NoneType")] or ["None"]
    text = alternatives[0] if len(alternatives) == 1 else " | ".join(alternatives)

    def one(name: str) -> str:
        name = re.split(r"::|\.", name.strip())[-1]
        return _TYPE_ALIASES.get(name, name)

    return re.sub(r"[A-Za-z_][\w.:]*", lambda m: one(m.group(0)), text)


def parse_pybind_signatures(doc: Optional[str], name: str) -> list[Signature]:
    """Every overload ``name(self: T, a: A = d, ...) -> R`` in a pybind11 docstring."""
    found = []
    for line in (doc or "").splitlines():
        m = re.fullmatch(rf"\s*(?:\d+\.\s+)?{re.escape(name)}\((.*)\)\s*->\s*(.+?)\s*", line)
        if not m or m.group(1) == "*args, **kwargs":
            continue
        params = []
        for part in _split_top_level(m.group(1)):
            pname, _, rest = part.partition(":")
            pname = pname.strip()
            if pname == "self":
                continue
            params.append((pname, "=" in rest))
        found.append(Signature(tuple(params), normalise_type(m.group(2)), line.strip()))
    return found


def _param_types_from_doc(text: str) -> dict[str, Optional[str]]:
    inner = text[text.index("(") + 1:text.rindex(")")]
    types = {}
    for part in _split_top_level(inner):
        pname, _, rest = part.partition(":")
        types[pname.strip()] = normalise_type(rest.split("=")[0])
    return types


def double_signature(func: Any) -> tuple[Signature, dict[str, Optional[str]]]:
    """The signature of a double's method or factory, ``self`` excluded."""
    sig = inspect.signature(func)
    params = list(sig.parameters.values())[1:]
    ret = None if sig.return_annotation is inspect.Signature.empty else str(sig.return_annotation)
    types = {p.name: (None if p.annotation is inspect.Parameter.empty else normalise_type(str(p.annotation)))
             for p in params}
    text = f"{getattr(func, '__qualname__', func)}{sig}"
    return Signature(tuple((p.name, p.default is not inspect.Parameter.empty) for p in params),
                     normalise_type(ret), text), types


def _signature_problem(where: str, dbl: Any, real_doc: Optional[str], real_name: str,
                       constructor: bool = False) -> Optional[str]:
    overloads = parse_pybind_signatures(real_doc, real_name)
    mine, my_types = double_signature(dbl)
    if not overloads:
        return (f"{where}: the real module's docstring carries no signature to compare with "
                f"(double: {mine.describe()}; real docstring: {(real_doc or '')[:120]!r})")
    for real in overloads:
        if real.params != mine.params:
            continue
        if (not constructor and mine.returns is not None and real.returns is not None
                and mine.returns != real.returns):
            continue
        real_types = _param_types_from_doc(real.text)
        if all(t is None or real_types.get(n) in (None, t) for n, t in my_types.items()):
            return None
    return (f"{where}: signature differs: double {mine.describe()} "
            f"[params {list(mine.params)}, returns {mine.returns}] vs real "
            + " | ".join(f"{o.text} [params {list(o.params)}, returns {o.returns}]" for o in overloads))


# -- the checks -----------------------------------------------------------------------------

def _is_enum(obj: Any) -> bool:
    return isinstance(obj, type) and issubclass(obj, enum.Enum)


def _enum_problems(where: str, dbl: type, real: Any) -> list[str]:
    members = getattr(real, "__members__", None)
    if members is None:
        return [f"{where}: double has enum {dbl.__name__} but the real {where} is not an enum "
                f"({type(real).__name__})"]
    out = []
    for name, member in dbl.__members__.items():
        if name not in members:
            out.append(f"{where}.{name}: member of the double's enum (= {member.value!r}) is "
                       f"missing from the real enum (members {sorted(members)})")
        elif int(member.value) != int(members[name]):
            out.append(f"{where}.{name}: double value {member.value!r} != real value "
                       f"{int(members[name])}")
    return out


def _real_kind(real_cls: Any, name: str) -> tuple[str, Any]:
    raw = None
    for klass in getattr(real_cls, "__mro__", (type(real_cls),)):
        if name in vars(klass):
            raw = vars(klass)[name]
            break
    if raw is None:
        return ("missing", None)
    if isinstance(raw, property):
        return ("property", raw)
    if callable(raw) and not isinstance(raw, type):
        return ("method", raw)
    return ("value", raw)


def _member_problems(cls_name: str, dbl_cls: type, real_cls: Any, instance: Any,
                     hooks: frozenset) -> list[str]:
    out = []
    where = f"tensorrt_rtx.{cls_name}"
    for name, raw in vars(dbl_cls).items():
        if name.startswith("_") or name in hooks:
            continue  # constructors are checked where the double exposes them as factories
        kind, real = _real_kind(real_cls, name)
        if kind == "missing":
            out.append(f"{where}.{name}: the double has it ({type(raw).__name__}); the real "
                       f"class does not (real members: "
                       f"{sorted(n for n in dir(real_cls) if not n.startswith('_'))})")
        elif _is_enum(raw):
            out.extend(_enum_problems(f"{where}.{name}", raw, real))
        elif isinstance(raw, property):
            if kind != "property":
                out.append(f"{where}.{name}: property in the double, {kind} in the real class")
        elif inspect.isfunction(raw):
            if kind != "method":
                out.append(f"{where}.{name}: method in the double, {kind} in the real class")
            else:
                problem = _signature_problem(f"{where}.{name}", raw, real.__doc__, name)
                if problem:
                    out.append(problem)
        elif isinstance(raw, (int, float, str)):
            value = getattr(real_cls, name)
            if int(value) != raw if isinstance(raw, int) else value != raw:
                out.append(f"{where}.{name}: double constant {raw!r} != real {value!r}")
    for name in sorted(vars(instance) if instance is not None else ()):
        if name.startswith("_") or name in hooks or name in vars(dbl_cls):
            continue
        kind, _ = _real_kind(real_cls, name)
        if kind == "missing":
            out.append(f"{where}.{name}: attribute of the double's objects; the real class has "
                       f"no such member (if it is a test hook, list it in DOUBLE_ONLY)")
        elif kind == "method":
            out.append(f"{where}.{name}: plain attribute in the double, method in the real class")
    for name in sorted(hooks):
        if _real_kind(real_cls, name)[0] != "missing":
            out.append(f"{where}.{name}: declared a double-only test hook, but the real class has "
                       f"a member of that name: the double must behave like it")
    return out


def double_mismatches(api: DoubleApi, real: Any) -> list[str]:
    """Every way ``api`` differs from the real module ``real``; [] when it conforms."""
    out = []
    for name, obj in sorted(api.module_names.items()):
        real_obj = getattr(real, name, None)
        if real_obj is None:
            out.append(f"tensorrt_rtx.{name}: the double has it; the real module does not")
        elif _is_enum(obj):
            out.extend(_enum_problems(f"tensorrt_rtx.{name}", obj, real_obj))
        elif inspect.isfunction(obj):  # a factory on the module, e.g. Runtime(logger)
            problem = _signature_problem(f"tensorrt_rtx.{name}(...)", obj,
                                         getattr(real_obj.__init__, "__doc__", None), "__init__",
                                         constructor=True)
            if problem:
                out.append(problem)
        elif isinstance(obj, type) and "__init__" in vars(obj):  # constructible, e.g. Logger()
            problem = _signature_problem(f"tensorrt_rtx.{name}(...)", vars(obj)["__init__"],
                                         getattr(real_obj.__init__, "__doc__", None), "__init__",
                                         constructor=True)
            if problem:
                out.append(problem)
    for name, cls in sorted(api.classes.items()):
        real_cls = getattr(real, name, None)
        if real_cls is None:
            out.append(f"tensorrt_rtx.{name}: class of the double; the real module has none")
            continue
        if _is_enum(cls):
            if name not in api.module_names:
                out.extend(_enum_problems(f"tensorrt_rtx.{name}", cls, real_cls))
            continue
        out.extend(_member_problems(name, cls, real_cls, api.instances.get(name),
                                    frozenset(api.double_only.get(name, ()))))
    return out


def missing_members(api: DoubleApi, real: Any, used: Mapping[str, set]) -> list[str]:
    """Every name in ``used`` (class -> member names; "module" for module-level names) that
    the double or the real module lacks."""
    out = []
    for cls_name, names in sorted(used.items()):
        for name in sorted(names):
            real_owner = real if cls_name == "module" else getattr(real, cls_name, None)
            if real_owner is None or not hasattr(real_owner, name):
                out.append(f"runtime uses {cls_name}.{name}: missing from the real tensorrt_rtx")
            if cls_name == "module":
                has = name in api.module_names
            else:
                cls = api.classes.get(cls_name) or api.module_names.get(cls_name)
                inst = api.instances.get(cls_name)
                if inst is None and _is_enum(cls):
                    inst = next(iter(cls))  # e.g. DataType.FLOAT.name: a member's attribute
                has = cls is not None and (hasattr(cls, name) or (inst is not None and hasattr(inst, name)))
            if not has:
                out.append(f"runtime uses {cls_name}.{name}: missing from the test double")
    return out
