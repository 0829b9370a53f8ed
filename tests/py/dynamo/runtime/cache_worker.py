"""Child-process helper for the Python cache store tests: ``python cache_worker.py MODE ...``.

Modes:
  cycles PATH N WORKER_ID    N save/load cycles of this worker's own engine entry, reading
                             other workers' entries too; prints one JSON summary line.
  stall_in_replace PATH      saves an entry but blocks right before os.replace (after the
                             temp file is written and fsynced), printing "in-replace" so the
                             parent can SIGKILL it there.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import struct
import sys
import time

from torch_tensorrt_rtx.runtime.runtime_cache_file import RuntimeCacheFile, engine_key

MAGIC = b"TBLOB1"


def make_blob(writer: str, size: int) -> bytes:
    """A self-checking blob: magic, writer id, payload, sha256 of everything before it."""
    head = MAGIC + struct.pack("<I", len(writer)) + writer.encode()
    body = head + os.urandom(size)
    return body + hashlib.sha256(body).digest()


def blob_writer(blob: bytes) -> str | None:
    """The writer id if the blob is complete and intact, else None."""
    data = bytes(blob)
    if len(data) < len(MAGIC) + 4 + 32 or not data.startswith(MAGIC):
        return None
    body, digest = data[:-32], data[-32:]
    if hashlib.sha256(body).digest() != digest:
        return None
    (n,) = struct.unpack_from("<I", body, len(MAGIC))
    return body[len(MAGIC) + 4:len(MAGIC) + 4 + n].decode()


def cycles(path: str, n: int, worker: str) -> None:
    store = RuntimeCacheFile(path)
    own = engine_key(worker.encode())
    seen, bad, written = set(), 0, 0
    for i in range(n):
        if store.try_save_entry(own, make_blob(f"{worker}:{i}", random.randint(1, 64 * 1024))):
            written += 1
        for entry in store.try_read_index() or []:
            found = store.try_load_entry(entry.key)
            if found is None:
                continue
            writer = blob_writer(found.data)
            if writer is None:
                bad += 1
            else:
                seen.add(writer.split(":")[0])
        if not os.path.exists(store.lock_path):
            bad += 1000  # the lock file must never disappear
    print(json.dumps({"worker": worker, "bad": bad, "written": written, "seen": sorted(seen)}))


def stall_in_replace(path: str) -> None:
    def stall(src, dst):
        print("in-replace", flush=True)
        time.sleep(60)
    os.replace = stall  # the store calls os.replace after writing + fsyncing the temp file
    RuntimeCacheFile(path).try_save_entry(engine_key(b"killed"), make_blob("killed", 4096))


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    if mode == "cycles":
        cycles(args[0], int(args[1]), args[2])
    elif mode == "stall_in_replace":
        stall_in_replace(args[0])
    else:
        sys.exit(f"unknown mode {mode}")
