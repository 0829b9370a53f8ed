"""Runs Python code in a child process that loads the scripted-backend op library
(//tests/core/runtime:libscripted_runtime_ops.so) as its C++ runtime: the shipped library
has no test-only ops (ttrx_test.*), and one process cannot load both libraries.

    out = run_scripted_child("print(torch.ops.ttrx_test.abi_version())").stdout
    verdicts = cxx_record_verdicts([packed_bytes, ...])   # "" = decodes, else the error
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from engine_programs import REPO, SCRIPTED_OPS

HERE = Path(__file__).resolve().parent


def run_scripted_child(code: str, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """``code`` run (and checked to succeed) with ``sys``, ``torch`` and ``torch_tensorrt_rtx``
    imported and the scripted library loaded; skips when that library is not built."""
    if not SCRIPTED_OPS.is_file():
        pytest.skip(f"scripted-backend op library not built ({SCRIPTED_OPS}): "
                    "bazel build //tests/core/runtime:libscripted_runtime_ops.so")
    env = dict(os.environ, TORCH_TENSORRT_RTX_RUNTIME_LIBRARY=str(SCRIPTED_OPS),
               PYTHONPATH=os.pathsep.join([str(REPO / "py"), str(HERE), os.environ.get("PYTHONPATH", "")]))
    prelude = "import sys, torch\nimport torch_tensorrt_rtx\n"
    result = subprocess.run([sys.executable, "-c", prelude + code, *args], capture_output=True, text=True,
                            env=env, timeout=timeout)
    assert result.returncode == 0, result.stderr[-4000:]
    return result


_VERDICTS = """
import json, struct
data = open(sys.argv[1], "rb").read()
out, pos = [], 0
while pos < len(data):
    (n,) = struct.unpack_from("<Q", data, pos)
    record = bytearray(data[pos + 8:pos + 8 + n])
    pos += 8 + n
    tensor = torch.frombuffer(record, dtype=torch.uint8) if record else torch.empty(0, dtype=torch.uint8)
    out.append(str(torch.ops.ttrx_test.check_record(tensor)))
print(json.dumps(out))
"""


def cxx_record_verdicts(records: list) -> list:
    """The C++ decoder's verdict on each packed record: "" if it decodes, else its error."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "records.bin"
        path.write_bytes(b"".join(len(r).to_bytes(8, "little") + bytes(r) for r in records))
        return json.loads(run_scripted_child(_VERDICTS, str(path)).stdout.strip().splitlines()[-1])
