"""Child-process helper for the cache file tests: ``python cache_worker.py MODE ...``.

Modes:
  cycles PATH N WORKER_ID    N load/save cycles; prints one JSON summary line.
  hold_lock LOCK_PATH SECS   holds the lock, prints "locked", sleeps SECS.
  stall_in_replace PATH      saves a new blob but blocks right before os.replace
                             (after the temp file is written and fsynced), printing
                             "in-replace" so the parent can SIGKILL it there.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import struct
import sys
import time

import filelock

from torch_tensorrt_rtx.runtime.runtime_cache_file import RuntimeCacheFile

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
    seen, bad, written = set(), 0, 0
    for i in range(n):
        found = []
        loaded = store.try_load(lambda b: found.append(blob_writer(b)) or found[-1] is not None)
        if found and found[-1] is None:
            bad += 1
        elif loaded:
            seen.add(found[-1].split(":")[0])
        if store.try_save(lambda: make_blob(f"{worker}:{i}", random.randint(1, 64 * 1024))):
            written += 1
        if not os.path.exists(store.lock_path):
            bad += 1000  # the lock file must never disappear
    print(json.dumps({"worker": worker, "bad": bad, "written": written, "seen": sorted(seen)}))


def hold_lock(lock_path: str, seconds: float) -> None:
    with filelock.FileLock(lock_path):
        print("locked", flush=True)
        time.sleep(seconds)


def stall_in_replace(path: str) -> None:
    def stall(src, dst):
        print("in-replace", flush=True)
        time.sleep(60)
    os.replace = stall  # the store calls os.replace after writing + fsyncing the temp file
    RuntimeCacheFile(path).try_save_bytes(make_blob("killed", 4096))


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    if mode == "cycles":
        cycles(args[0], int(args[1]), args[2])
    elif mode == "hold_lock":
        hold_lock(args[0], float(args[1]))
    elif mode == "stall_in_replace":
        stall_in_replace(args[0])
    else:
        sys.exit(f"unknown mode {mode}")
