"""Every module of the package imports, and a model compiles, saves and loads, in a process where
the POSIX-only modules a Windows Python lacks (fcntl, pwd, grp, termios) cannot be imported."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BLOCKED = ("fcntl", "pwd", "grp", "termios")

CHILD = """
import sys
for name in {blocked!r}:
    sys.modules[name] = None          # `import name` now raises ImportError, as on Windows
import importlib, pkgutil
import torch
import torch_tensorrt_rtx as trtx
names = [m.name for m in pkgutil.walk_packages(trtx.__path__, "torch_tensorrt_rtx.")]
for name in names:
    importlib.import_module(name)
model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU()).eval()
compiled = trtx.compile(model, [torch.randn(2, 4)], min_block_size=1, progress=False)
trtx.save(compiled, sys.argv[1])
program = torch.export.load(sys.argv[1])
print(len(names), len(compiled.compile_report.engines), any(m in sys.modules and sys.modules[m] for m in {blocked!r}))
"""


def test_package_imports_and_compiles_without_posix_only_modules(tmp_path):
    result = subprocess.run([sys.executable, "-c", CHILD.format(blocked=BLOCKED), str(tmp_path / "m.pt2")],
                            capture_output=True, text=True, timeout=600,
                            env={**os.environ, "XDG_CACHE_HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr[-3000:]
    modules, engines, leaked = result.stdout.split()
    assert int(modules) > 40 and engines == "1" and leaked == "False", result.stdout
    assert Path(tmp_path / "m.pt2").stat().st_size > 0
