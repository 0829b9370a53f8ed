"""Steps of an upstream Torch-TensorRT example, and running them in one process.

Used by ``scripts/upstream_examples.py`` (which runs this file as a child process per example).

What a *step* is:
  - In a sphinx-gallery example (lines starting with ``# %%``), a step is one cell: the
    top-level statements between two markers (the code before the first marker is a cell too).
    Cells holding no code (only comments or a docstring) are not steps.
  - In a file without markers, a step is a paragraph: top-level statements with no blank line
    between them (blank lines inside a statement do not count). Imports, ``def`` and ``class``
    statements join the paragraph after them (they are its set-up), and the body of
    ``if __name__ == "__main__":`` is split the same way (examples run as ``__main__``).

The only change made to an example is its import of upstream's package:
``torch_tensorrt`` becomes ``torch_tensorrt_rtx`` (``import torch_tensorrt`` ->
``import torch_tensorrt_rtx as torch_tensorrt``; ``from torch_tensorrt.x import y`` ->
``from torch_tensorrt_rtx.x import y``). Line numbers are kept, so tracebacks point at
upstream's lines.

How a step is classified comes from the exception it raised (see ``classify``); nothing is
guessed from the source. After a step fails because it needs a GPU (or a download), the
child re-runs that step once as a *CPU stand-in* (CUDA placements -> CPU, torchvision
``pretrained``/``weights`` -> random weights) only so that the names it binds exist for the
steps after it. The step keeps its GPU/network class whatever the stand-in does; the
stand-in's own outcome is recorded beside it.
"""
from __future__ import annotations

import ast
import json
import os
import re
import sys
import traceback
import types
from typing import Any

PACKAGE = "torch_tensorrt_rtx"
MARKER = re.compile(r"^# ?%%")
_IMPORT_PLAIN = re.compile(r"^(\s*)import torch_tensorrt(\s*(#.*)?)$")
_IMPORT_AS = re.compile(r"^(\s*)import torch_tensorrt((?:\.\w+)*) as (\w+)")
_IMPORT_SUB = re.compile(r"^(\s*)import torch_tensorrt((?:\.\w+)+)(\s*(#.*)?)$")
_FROM = re.compile(r"^(\s*)from torch_tensorrt(?=[.\s])")


def rewrite_imports(source: str) -> tuple[str, int]:
    """Upstream's import -> ours, line by line; returns (new source, lines changed)."""
    out, changed = [], 0
    for line in source.splitlines():
        new = _FROM.sub(rf"\1from {PACKAGE}", line)
        new = _IMPORT_AS.sub(rf"\1import {PACKAGE}\2 as \3", new)
        new = _IMPORT_PLAIN.sub(rf"\1import {PACKAGE} as torch_tensorrt\2", new)
        new = _IMPORT_SUB.sub(rf"\1import {PACKAGE}\2; import {PACKAGE} as torch_tensorrt\3", new)
        changed += new != line
        out.append(new)
    return "\n".join(out) + "\n", changed


def _is_main_guard(node: ast.stmt) -> bool:
    return (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
            and isinstance(node.test.left, ast.Name) and node.test.left.id == "__name__")


def _is_docstring(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


_SETUP = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _paragraph_steps(body: list[ast.stmt], lines: list[str]) -> list[list[ast.stmt]]:
    """Top-level statements grouped into paragraphs (no blank line between them); set-up
    statements (imports, def, class) join the paragraph after them."""
    steps: list[list[ast.stmt]] = []
    pending: list[ast.stmt] = []
    previous_end = None
    for node in body:
        if _is_main_guard(node):
            inner = _paragraph_steps(node.body, lines)
            if pending and all(isinstance(n, _SETUP) for n in pending) and inner:
                inner[0] = pending + inner[0]
            elif pending:
                steps.append(pending)
            steps.extend(inner)
            pending, previous_end = [], None
            continue
        if _is_docstring(node):
            continue
        start = node.lineno - 1 - len(getattr(node, "decorator_list", ()))
        gap = lines[previous_end:start] if previous_end is not None else []
        if pending and any(not line.strip() for line in gap) and not all(isinstance(n, _SETUP) for n in pending):
            steps.append(pending)
            pending = []
        pending.append(node)
        previous_end = node.end_lineno
    if pending:
        steps.append(pending)
    return steps


def split_steps(source: str) -> list[list[ast.stmt]]:
    tree = ast.parse(source)
    marker_lines = [i + 1 for i, line in enumerate(source.splitlines()) if MARKER.match(line)]
    if not marker_lines:
        return _paragraph_steps(tree.body, source.splitlines())
    cells: dict[int, list[ast.stmt]] = {}
    for node in tree.body:
        cell = sum(1 for m in marker_lines if m < node.lineno)
        if not _is_docstring(node):
            cells.setdefault(cell, []).append(node)
    return [cells[k] for k in sorted(cells)]


def bound_names(step: list[ast.stmt]) -> set[str]:
    names: set[str] = set()
    for node in step:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                names.add(sub.id)
            elif isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(sub.name)
            elif isinstance(sub, (ast.Import, ast.ImportFrom)):
                names.update((a.asname or a.name).split(".")[0] for a in sub.names)
    return names


def step_source(source: str, step: list[ast.stmt]) -> str:
    lines = source.splitlines()
    return "\n".join(lines[step[0].lineno - 1: step[-1].end_lineno])


# ---- classification -------------------------------------------------------------------------

GPU_PATTERN = re.compile(
    r"Torch not compiled with CUDA enabled|no NVIDIA driver|No CUDA GPUs are available|"
    r"CUDA is not available|CUDA driver|RTXGPUUnavailableError|Cannot access accelerator device|"
    r"cudaGetDeviceCount|CUDA initialization|must be on (a )?CUDA|RefitBuildNeedsGpu|"
    r"Tried to instantiate dummy base class (Event|Stream)",
    re.IGNORECASE)  # the last: torch.cuda.Event/Stream of a CPU-only torch build
NETWORK_PATTERN = re.compile(
    r"URLError|gaierror|ConnectionError|Temporary failure in name resolution|Network is unreachable|"
    r"huggingface\.co|HF_HUB_OFFLINE|offline mode|OfflineModeIsEnabled|LocalEntryNotFoundError|"
    r"couldn't connect|Failed to establish a new connection|download\.pytorch\.org", re.IGNORECASE)


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def classify(exc: BaseException) -> tuple[str, str]:
    """(class, detail) for an exception a step raised. Classes: needs_package, needs_network,
    needs_gpu, name_error (resolved later against earlier steps), fails."""
    chain = _chain(exc)
    text = " | ".join(f"{type(e).__name__}: {e}" for e in chain)
    first = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
    # Once upstream's RTX torch_tensorrt is imported, `import tensorrt` gives tensorrt_rtx: a missing
    # `tensorrt` after the package under test was imported is ours; before it, a missing package.
    ours_tensorrt = exc.name == "tensorrt" and PACKAGE in sys.modules if isinstance(exc, ModuleNotFoundError) else False
    if isinstance(exc, ModuleNotFoundError) and exc.name and not exc.name.startswith(PACKAGE) and not ours_tensorrt:
        return "needs_package", exc.name.split(".")[0]
    if NETWORK_PATTERN.search(text):
        return "needs_network", first
    if GPU_PATTERN.search(text):
        return "needs_gpu", first
    if isinstance(exc, NameError) and getattr(exc, "name", None):
        return "name_error", exc.name
    return "fails", first


# ---- CPU stand-in ---------------------------------------------------------------------------

def _cpu(x: Any) -> Any:
    import torch
    if isinstance(x, torch.device) and x.type == "cuda":
        return torch.device("cpu")
    if isinstance(x, str) and x.startswith("cuda"):
        return "cpu"
    return x


class _StandIn(ast.NodeTransformer):
    """CUDA placements -> CPU and downloaded torchvision weights -> random ones, outside calls
    into the package under test (whose own ``device=`` means the GPU the engines run on)."""

    def __init__(self, package_aliases: set[str]):
        self.aliases = package_aliases

    def _root(self, node: ast.AST) -> str:
        while isinstance(node, (ast.Attribute, ast.Call)):
            node = node.value if isinstance(node, ast.Attribute) else node.func
        return node.id if isinstance(node, ast.Name) else ""

    def _wrap(self, node: ast.expr) -> ast.expr:
        return ast.Call(func=ast.Name("__standin_cpu__", ast.Load()), args=[node], keywords=[])

    def visit_Call(self, node: ast.Call) -> ast.AST:
        if self._root(node.func) in self.aliases:
            return node
        self.generic_visit(node)
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "cuda":
            func.attr, node.args, node.keywords = "cpu", [], []
        elif isinstance(func, ast.Attribute) and func.attr == "to":
            node.args = [self._wrap(a) for a in node.args]
        if isinstance(func, ast.Attribute) and func.attr == "device" and self._root(func) == "torch":
            return self._wrap(node)
        for kw in node.keywords:
            if kw.arg == "device":
                kw.value = self._wrap(kw.value)
            elif kw.arg == "pretrained":
                kw.value = ast.Constant(False)
            elif kw.arg == "weights" and self._root(func) in {"models", "torchvision"}:
                kw.value = ast.Constant(None)
        return node

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        if isinstance(node.value, str) and re.fullmatch(r"cuda(:\d+)?", node.value):
            return ast.Constant("cpu")
        return node


# ---- child process --------------------------------------------------------------------------

def _package_aliases(source: str) -> set[str]:
    aliases = {"torch_tensorrt", PACKAGE}
    for line in source.splitlines():
        m = _IMPORT_AS.match(line)
        if m:
            aliases.add(m.group(3))
    return aliases


def _run(code: Any, namespace: dict) -> None:
    exec(code, namespace)  # noqa: S102 - running the example is the point


def run_child(spec_path: str) -> None:
    spec = json.loads(open(spec_path).read())
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # the example's own prints go to the log, not the protocol
    sys.stdout = sys.stderr
    sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations"))
    import socket
    socket.setdefaulttimeout(10)
    path = spec["path"]
    sys.path.insert(0, os.path.dirname(path))
    source = open(path).read()
    steps = split_steps(source)
    aliases = _package_aliases(source)
    namespace: dict = {"__name__": "__main__", "__file__": path, "__builtins__": __builtins__,
                       "__standin_cpu__": _cpu}
    sys.argv = [path, *spec.get("argv", [])]
    for index, step in enumerate(steps):
        proto.write(json.dumps({"event": "start", "step": index}) + "\n")
        result = {"event": "done", "step": index, "line": step[0].lineno,
                  "binds": sorted(bound_names(step))}
        try:
            _run(compile(ast.Module(body=step, type_ignores=[]), path, "exec"), namespace)
            result["class"], result["detail"] = "works", ""
        except BaseException as exc:  # SystemExit from argparse included
            result["class"], result["detail"] = classify(exc)
            result["traceback"] = traceback.format_exc(limit=-4)[-2000:]
            print(result["traceback"], file=sys.stderr)
        if result["class"] in ("needs_gpu", "needs_network"):  # outside the except: its error is not the context
            result["standin"] = _stand_in(step, aliases, path, namespace)
        proto.write(json.dumps(result) + "\n")
    proto.write(json.dumps({"event": "end"}) + "\n")


def _stand_in(step: list[ast.stmt], aliases: set[str], path: str, namespace: dict) -> str:
    import copy
    module = ast.fix_missing_locations(_StandIn(aliases).visit(ast.Module(body=copy.deepcopy(step), type_ignores=[])))
    try:
        _run(compile(module, path, "exec"), namespace)
        return "works"
    except BaseException as exc:
        cls, detail = classify(exc)
        return f"{cls}: {detail}"


if __name__ == "__main__":
    run_child(sys.argv[1])
