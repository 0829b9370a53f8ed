"""Peak memory of a compile, against the size of the engine it builds.

Each model is compiled in a fresh process. The child reads its resident set size just before
`torch_tensorrt_rtx.compile` (after the model and its inputs exist), then a thread samples it every
5 ms through compile (and save, with --save); the highest sample minus the first is the compile's
peak above the process baseline, printed beside the engine size and as a ratio (target: at most
1.5x for BERT-base and GPT-2), with the resident size once compile has returned, the peak of
`save` above the same baseline (with --save), and partitioning's share of the compile time
(`compile_report.phase_seconds`, target at most 3%), and TensorRT-RTX's build alone (`build_engine`):
its CPU seconds (all threads), wall seconds and minor page faults.

--warm (not the target's measurement, which is the fresh process above): the child first compiles
a one-layer toy model of the same family, then takes its baseline. The process's first compile
pays one-time costs that do not grow with the engine (torch.export's lazily imported modules,
TensorRT-RTX's code pages, about 35 MB); this run shows the compile without them.
--timeline: also print the resident size above the baseline at each TensorRT-RTX build phase and
at each chunk of the engine TensorRT-RTX streams out (where the peak's parts come from).

    .venv/bin/python benchmarks/compile_memory.py [bert_base gpt2] [--save] [--warm] [--timeline]
"""
from __future__ import annotations

import os
import argparse
import json
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TORCH_TENSORRT_RTX_ENGINE_CACHE", "0")  # time real builds: no engine cache unless asked


REPO = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, tempfile, os, threading, time
sys.path.insert(0, {repo!r})
import torch
from tests.py.models.zoo import import_torchvision
import_torchvision()
import transformers
import torch_tensorrt_rtx as trtx

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

name, save, warm, timeline = sys.argv[1], sys.argv[2] == "1", sys.argv[3] == "1", sys.argv[4] == "1"

def make(toy=False):
    # the model, or a one-layer toy of its family (--warm)
    if name == "bert_base":
        small = dict(num_hidden_layers=1, hidden_size=64, num_attention_heads=2, intermediate_size=64, vocab_size=128)
        return transformers.BertModel(transformers.BertConfig(**(small if toy else {{}}))).eval()
    small = dict(n_layer=1, n_embd=64, n_head=2, vocab_size=128)
    return transformers.GPT2LMHeadModel(transformers.GPT2Config(use_cache=False, **(small if toy else {{}}))).eval()

torch.manual_seed(0)
model = make()
ids = trtx.Input(min_shape=(1, 2), opt_shape=(4, 64), max_shape=(8, 128), dtype=torch.int64)
with torch.no_grad():
    model(torch.zeros(1, 8, dtype=torch.int64))
if warm:  # one-time costs of a first compile paid before the baseline (see --warm)
    trtx.compile(make(toy=True), [ids], progress=False)
    import gc
    gc.collect()
before = rss_mb()
peak = [before]
marks = []
if timeline:
    import logging
    from torch_tensorrt_rtx.dynamo.conversion import _engine_builder as builder

    class Marks(logging.Handler):
        def emit(self, record):
            marks.append((rss_mb() - before, record.getMessage()))

    log = logging.getLogger(builder.__name__)
    log.setLevel(logging.DEBUG)
    log.addHandler(Marks())
    log.propagate = False
    plain_write = builder._EngineWriter.write_chunk

    def write(self, data):
        how = "in place" if self.in_place else "the binding's copy"
        marks.append((rss_mb() - before, f"engine chunk {{len(data) / 2**20:.0f}} MB ({{how}})"))
        return plain_write(self, data)

    builder._EngineWriter.write_chunk = write
    plain_enter = builder.HeapTrimmer.__enter__

    def enter(self):
        marks.append((rss_mb() - before, "build_serialized_network_to_stream called"))
        return plain_enter(self)

    builder.HeapTrimmer.__enter__ = enter

build = {{"cpu": 0.0, "wall": 0.0, "faults": 0}}
import resource
from torch_tensorrt_rtx.dynamo import _compiler
plain_build = _compiler.build_engine

def timed_build(*args, **kwargs):
    start, clock = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    try:
        return plain_build(*args, **kwargs)
    finally:
        end = resource.getrusage(resource.RUSAGE_SELF)
        build["wall"] += time.perf_counter() - clock
        build["cpu"] += end.ru_utime + end.ru_stime - start.ru_utime - start.ru_stime
        build["faults"] += end.ru_minflt - start.ru_minflt

_compiler.build_engine = timed_build

def sample():
    while True:
        peak[0] = max(peak[0], rss_mb())
        time.sleep(0.005)

threading.Thread(target=sample, daemon=True).start()
compiled = trtx.compile(model, [ids], progress=False)
after = rss_mb()
time.sleep(0.02)
compile_peak, peak[0] = peak[0], after
if save:
    with tempfile.TemporaryDirectory() as tmp:
        trtx.save(compiled, os.path.join(tmp, "m.pt2"))
    time.sleep(0.02)
engine = sum(e.engine_bytes for e in compiled.compile_report.engines) / 2**20
phases = compiled.compile_report.phase_seconds
share = phases.get("partitioning", 0.0) / max(sum(phases.values()), 1e-9)
for above, what in marks:
    print(f"  {{above:6.0f}} MB  {{what}}")
print(json.dumps({{"model": name, "before_mb": before, "peak_mb": compile_peak, "after_mb": after, "engine_mb": engine,
                  "save_peak_mb": peak[0] if save else None, "partitioning_share": share, "build": build}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=["bert_base", "gpt2"])
    parser.add_argument("--save", action="store_true", help="also save the compiled program (.pt2)")
    parser.add_argument("--warm", action="store_true", help="baseline after a first toy compile (see above)")
    parser.add_argument("--timeline", action="store_true", help="resident size at each build phase and chunk")
    args = parser.parse_args()
    if args.warm:
        print("warmed processes: baseline after a one-layer toy compile (not the 1.5x target's measurement)")
    print(f"{'model':<10} {'engine MB':>9} {'compile peak MB':>15} {'ratio':>6} {'held after MB':>13} "
          f"{'save peak MB':>12} {'ratio':>6} {'partitioning':>12} {'build CPU s':>11} {'wall s':>6} {'faults':>7}")
    for name in args.models:
        flags = ["1" if on else "0" for on in (args.save, args.warm, args.timeline)]
        out = subprocess.run([sys.executable, "-c", CHILD.format(repo=str(REPO)), name, *flags],
                             capture_output=True, text=True, check=True).stdout
        lines = out.rstrip().splitlines()
        if args.timeline:
            print("\n".join(line for line in lines[:-1] if line.startswith("  ")))
        row = json.loads(lines[-1])
        above = row["peak_mb"] - row["before_mb"]
        held = row["after_mb"] - row["before_mb"]
        engine = row["engine_mb"]
        saved = "" if row["save_peak_mb"] is None else row["save_peak_mb"] - row["before_mb"]
        save_cells = f"{saved:>12.0f} {saved / engine:>6.2f}" if saved != "" else f"{'-':>12} {'-':>6}"
        print(f"{name:<10} {engine:>9.0f} {above:>15.0f} {above / engine:>6.2f} {held:>13.0f} {save_cells} "
              f"{row['partitioning_share']:>11.1%} {row['build']['cpu']:>11.2f} {row['build']['wall']:>6.2f} "
              f"{row['build']['faults'] / 1000:>6.0f}k", flush=True)


if __name__ == "__main__":
    main()
