"""Converter modules, one per op family. Importing this package imports every module in it, in
name order, and so registers their converters: a new module needs no list entry. Modules whose
name starts with "_" hold helpers (validators, layer builders) for the others.
"""
import importlib
import pkgutil
from typing import Iterable, List


def import_modules(package: str, path: Iterable[str]) -> List[str]:
    """Import every public module of `package` (found on `path`) in name order; their names.
    A module that fails to import raises ImportError naming it, chained to the original error."""
    names = sorted(info.name for info in pkgutil.iter_modules(path) if not info.name.startswith("_"))
    for name in names:
        try:
            importlib.import_module(f"{package}.{name}")
        except Exception as exc:
            raise ImportError(f"converter module {package}.{name} failed to import: "
                              f"{type(exc).__name__}: {exc}") from exc
    return names


MODULES = import_modules(__name__, __path__)
