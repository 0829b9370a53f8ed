"""The converter registry: every module in converters/ is found without a list, in name order,
and a module that fails to import is named."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from torch_tensorrt_rtx.dynamo.conversion import converters
from torch_tensorrt_rtx.dynamo.conversion.converters import import_modules


def test_every_converter_module_is_imported():
    on_disk = sorted(p.stem for p in Path(converters.__file__).parent.glob("*.py") if not p.stem.startswith("_"))
    assert len(on_disk) > 20, on_disk
    assert converters.MODULES == on_disk
    missing = [m for m in on_disk if f"{converters.__name__}.{m}" not in sys.modules]
    assert not missing, missing


@pytest.fixture
def fake_package(tmp_path, monkeypatch):
    """A package of three modules importing in name order (each appends its name to `order`),
    a helper module that must not be imported, and one module that raises."""
    name = "trtx_fake_converters"
    package = tmp_path / name
    package.mkdir()
    (package / "__init__.py").write_text("order = []\n")
    for module in ("b_second", "a_first", "c_third"):
        (package / f"{module}.py").write_text(f"from {name} import order\norder.append({module!r})\n")
    (package / "_helpers.py").write_text("raise AssertionError('helpers are imported by the modules using them')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name, package
    for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
        del sys.modules[key]


def test_modules_are_imported_in_name_order(fake_package):
    name, package = fake_package
    assert import_modules(name, [str(package)]) == ["a_first", "b_second", "c_third"]
    assert sys.modules[name].order == ["a_first", "b_second", "c_third"]


def test_a_module_that_fails_to_import_is_named(fake_package):
    name, package = fake_package
    (package / "b_broken.py").write_text("raise RuntimeError('boom in a converter module')\n")
    with pytest.raises(ImportError, match=f"converter module {name}.b_broken failed to import: "
                                          "RuntimeError: boom in a converter module") as caught:
        import_modules(name, [str(package)])
    assert isinstance(caught.value.__cause__, RuntimeError)
    assert sys.modules[name].order == ["a_first"]  # the ones before it were imported, in order
