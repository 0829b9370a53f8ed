"""The package's layers import downwards only: the top level (compile/save/load) may use the
compiler (dynamo/) and the runtime (runtime/); the compiler may use the runtime; the runtime uses
neither. Every layer may read the package version (`_version`, a module that imports nothing); the
runtime also loads the package's C extension (`_C`: C++, imports nothing of the package).
Checked on the source with `ast`, so a lazy import inside a function counts too."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "py" / "torch_tensorrt_rtx"
# Layer -> the project packages its modules may import from.
ALLOWED = {
    "dynamo": ("torch_tensorrt_rtx.dynamo", "torch_tensorrt_rtx.runtime", "torch_tensorrt_rtx._version"),
    "runtime": ("torch_tensorrt_rtx.runtime", "torch_tensorrt_rtx._version", "torch_tensorrt_rtx._C"),
}


def _project_imports(path: Path):
    """(line, imported module) for every import of a torch_tensorrt_rtx module in `path`;
    `from torch_tensorrt_rtx import x` counts as importing torch_tensorrt_rtx.x."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "torch_tensorrt_rtx":
                    yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "torch_tensorrt_rtx":
                for alias in node.names:
                    yield node.lineno, f"torch_tensorrt_rtx.{alias.name}"
            elif node.module.startswith("torch_tensorrt_rtx."):
                yield node.lineno, node.module


def _violations(layer: str):
    allowed = ALLOWED[layer]
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        for line, module in _project_imports(path):
            if not any(module == prefix or module.startswith(prefix + ".") for prefix in allowed):
                yield f"{path.relative_to(PACKAGE)}:{line} imports {module}"


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_only_its_own_and_lower_layers(layer):
    bad = list(_violations(layer))
    assert not bad, "upward imports:\n" + "\n".join(bad)


def test_the_check_sees_an_upward_import(tmp_path, monkeypatch):
    fake = tmp_path / "torch_tensorrt_rtx"
    (fake / "runtime").mkdir(parents=True)
    (fake / "runtime" / "bad.py").write_text("def f():\n    from torch_tensorrt_rtx import _compile\n")
    (fake / "runtime" / "good.py").write_text("from torch_tensorrt_rtx.runtime import device\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    assert list(_violations("runtime")) == ["runtime/bad.py:2 imports torch_tensorrt_rtx._compile"]
