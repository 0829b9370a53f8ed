"""Run upstream Torch-TensorRT's own examples against this package, only the import changed.

    python scripts/upstream_examples.py /path/to/TensorRT-checkout
    python scripts/upstream_examples.py --git-dir /work/.mirror/pytorch+TensorRT/repo --rev HEAD
        [--only refit,torch_export] [--step-timeout 240] [--out benchmarks/results/upstream_examples.md]

Examples: ``examples/dynamo/*.py`` and the other Python examples that use the dynamo path
(``EXTRA_EXAMPLES``). TorchScript, FX, INT8 (C++) and distributed examples are left out: they use
frontends this package does not have (TorchScript, FX) or several GPUs.

Each example runs in a fresh subprocess (``scripts/upstream_example_steps.py``: what a step is,
what is rewritten, the CPU stand-in), step by step, with a timeout per step. Classes:

  works            the step ran
  fails            it raised; the exception is listed (ours, or the example's)
  blocked_fail     NameError for a name that an earlier *failing* step should have bound
  timeout          no result within the step timeout (later steps are not run)
  needs_gpu        the exception says there is no CUDA/GPU (e.g. "Torch not compiled with CUDA
                   enabled", "no NVIDIA driver", this package's RTXGPUUnavailableError)
  needs_network    a download was attempted (Hugging Face hub, torchvision weights); no network here
  needs_package    a third-party module that is not installed (triton, modelopt, cupy, ...)
  blocked_gpu / blocked_network / blocked_package
                   NameError for a name an earlier step of that class should have bound

The score is works / (works + fails + blocked_fail + timeout): the steps that need no GPU, no
download and no missing package. The other classes are counted and shown, not hidden.
Environment set for the children: HF_HUB_OFFLINE=1, TRANSFORMERS_OFFLINE=1, a 10 s socket
timeout, and an empty ``torchvision._meta_registrations`` module (torchvision's CUDA build does
not load its C extension against CPU torch; see FACTS.md).
"""
from __future__ import annotations

import argparse
import json
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from upstream_example_steps import rewrite_imports, split_steps  # noqa: E402

EXTRA_EXAMPLES = (  # in the order upstream runs them: model.py writes what inference.py loads
    "examples/torchtrt_aoti_example/model.py",
    "examples/torchtrt_aoti_example/inference.py",
    "examples/torchtrt_runtime_example/network.py",
    "examples/triton/export.py",
    "examples/torchtrt_executorch_example/export_static_shape.py",
    "examples/torchtrt_executorch_example/export_dynamic_shape.py",
    "examples/apps/flux_demo.py",
)
# Command-line arguments an example requires (argparse, required=True), as upstream's docs run it.
EXAMPLE_ARGV = {"examples/dynamo/cross_runtime_compilation_for_windows.py": ["--path", "trt_resnet.ep"]}
SCORED = ("works", "fails", "blocked_fail", "timeout")
COLUMNS = ("works", "fails", "blocked_fail", "timeout", "needs_gpu", "blocked_gpu",
           "needs_network", "blocked_network", "needs_package", "blocked_package")


class UpstreamTree:
    """Files of an upstream checkout, or of a revision in a git directory (no work tree)."""

    def __init__(self, checkout: str | None, git_dir: str | None, rev: str):
        self.checkout, self.git_dir, self.rev = checkout, git_dir, rev

    def files(self, folder: str) -> list[str]:
        if self.checkout:
            return sorted(str(p.relative_to(self.checkout)) for p in Path(self.checkout, folder).glob("*"))
        out = subprocess.run(["git", "--git-dir", self.git_dir, "ls-tree", "--name-only", self.rev, folder + "/"],
                             check=True, capture_output=True, text=True).stdout
        return sorted(out.split())

    def read(self, path: str) -> str | None:
        if self.checkout:
            p = Path(self.checkout, path)
            return p.read_text() if p.is_file() else None
        done = subprocess.run(["git", "--git-dir", self.git_dir, "show", f"{self.rev}:{path}"],
                              capture_output=True, text=True)
        return done.stdout if done.returncode == 0 else None

    def describe(self) -> str:
        if self.checkout:
            return self.checkout
        sha = subprocess.run(["git", "--git-dir", self.git_dir, "rev-parse", self.rev],
                             capture_output=True, text=True).stdout.strip()
        return f"pytorch/TensorRT at {sha}"


def stage_examples(tree: UpstreamTree, workdir: Path) -> list[tuple[str, Path, int]]:
    """Write every .py of each example folder, imports rewritten, under workdir (so examples that
    import a sibling get the rewritten sibling). Returns (name, staged path, lines changed)."""
    names = [f for f in tree.files("examples/dynamo") if f.endswith(".py")] + list(EXTRA_EXAMPLES)
    staged = {}
    for folder in sorted({os.path.dirname(n) for n in names}):
        for f in tree.files(folder):
            text = tree.read(f) if f.endswith(".py") else None
            if text is None:
                continue
            target = workdir / f
            target.parent.mkdir(parents=True, exist_ok=True)
            new, changed = rewrite_imports(text)
            target.write_text(new)
            if f in names:
                staged[f] = (f, target, changed)
    return [staged[n] for n in names if n in staged]


def run_example(path: Path, step_timeout: float, log_dir: Path, work: str, argv: list[str]) -> list[dict]:
    steps = split_steps(path.read_text())
    spec = path.with_suffix(".spec.json")
    spec.write_text(json.dumps({"path": str(path), "argv": argv}))
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1")
    log = open(log_dir / (path.stem + ".log"), "w")
    child = subprocess.Popen([sys.executable, str(Path(__file__).with_name("upstream_example_steps.py")), str(spec)],
                             stdout=subprocess.PIPE, stderr=log, text=True, cwd=work, env=env, start_new_session=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in child.stdout] + [lines.put(None)], daemon=True).start()
    results: dict[int, dict] = {}
    current, deadline = None, time.monotonic() + 120  # imports before the first step
    while True:
        try:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            os.killpg(child.pid, signal.SIGKILL)
            if current is not None:
                results[current] = {"step": current, "class": "timeout", "detail": f"no result in {step_timeout:.0f} s"}
            break
        if line is None:
            break
        event = json.loads(line)
        if event["event"] == "start":
            current, deadline = event["step"], time.monotonic() + step_timeout
        elif event["event"] == "done":
            results[event["step"]] = event
            current, deadline = None, time.monotonic() + 60
        else:
            break
    child.wait()
    log.close()
    for i, step in enumerate(steps):
        results.setdefault(i, {"step": i, "class": "timeout" if i == 0 and not results else "not_run",
                               "detail": "the process ended before this step" if results else "no step ran"})
        results[i]["line"] = step[0].lineno
    return resolve_name_errors([results[i] for i in range(len(steps))])


_QUOTED = re.compile(r"'([A-Za-z_]\w*)'|::([A-Za-z_]\w*)")
_EXPECTED_STANDIN = ("works", "needs_gpu", "needs_network", "needs_package")
_BLOCKED = {"needs_gpu": "blocked_gpu", "needs_network": "blocked_network", "needs_package": "blocked_package"}


def _missing_names(r: dict) -> list[str]:
    """Names a step's error says are missing: a NameError's name, or the quoted names / op names
    of an AttributeError, ImportError or RuntimeError (an op an earlier step did not register)."""
    if r["class"] == "name_error":
        return [r["detail"]]
    if r["class"] == "fails" and r["detail"].split(":")[0] in ("AttributeError", "RuntimeError", "ImportError"):
        return [a or b for a, b in _QUOTED.findall(r["detail"])]
    return []


def resolve_name_errors(results: list[dict]) -> list[dict]:
    """A step that fails for want of a name an earlier, not working step should have bound is
    *blocked* by that step (its class decides which blocked_ class); a plain NameError else fails."""
    for i, r in enumerate(results):
        names = _missing_names(r)
        origin = next((earlier for earlier in reversed(results[:i]) for name in names
                       if name in earlier.get("binds", ()) and earlier["class"] != "works"), None)
        if origin is None:
            if r["class"] == "name_error":
                r["class"], r["detail"] = "fails", f"NameError: {r['detail']!r}"
            continue
        kind = origin["class"].replace("blocked_", "needs_")
        r["detail"] = f"{r['detail']} -> from step {origin['step'] + 1} ({origin['class']})"
        r["class"] = _BLOCKED.get(kind, "blocked_fail")
    for r in results:  # steps never run after a timeout count as not working
        if r["class"] == "not_run":
            r["class"] = "blocked_fail"
    return results


def score(rows: dict[str, list[dict]]) -> tuple[int, int]:
    flat = [r["class"] for rs in rows.values() for r in rs]
    return sum(c == "works" for c in flat), sum(c in SCORED for c in flat)


def markdown(rows: dict[str, list[dict]], changed: dict[str, int], source: str, before: dict | None) -> str:
    works, scored = score(rows)
    total = sum(len(r) for r in rows.values())
    out = [f"# Upstream examples, only the import changed\n",
           f"Source: {source}. Produced by `scripts/upstream_examples.py` (step definition and classes in its "
           "docstring).\n",
           f"**{works} of {scored} steps that need no GPU, download or missing package work "
           f"({100 * works / max(scored, 1):.1f}%)**; {total} steps in all.\n"]
    counts = {c: sum(r["class"] == c for rs in rows.values() for r in rs) for c in COLUMNS}
    out.append("All steps by class: " + ", ".join(f"{c} {n}" for c, n in counts.items()) + ".\n")
    standins = [r for rs in rows.values() for r in rs if "standin" in r]
    ok = sum(r["standin"] == "works" for r in standins)
    out.append(f"GPU/download steps re-run as a CPU stand-in (to bind their names): {ok} of {len(standins)} ran.\n")
    head = ["example", "import lines", "steps", *COLUMNS] + (["works before"] if before else [])
    out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, rs in rows.items():
        cells = [name.removeprefix("examples/"), str(changed[name]), str(len(rs))]
        cells += [str(sum(r["class"] == c for r in rs)) for c in COLUMNS]
        if before:
            old = before.get(name)
            cells.append("-" if old is None else f"{sum(r['class'] == 'works' for r in old)}/{len(old)}")
        out.append("| " + " | ".join(cells) + " |")
    out.append("\n## Steps that do not work (scored classes), and GPU/download steps whose CPU stand-in failed "
               "for another reason than a GPU, a download or a package\n")
    for name, rs in rows.items():
        for r in rs:
            standin = r.get("standin", "works").split(":")[0]
            if r["class"] in ("fails", "blocked_fail", "timeout") or standin not in _EXPECTED_STANDIN:
                extra = f" (CPU stand-in: {r['standin']})" if "standin" in r else ""
                detail = str(r.get("detail", "")).replace("|", "\\|").replace("\n", " ")[:240]
                out.append(f"- `{name.removeprefix('examples/')}` step {r['step'] + 1} (line {r['line']}): "
                           f"{r['class']}: {detail}{extra}")
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkout", nargs="?", help="an upstream checkout (work tree)")
    parser.add_argument("--git-dir", help="an upstream git directory (read with git show)")
    parser.add_argument("--rev", default="HEAD")
    parser.add_argument("--only", default="", help="comma-separated substrings of example paths")
    parser.add_argument("--step-timeout", type=float, default=240)
    parser.add_argument("--out", default="benchmarks/results/upstream_examples.md")
    parser.add_argument("--before", help="a JSON written by an earlier run, for a 'works before' column")
    parser.add_argument("--from-json", help="write the report from this run's JSON instead of running")
    args = parser.parse_args()
    if not (args.checkout or args.git_dir):
        parser.error("give an upstream checkout or --git-dir")
    tree = UpstreamTree(args.checkout, args.git_dir, args.rev)
    workdir = Path(tempfile.mkdtemp(prefix="upstream_examples_"))
    log_dir = workdir / "logs"
    log_dir.mkdir()
    staged = stage_examples(tree, workdir)
    wanted = [w for w in args.only.split(",") if w]
    rows, changed, workdirs = {}, {}, {}  # one working directory per example folder, as upstream runs them
    if args.from_json:
        rows = json.loads(Path(args.from_json).read_text())
        changed = {name: n for name, _, n in staged if name in rows}
        staged = []
    for name, path, n in staged:
        if wanted and not any(w in name for w in wanted):
            continue
        started = time.monotonic()
        if os.path.dirname(name) not in workdirs:
            workdirs[os.path.dirname(name)] = tempfile.mkdtemp(prefix="cwd_", dir=workdir)
        work = workdirs[os.path.dirname(name)]
        rows[name], changed[name] = run_example(path, args.step_timeout, log_dir, work, EXAMPLE_ARGV.get(name, [])), n
        summary = ", ".join(f"{c} {k}" for c in COLUMNS if (k := sum(r["class"] == c for r in rows[name])))
        print(f"{name}: {len(rows[name])} steps: {summary} ({time.monotonic() - started:.0f} s)", flush=True)
    before = json.loads(Path(args.before).read_text()) if args.before else None
    text = markdown(rows, changed, tree.describe(), before)
    Path(args.out).write_text(text)
    if not args.from_json:  # tracebacks stay in the logs
        slim = {name: [{k: v for k, v in r.items() if k not in ("traceback", "event")} for r in rs]
                for name, rs in rows.items()}
        Path(args.out).with_suffix(".json").write_text(json.dumps(slim, indent=0))
    works, scored = score(rows)
    print(f"\n{works} of {scored} scored steps work ({100 * works / max(scored, 1):.1f}%); logs in {log_dir}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
