"""Repository rule that finds the project's Python interpreter, and nothing else.

The project's Python is $PYTHON_BIN_PATH when set, else `.venv/bin/python` in the
workspace root (what scripts/setup.sh creates), else `python3` on PATH. Unlike
`local_torch`, it imports nothing, so targets that only need to run a standard-library
script (//core/definitions generates its headers that way) build without torch or
pybind11 installed: `bazel build //core/util:file_lock` needs just a Python 3.

Targets of the generated repository (`@local_python`):
  //:defs.bzl    PYTHON_BIN, the absolute path of the interpreter
"""

def _local_python_impl(ctx):
    python = ctx.os.environ.get("PYTHON_BIN_PATH", "")
    if not python:
        venv = str(ctx.path(Label("//:WORKSPACE")).dirname) + "/.venv/bin/python"
        python = venv if ctx.path(venv).exists else str(ctx.which("python3") or "")
    if not python or not ctx.path(python).exists:
        fail("local_python: no Python found (PYTHON_BIN_PATH, .venv/bin/python, python3 on PATH). " +
             "Run scripts/setup.sh first, or set PYTHON_BIN_PATH.")
    ctx.file("defs.bzl", "PYTHON_BIN = %r\n" % python)
    ctx.file("BUILD.bazel", "")
    ctx.file("WORKSPACE", "workspace(name = \"%s\")\n" % ctx.name)

local_python = repository_rule(
    implementation = _local_python_impl,
    local = True,
    environ = ["PYTHON_BIN_PATH"],
)
