"""The acceptance run behind scripts/rtx_acceptance.sh (see the README section).

    python -m rtx_acceptance preflight            # exit 2 with the reason when no usable RTX GPU
    python -m rtx_acceptance run [--dry-run] [--families mlp,resnet] [--iters 50] [--out build/rtx_acceptance]

``run`` executes every step (rtx_gpu tests with the deserialize probe, each model family
compiled vs eager and torch.compile, time to first inference cold / warm / cache disabled,
kernel and CUDA-graph strategies) and writes ``report-<time>.md`` and ``report.md`` under
``--out``. Exit code 0 only when every step passed; 2 when the machine cannot run it.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

import torch

from rtx_acceptance import report, steps
from rtx_acceptance.runners import REPO, make_runner

TOLERANCE = 2e-2  # fp32 max abs error against eager (the demo's tolerance)
NO_GPU_EXIT = 2


def preflight() -> int:
    """Say within seconds whether this machine can run the acceptance run."""
    from torch_tensorrt_rtx.runtime import device

    status = device.supported_gpu()
    if status.supported:
        print(f"rtx_acceptance: using {status.reason}")
        return 0
    hint = ""
    if torch.version.cuda is None:
        hint = (f" torch {torch.__version__} is a CPU build: install a CUDA build of the pinned torch "
                f"into .venv (e.g. from https://download.pytorch.org/whl/) and re-run.")
    print(f"rtx_acceptance: no GPU TensorRT-RTX can run portable engines on: {status.reason}. "
          f"It needs an NVIDIA RTX GPU of compute capability {device.describe_targets()}, a CUDA "
          f"build of torch and TensorRT-RTX.{hint} To exercise the script without one: "
          f"scripts/rtx_acceptance.sh --dry-run", file=sys.stderr)
    return NO_GPU_EXIT


def run(dry: bool, names: list[str], iters: int, out: Path) -> int:
    start, started = time.perf_counter(), dt.datetime.now(dt.timezone.utc)
    stamp = started.strftime("%Y%m%d-%H%M%S")
    workdir = out / f"work-{stamp}"
    workdir.mkdir(parents=True, exist_ok=True)
    runner = make_runner(dry)
    data = {"dry_run": dry, "started": started.isoformat(timespec="seconds"), "machine": steps.machine_info(),
            "problems": []}
    print("[rtx_acceptance] rtx_gpu tests", flush=True)
    data["rtx_gpu_tests"] = steps.run_rtx_gpu_tests(workdir)
    available = steps.families()
    unknown = [n for n in names if n not in available]
    if unknown:
        data["problems"].append(f"unknown families {unknown}; available: {sorted(available)}")
    data["families"] = []
    for name in [n for n in (names or available) if n in available]:
        print(f"[rtx_acceptance] family {name}", flush=True)
        data["families"].append(steps.measure_family(available[name], runner, workdir, iters))

    tests = data["rtx_gpu_tests"]
    if not dry and (tests["returncode"] != 0 or tests["counts"].get("skipped")):
        data["problems"].append(f"rtx_gpu tests: {tests['summary']} (every one must run and pass on an RTX GPU)")
    if not dry and not tests["probe"]:
        data["problems"].append("the IRuntimeCache.deserialize merge/replace probe printed no answer")
    bad = [f["family"] for f in data["families"] if not steps.family_ok(f, TOLERANCE)]
    if bad:
        data["problems"].append(f"families that failed or exceeded max abs error {TOLERANCE}: {bad}")
    ok = not data["problems"] and bool(data["families"])
    data["verdict"] = ("DRY RUN COMPLETED (nothing verified on hardware)" if dry and ok else
                       "PASSED" if ok else "FAILED")
    data["seconds"] = time.perf_counter() - start
    text = report.render(data)
    for path in (out / f"report-{stamp}.md", out / "report.md"):
        path.write_text(text)
    (workdir / "results.json").write_text(json.dumps(data, indent=1, default=str))
    print(f"[rtx_acceptance] {data['verdict']}: report {out / f'report-{stamp}.md'}")
    for problem in data["problems"]:
        print(f"[rtx_acceptance] problem: {problem}", file=sys.stderr)
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rtx_acceptance", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("preflight")
    r = sub.add_parser("run")
    r.add_argument("--dry-run", action="store_true", help="use the test doubles; produces the report skeleton")
    r.add_argument("--families", default="", help="comma-separated subset (default: all)")
    r.add_argument("--iters", type=int, default=50, help="timed calls per latency figure")
    r.add_argument("--out", default=str(REPO / "build/rtx_acceptance"))
    args = parser.parse_args(argv)
    if args.command == "preflight":
        return preflight()
    names = [n for n in args.families.split(",") if n]
    return run(args.dry_run, names, args.iters, Path(args.out))


if __name__ == "__main__":
    sys.exit(main())
