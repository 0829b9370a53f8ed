"""Recompile benchmark (not a test): a compile in a new process that finds its engines in the
engine cache, against the cold compile of the same model, also in a new process.

    .venv/bin/python benchmarks/recompile.py [--models resnet50 vit_b_16 bert_base gpt2 unet] [--keep DIR]

Per model, two fresh subprocesses share one new, empty cache directory: the first compiles cold
(and fills the cache), the second compiles the same model again. Each times `trtx.compile` only
(not the imports, nor building the model) and reports its phases. Prints cold s (which includes
storing the program cache entry: "store s"), recompile s and their ratio side by side (target
<= 0.3), whether the recompile hit the program cache (no torch.export at all) or only the engine
cache, and where the recompile's time goes. The models run
once each, in the order given; the big ones are slow on a 2-core machine.

A recompile that misses says why: the children log each program and engine key with its parts
(``key_parts_line``), and the parts that differ between the two runs are named. Every key covers
the package's Python sources, so an edit, checkout or merge in this tree's ``py/`` between the two
runs makes both caches miss, by design (the versions differ in ``sources=``). With the same keys,
it says whether the entries were in the directory after the cold run, and shows the caches' messages.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Runs in the child: build the model named by argv[1], time one compile with the cache in argv[2].
_CHILD = r"""
import json, sys, time
import torch
sys.path.insert(0, ROOT)
from tests.py.models.zoo import import_torchvision
torchvision = import_torchvision()
import torch_tensorrt_rtx as trtx

name, cache_dir = sys.argv[1], sys.argv[2]
# Each key with its parts, why a module has no program key, and what the caches did, on stderr:
# the parent compares the two runs' keys when the recompile misses.
import logging
to_stderr = logging.StreamHandler(sys.stderr)
to_stderr.setFormatter(logging.Formatter("%(name)s: %(message)s"))
for logger_name, level in (("torch_tensorrt_rtx.dynamo._program_key", logging.DEBUG),
                           ("torch_tensorrt_rtx.dynamo._engine_cache_key", logging.DEBUG),
                           ("torch_tensorrt_rtx._program_cache", logging.DEBUG),
                           ("torch_tensorrt_rtx.dynamo._engine_cache", logging.INFO)):
    logging.getLogger(logger_name).setLevel(level)
    logging.getLogger(logger_name).addHandler(to_stderr)
torch.manual_seed(0)
batch = dict(min_shape=(1, 3, 224, 224), opt_shape=(4, 3, 224, 224), max_shape=(8, 3, 224, 224))
text = dict(min_shape=(1, 2), opt_shape=(4, 64), max_shape=(8, 128), dtype=torch.int64, dim_names=("batch", "seq"))
inputs, kwarg_inputs = None, None
if name in ("resnet50", "vit_b_16"):
    model, inputs = getattr(torchvision.models, name)(), [trtx.Input(**batch)]
elif name == "bert_base":
    import transformers
    model = transformers.BertModel(transformers.BertConfig())
    kwarg_inputs = {"input_ids": trtx.Input(**text), "attention_mask": trtx.Input(**text)}
elif name == "gpt2":
    import transformers
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(use_cache=False))
    kwarg_inputs = {"input_ids": trtx.Input(**text)}
elif name == "unet":
    from diffusers import UNet2DConditionModel
    model = UNet2DConditionModel(
        sample_size=32, block_out_channels=(128, 256, 512), cross_attention_dim=512, attention_head_dim=8,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"))
    def batched(*shape, dtype=torch.float32):
        return trtx.Input(min_shape=(1, *shape), opt_shape=(4, *shape), max_shape=(8, *shape), dtype=dtype,
                          dim_names=("batch",) + (None,) * len(shape))
    kwarg_inputs = {"sample": batched(4, 32, 32), "timestep": batched(), "encoder_hidden_states": batched(77, 512)}
else:
    raise SystemExit(f"unknown model {name!r}")
model.eval()
start = time.perf_counter()
compiled = trtx.compile(model, inputs, kwarg_inputs=kwarg_inputs, engine_cache_dir=cache_dir, progress=False)
seconds = time.perf_counter() - start
report = compiled.compile_report
print(json.dumps({"seconds": seconds, "hits": report.engine_cache_hits, "engines": len(report.engines),
                  "program_hit": report.program_cache_hit, "phases": report.phase_seconds}))
"""

MODELS = ["resnet50", "vit_b_16", "bert_base", "gpt2", "unet"]


def _run(name: str, cache_dir: str) -> dict:
    env = dict(os.environ)
    env.pop("TORCH_TENSORRT_RTX_ENGINE_CACHE", None)  # the cache is what is measured
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "py"), str(ROOT), env.get("PYTHONPATH", "")])
    child = _CHILD.replace("sys.path.insert(0, ROOT)", f"sys.path.insert(0, {str(ROOT)!r})")
    done = subprocess.run([sys.executable, "-c", child, name, cache_dir], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{name}: the compile failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["keys"] = {"program": {}, "engine": {}}  # kind -> {key: {part: value}}
    others = []
    for line in done.stderr.splitlines():
        found = _KEY_LINE.search(line)
        if found:
            kind, key, parts = found.groups()
            result["keys"][kind][key] = dict(word.split(":", 1) for word in parts.split())
        elif "cache" in line.lower():
            others.append(line)
    # What the caches said (a refused or damaged entry, a lock timeout, an engine gone, no fast key):
    # shown when a recompile misses.
    result["cache_lines"] = others[-8:]
    return result


_KEY_LINE = re.compile(r"(program|engine) cache key ([0-9a-f]{64}) parts (.*)$")


def _key_differences(cold: dict, warm: dict) -> list:
    """Why the recompile's keys are not the cold run's: per kind of key, the parts that differ."""
    lines = []
    for kind in ("program", "engine"):
        before, after = cold["keys"][kind], warm["keys"][kind]
        if not before:
            if after or kind == "program":
                lines.append(f"the cold run computed no {kind} key")
            continue
        if kind == "program" and not after:
            lines.append("the recompile computed no program key (see its 'no fast key' message)")
        new = {key: parts for key, parts in after.items() if key not in before}
        if after and not new:
            stored = cold.get("stored")  # the directory listed after the cold run, when it was
            missing = [key[:16] for key in after if stored is not None and key not in stored]
            lines.append(f"{kind} keys: the same in both runs; " + (
                "not stored, removed or unreadable (see the cache messages)" if stored is None else
                f"no entry for {', '.join(missing)} in the directory after the cold run (not stored, or removed)"
                if missing else "their entries were there after the cold run (unreadable? see the cache messages)"))
        for key, parts in new.items():
            closest = max(before.values(), key=lambda old: sum(old.get(k) == v for k, v in parts.items()))
            differ = [k for k in parts if closest.get(k) != parts[k]]
            lines.append(f"{kind} key {key[:16]} is new; its parts that differ from the cold run's: {', '.join(differ)}")
            if "versions" in differ:
                lines.append(f"  versions: cold {closest.get('versions')}")
                lines.append(f"        recompile {parts['versions']}")
                if _sources(closest) != _sources(parts):
                    lines.append(f"  the package's Python sources changed between the two runs (an edit, checkout or "
                                 f"merge in {ROOT / 'py'} meanwhile): every key covers them, so this miss is by design")
    return lines


def _entry_keys(cache_dir: str) -> set:
    """The keys of the entries in the cache directory."""
    try:
        return {name.split(".")[0] for name in os.listdir(cache_dir) if name.endswith(".trtxcache")}
    except OSError:
        return set()


def _sources(parts: dict) -> str:
    return dict(item.partition("=")[::2] for item in parts.get("versions", "").split("|")).get("sources", "")


def _phases(result: dict) -> str:
    """The compile's phases, largest first; "other" is what no phase covers (the cache's own hashing
    and reads, compile's input handling)."""
    phases = dict(result["phases"], other=result["seconds"] - sum(result["phases"].values()))
    return ", ".join(f"{k} {v:.1f}" for k, v in sorted(phases.items(), key=lambda kv: -kv[1]) if v >= 0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=MODELS, choices=MODELS)
    parser.add_argument("--keep", help="use this cache directory (it must be empty) and keep it afterwards")
    args = parser.parse_args()
    print(f"{'model':<10} {'cold s':>8} {'store s':>8} {'recompile s':>12} {'ratio':>6} {'hits':>5} {'program':>8}  "
          "recompile phases (s)")
    for name in args.models:
        with tempfile.TemporaryDirectory(prefix="trtx-engine-cache-") as scratch:
            cache_dir = os.path.join(args.keep or scratch, name)
            cold = _run(name, cache_dir)
            cold["stored"] = _entry_keys(cache_dir)  # what the recompile should find
            warm = _run(name, cache_dir)
        ratio = warm["seconds"] / cold["seconds"]
        store = cold["phases"].get("program cache store", 0.0)
        print(f"{name:<10} {cold['seconds']:8.1f} {store:8.2f} {warm['seconds']:12.2f} {ratio:6.2f} "
              f"{warm['hits']:>2}/{warm['engines']:<2} {'hit' if warm['program_hit'] else 'miss':>8}  {_phases(warm)}",
              flush=True)
        print(f"{'':<10} cold phases: {_phases(cold)}", flush=True)
        if warm["hits"] < warm["engines"] or not warm["program_hit"]:
            for line in _key_differences(cold, warm):
                print(f"{'':<10} {line}", flush=True)
            for run, result in (("cold", cold), ("recompile", warm)):
                for line in result["cache_lines"] or ["(no cache messages on stderr)"]:
                    print(f"{'':<10} {run}: {line}", flush=True)


if __name__ == "__main__":
    main()
