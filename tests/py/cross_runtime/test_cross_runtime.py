"""Python runtime vs C++ runtime on one cache file and one engine record, in real processes.

Scenarios: 1. a Python filelock holder makes a C++ save time out without raising,
file untouched, then the save succeeds; 2. the mirror; 3. C++ shared holders block Python
and coexist; 4. parallel load/save cycles, every read complete; 5. files and records
written by one runtime load in the other.
"""
from __future__ import annotations

import hashlib
import logging
import os
import struct
import time

import filelock
import pytest

from cross_runtime_helpers import Child, run
from torch_tensorrt_rtx.runtime.engine_record import LAYOUT, EngineRecord
from torch_tensorrt_rtx.runtime.runtime_cache_file import RuntimeCacheFile

PY_HOLDER = """
import sys, filelock
lock = filelock.FileLock(sys.argv[1])
lock.acquire()
print("locked", flush=True)
sys.stdin.read()
lock.release()
"""

CXX_HOLDER = """
import sys
from torch_tensorrt_rtx import _C
lock = _C.FileLock(sys.argv[1], shared=sys.argv[2] == "shared")
assert lock.acquire(timeout=10.0), "could not lock"
print("locked", flush=True)
sys.stdin.read()
lock.release()
"""

CXX_SAVE = """
import sys
from torch_tensorrt_rtx import _C
store = _C.RuntimeCacheFile(sys.argv[1], timeout=float(sys.argv[2]))
try:
    ok = store.try_save_entry(bytes(32), sys.argv[3].encode())
except BaseException as exc:
    print("raised", type(exc).__name__, flush=True)
    sys.exit(2)
print("saved" if ok else "not saved", flush=True)
"""


def _stat(path):
    st = os.stat(path)
    return st.st_ino, st.st_size, st.st_mtime_ns


# 1 -------------------------------------------------------------------------------------
KEY = bytes(32)  # the engine key the CXX_SAVE child uses


def _entry(cache) -> bytes:
    found = RuntimeCacheFile(cache).try_load_entry(KEY)
    return found.data if found else b""


def test_python_holder_makes_cxx_save_time_out_without_raising(native, tmp_path):
    cache = tmp_path / "runtime_cache.bin"
    assert RuntimeCacheFile(cache).try_save_entry(KEY, b"original cache bytes")
    before = (_stat(cache), cache.read_bytes())
    holder = Child(PY_HOLDER, str(cache) + ".lock")
    try:
        holder.expect("locked")
        started = time.monotonic()
        result = run(CXX_SAVE, cache, "0.5", "replacement")
        waited = time.monotonic() - started
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "not saved"
        assert "could not lock" in result.stderr
        assert waited >= 0.5
        assert (_stat(cache), cache.read_bytes()) == before
    finally:
        holder.finish()
    result = run(CXX_SAVE, cache, "5", "replacement")
    assert result.stdout.strip() == "saved", result.stderr
    assert _entry(cache) == b"replacement"


# 2 -------------------------------------------------------------------------------------
def test_cxx_holder_makes_python_save_time_out_with_warning(native, tmp_path, caplog):
    cache = tmp_path / "runtime_cache.bin"
    assert RuntimeCacheFile(cache).try_save_entry(KEY, b"original")
    before = (_stat(cache), cache.read_bytes())
    holder = Child(CXX_HOLDER, str(cache) + ".lock", "exclusive")
    try:
        holder.expect("locked")
        store = RuntimeCacheFile(cache, lock_timeout=0.5)
        with caplog.at_level(logging.WARNING):
            assert store.try_save_entry(KEY, b"replacement") is False
        assert any("could not lock" in r.getMessage() for r in caplog.records)
        assert (_stat(cache), cache.read_bytes()) == before
    finally:
        code, _, err = holder.finish()
        assert code == 0, err
    assert RuntimeCacheFile(cache, lock_timeout=5).try_save_entry(KEY, b"replacement")
    assert _entry(cache) == b"replacement"


# 3 -------------------------------------------------------------------------------------
def test_cxx_shared_holders_coexist_and_block_python(native, tmp_path):
    lock_path = str(tmp_path / "runtime_cache.bin.lock")
    first = Child(CXX_HOLDER, lock_path, "shared")
    second = Child(CXX_HOLDER, lock_path, "shared")
    try:
        first.expect("locked")
        second.expect("locked")  # a second shared holder gets in while the first holds
        with pytest.raises(filelock.Timeout):
            filelock.FileLock(lock_path).acquire(timeout=0.3)
    finally:
        for child in (first, second):
            code, _, err = child.finish()
            assert code == 0, err
    lock = filelock.FileLock(lock_path)
    lock.acquire(timeout=5)
    lock.release()


# 4 -------------------------------------------------------------------------------------
# Each writer saves self-checking entries under its own engine key and reads every entry
# back: magic, cycle, payload length, sha256.
CYCLES = """
import hashlib, os, struct, sys
path, runtime, name, cycles = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
key = hashlib.sha256(name.encode()).digest()
if runtime == "cxx":
    from torch_tensorrt_rtx import _C
    store = _C.RuntimeCacheFile(path, timeout=30.0)
    save = lambda blob: store.try_save_entry(key, blob)
    index = lambda: [k for k, *_ in (store.try_read_index() or [])]
    load = lambda k: (store.try_load_entry(k) or (None,))[0]
else:
    from torch_tensorrt_rtx.runtime.runtime_cache_file import RuntimeCacheFile
    store = RuntimeCacheFile(path, lock_timeout=30.0)
    save = lambda blob: store.try_save_entry(key, blob)
    index = lambda: [e.key for e in (store.try_read_index() or [])]
    load = lambda k: getattr(store.try_load_entry(k), "data", None)

def check(blob):
    if blob is None:
        return True  # replaced between the index read and the load: fine
    magic, cycle, n = struct.unpack_from("<4sII", blob)
    payload = blob[12:12 + n]
    return (magic == b"BLOB" and len(blob) == 12 + n + 32
            and hashlib.sha256(payload).digest() == blob[12 + n:])

bad = 0
for i in range(cycles):
    payload = os.urandom(1000 + (i * 7919) % 200000)
    blob = struct.pack("<4sII", b"BLOB", i, len(payload)) + payload + hashlib.sha256(payload).digest()
    if not save(blob):
        print("save failed", i, flush=True)
        sys.exit(3)
    bad += sum(not check(load(k)) for k in index())
print("bad reads", bad, flush=True)
sys.exit(1 if bad else 0)
"""


def test_parallel_python_and_cxx_cycles_only_ever_read_complete_entries(native, tmp_path):
    cache = str(tmp_path / "runtime_cache.bin")
    children = [Child(CYCLES, cache, runtime, f"{runtime}{i}", "40")
                for i, runtime in enumerate(("py", "cxx", "py", "cxx"))]
    results = [child.finish(timeout=240) for child in children]
    for code, out, err in results:
        assert code == 0, (out, err)
        assert "bad reads 0" in out
    assert len(RuntimeCacheFile(cache).try_read_index()) == 4  # every writer's entry kept
    leftovers = [p for p in os.listdir(tmp_path) if "tmp" in p]
    assert leftovers == []


SCRIPTED_ENGINE = b"SCRIPTED-ENGINE v1\ninput x\noutput y\n"


def _record() -> EngineRecord:
    return EngineRecord.new(SCRIPTED_ENGINE, name="blk0", input_names=["x"],
                            output_names=["y"], compute_capabilities=["SM89"])


def test_engine_record_saved_by_python_runs_in_cxx_and_back(native, scripted_ops, tmp_path):
    packed = tmp_path / "record.bin"
    packed.write_bytes(_record().pack())
    out = tmp_path / "from_cxx.bin"
    result = run("""
import sys, torch
torch.ops.load_library(sys.argv[3])
data = bytearray(open(sys.argv[1], "rb").read())
name, outputs, packed = torch.ops.ttrx_test.run_packed_engine([torch.arange(4.0)],
                                                             torch.frombuffer(data, dtype=torch.uint8))
print(name, outputs[0].tolist(), flush=True)
print(torch.ops.ttrx_test.abi_version(), torch.ops.ttrx_test.record_length(),
      ",".join(torch.ops.ttrx_test.record_field_names()))
open(sys.argv[2], "wb").write(packed.numpy().tobytes())
""", packed, out, scripted_ops)
    assert result.returncode == 0, result.stderr
    ran, layout = result.stdout.strip().splitlines()
    assert ran == "blk0 [0.0, 2.0, 4.0, 6.0]"
    # The C++ decoder's layout comes from the same single definition as the Python view.
    assert layout == f"{LAYOUT.abi_version} {LAYOUT.num_fields} {','.join(LAYOUT.fields)}"
    # The C++ runtime's packed record is byte-for-byte the Python runtime's.
    assert out.read_bytes() == packed.read_bytes()
    assert EngineRecord.unpack(out.read_bytes()).to_list() == _record().to_list()


def test_a_record_mapped_from_a_streamed_engine_file_runs_in_cxx(scripted_ops):
    # The builder streams a big engine to a file that then becomes its record (a copy-on-write
    # mapping, not torch's own memory): the C++ op reads it like any record tensor.
    result = run("""
import sys, torch
torch.ops.load_library(sys.argv[2])
from torch_tensorrt_rtx.dynamo.conversion._engine_builder import SerializedEngine
from torch_tensorrt_rtx.runtime.engine_record import EngineRecord, engine_offset
engine = SerializedEngine(engine_offset("blk0"))
engine.write(sys.argv[1].encode())
record = EngineRecord.new(engine, name="blk0", input_names=["x"], output_names=["y"]).to_tensor()
mapped = engine.mapped
engine.close()
name, outputs, packed = torch.ops.ttrx_test.run_packed_engine([torch.arange(4.0)], record)
print(mapped, name, outputs[0].tolist(), torch.equal(packed, record), flush=True)
""", SCRIPTED_ENGINE.decode(), scripted_ops)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True blk0 [0.0, 2.0, 4.0, 6.0] True"


def test_engine_pickled_by_cxx_runtime_loads_in_python_runtime(runtime_library, tmp_path):
    saved = tmp_path / "engine.pt"
    result = run("""
import sys, torch
torch.ops.load_library(sys.argv[2])
from torch_tensorrt_rtx.runtime.engine_record import EngineRecord
rec = EngineRecord.unpack(open(sys.argv[3], "rb").read())
engine = torch.classes.tensorrt.Engine(rec.to_list())
torch.save(engine.packed_record(), sys.argv[1])
print(engine, flush=True)
""", saved, runtime_library, _write(tmp_path / "rec.bin", _record().pack()))
    assert result.returncode == 0, result.stderr
    assert "name=blk0" in result.stdout
    import torch

    loaded = EngineRecord.from_tensor(torch.load(saved))
    assert loaded.to_list() == _record().to_list()


def _write(path, data):
    path.write_bytes(data)
    return path


def test_shipped_library_without_rtx_constructs_pickles_prints_and_explains(runtime_library):
    result = run("""
import io, sys, torch
torch.ops.load_library(sys.argv[1])
from torch_tensorrt_rtx.runtime.engine_record import EngineRecord
rec = EngineRecord.new(b"\\x00\\xffnot-an-engine", name="blk0", input_names=["x"], output_names=["y"])
engine = torch.classes.tensorrt.Engine(rec.to_list())
buf = io.BytesIO(); torch.save(engine, buf); buf.seek(0)
again = torch.load(buf, weights_only=False)
assert torch.equal(again.packed_record(), engine.packed_record())
print(torch.ops.tensorrt.runtime_backend())
print(hasattr(torch.ops.tensorrt, "check_record"), hasattr(torch.ops.tensorrt, "abi_version"))
print(again)
try:
    torch.ops.tensorrt.execute_engine([torch.ones(2)], again)
except RuntimeError as exc:
    print("error:", str(exc).splitlines()[0])
""", runtime_library)
    assert result.returncode == 0, result.stderr
    backend, test_ops, printed, error = result.stdout.strip().splitlines()
    if backend != "none":
        pytest.skip(f"library built with TensorRT ({backend}); this checks the default build")
    assert test_ops == "False False"  # the record's test-only ops live in the scripted test library
    assert printed.startswith("Engine(name=blk0")
    assert "built without TensorRT-RTX; rebuild with --config=rtx" in error
    assert "RTX GPU" in error


def test_saved_graph_op_runs_on_cxx_runtime_with_scoped_settings(scripted_ops, tmp_path):
    # The op a saved program calls is the C++ runtime's own when its library is loaded, and the
    # Python runtime's scoped settings reach the engine; outside the scope they revert.
    packed = tmp_path / "record.bin"
    packed.write_bytes(_record().pack())
    result = run("""
import sys, torch
from torch_tensorrt_rtx import runtime
from torch_tensorrt_rtx.dynamo._engine_op import NATIVE, OutputSpec, TensorSpec
record = runtime.EngineRecord.unpack(bytearray(open(sys.argv[1], "rb").read())).to_tensor()
spec = OutputSpec("blk0", "sha", [TensorSpec("float32", ["i0_0"])],
                  [TensorSpec("float32", ["i0_0"])], ["y:relu"]).to_json()
run = lambda: torch.ops.tensorrt_rtx.execute_engine([torch.arange(4.0)], record, spec)[0]
settings = lambda: list(torch.ops.tensorrt.record_engine_applied_settings(record))
with runtime.settings(cache_path=sys.argv[2], kernel_strategy="eager"):
    y = run()
    print(NATIVE, y.tolist(), settings(), flush=True)
import os
print("saved at scope exit:", os.path.getsize(sys.argv[2]) > 0, flush=True)
run()
print(settings(), flush=True)
""", packed, tmp_path / "rt.cache", TORCH_TENSORRT_RTX_RUNTIME_LIBRARY=str(scripted_ops))
    assert result.returncode == 0, result.stderr
    inside, saved, outside = result.stdout.strip().splitlines()
    assert saved == "saved at scope exit: True", saved
    assert inside.startswith("True [0.0, 2.0, 4.0, 6.0]"), inside
    assert str(tmp_path / "rt.cache") in inside and "'kernel_strategy=eager'" in inside, inside
    assert "'kernel_strategy=lazy'" in outside and str(tmp_path / "rt.cache") not in outside, outside
