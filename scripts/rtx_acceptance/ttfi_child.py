"""Time to first inference of a saved program in a fresh process (used by the acceptance run).

    python ttfi_child.py --program m.pt2 --inputs x.pt --cache c.bin --mode cold|warm|disabled [--dry-run]

Prints one JSON line: load seconds, first-inference seconds, total. ``--mode disabled`` runs
with ``runtime.settings(cache_path=None)`` (no runtime cache); the others with ``--cache``.
With ``--dry-run`` the program is loaded (CPU-only) but the first inference runs a TRTModule
over the tensorrt_rtx test double, so the figures measure only the harness.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--program", required=True)
    parser.add_argument("--inputs", required=True)
    parser.add_argument("--cache", required=True)
    parser.add_argument("--mode", required=True, choices=["cold", "warm", "disabled"])
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args()
    start = time.perf_counter()
    import torch

    import torch_tensorrt_rtx as trtx
    from torch_tensorrt_rtx import runtime

    imported = time.perf_counter()
    program = trtx.load(args.program).module()
    inputs = torch.load(args.inputs)
    if args.dry_run:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from rtx_acceptance.runners import DOUBLE_INPUT_SHAPE, double_module

        program, inputs = double_module("ttfi"), [torch.randn(DOUBLE_INPUT_SHAPE)]
    else:
        program, inputs = program.to("cuda"), [t.to("cuda") for t in inputs]
    loaded = time.perf_counter()
    cache_path = None if args.mode == "disabled" else args.cache
    with runtime.settings(cache_path=cache_path), torch.no_grad():
        program(*inputs)
        if not args.dry_run:
            torch.cuda.synchronize()
        first = time.perf_counter()
    saved = time.perf_counter()  # leaving the scope saves the runtime cache
    try:
        default_cache = Path(runtime.default_cache_path(create_dir=False))
    except TypeError:
        default_cache = Path(runtime.default_cache_path())
    print(json.dumps({"mode": args.mode, "import_s": imported - start, "load_s": loaded - imported,
                      "first_inference_s": first - loaded, "cache_save_s": saved - first,
                      "total_s": saved - start, "default_cache": str(default_cache),
                      "default_cache_written": default_cache.exists()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
