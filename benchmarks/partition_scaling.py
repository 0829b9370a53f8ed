"""How partitioning scales with graph size: a BERT encoder (tiny width) of 2 to 32 layers.

Prints, per depth, the lowered graph's node count, the median CPU time (process time: robust on a
busy machine) over 3 runs of `partition()` and fusing its partitions into the graph (what one
compile does once, after one warm-up run), the
time per node, and that per-node time relative to the 2-layer graph (1.0 everywhere = linear).
Also the share of a whole compile that partitioning took (`compile_report.phase_seconds`).

    .venv/bin/python benchmarks/partition_scaling.py [--layers 2 4 8 16 32]
"""
from __future__ import annotations

import os
import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.py.models.zoo import import_torchvision  # noqa: E402,F401  (transformers imports torchvision)

import torch_tensorrt_rtx as trtx  # noqa: E402
from torch_tensorrt_rtx.dynamo._export import export_aten  # noqa: E402
from torch_tensorrt_rtx.dynamo._settings import CompilationSettings  # noqa: E402
from torch_tensorrt_rtx.dynamo.lowering import lower  # noqa: E402
from torch_tensorrt_rtx.dynamo.partitioning import partition  # noqa: E402

os.environ.setdefault("TORCH_TENSORRT_RTX_ENGINE_CACHE", "0")  # time real builds: no engine cache unless asked


def encoder(layers: int) -> torch.nn.Module:
    import_torchvision()
    from transformers import BertConfig, BertModel

    config = BertConfig(hidden_size=64, num_hidden_layers=layers, num_attention_heads=2, intermediate_size=128,
                        vocab_size=512, max_position_embeddings=64)
    return BertModel(config).eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, nargs="+", default=[2, 4, 8, 16, 32])
    args = parser.parse_args()
    torch.manual_seed(0)
    settings = CompilationSettings()
    base = None
    print(f"{'layers':>6} {'nodes':>6} {'partition CPU s':>16} {'us/node':>8} {'vs 2 layers':>11} {'share of compile':>16}")
    for layers in args.layers:
        model = encoder(layers)
        ids = torch.randint(0, 512, (2, 16))
        spec = trtx.Input(min_shape=(1, 16), opt_shape=(2, 16), max_shape=(8, 16), dtype=torch.int64)
        with torch.no_grad():
            lowered = lower(export_aten(model, [spec]).graph_module, settings.reduced_precision)
            nodes = len(lowered.graph.nodes)
            times = []
            for run in range(4):
                start = time.process_time()
                partition(lowered, settings).fuse()  # fuses in place: re-lower between runs
                if run:  # the first run is a warm-up
                    times.append(time.process_time() - start)
                lowered = lower(export_aten(model, [spec]).graph_module, settings.reduced_precision)
            compiled = trtx.compile(model, [spec], progress=False)
        phases = compiled.compile_report.phase_seconds
        share = phases.get("partitioning", 0.0) / max(sum(phases.values()), 1e-9)
        seconds = statistics.median(times)
        per_node = seconds / nodes * 1e6
        base = base or per_node
        print(f"{layers:>6} {nodes:>6} {seconds:>16.3f} {per_node:>8.1f} {per_node / base:>11.2f} {share:>15.1%}",
              flush=True)


if __name__ == "__main__":
    main()
