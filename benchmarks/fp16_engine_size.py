"""Benchmark (not a test): fp16 engine size, ours against the ONNX route's `.half()` engine.

    .venv/bin/python benchmarks/fp16_engine_size.py [--models bert_base,gpt2] [--routes ours,onnx]

Ours: torch_tensorrt_rtx.compile(model, ..., enabled_precisions={torch.float16}) of the fp32 model.
The ONNX route: torch.onnx.export(model.half(), dynamo=True) -> OnnxParser -> build_serialized_network
with one profile over the same ranges. Also printed: the weights' bytes at fp16 (each tied tensor
once), the floor any fp16 engine of the model is measured against. Target: ours within 5% of the
ONNX route. Models have random weights from their default configs (no downloads); inputs are
input_ids (+ attention_mask for BERT), batch 1..8, sequence 2..128. Each build runs once.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Callable, Dict, List, Tuple

os.environ.setdefault("TORCH_TENSORRT_RTX_ENGINE_CACHE", "0")  # time real builds: no engine cache unless asked


REPO = Path(__file__).resolve().parents[1]
sys.path.append(str(REPO))  # tests.py.models.zoo; the package comes from PYTHONPATH or the install

import torch  # noqa: E402

RANGE = ((1, 2), (4, 64), (8, 128))


class Positional(torch.nn.Module):
    """The model called with keyword inputs `names` given positionally; returns its first output."""

    def __init__(self, model: torch.nn.Module, names: List[str]) -> None:
        super().__init__()
        self.model, self.names = model, names

    def forward(self, *inputs):
        out = self.model(**dict(zip(self.names, inputs)))
        return out[0]


def bert_base() -> Tuple[torch.nn.Module, List[str]]:
    from transformers import BertConfig, BertModel

    return Positional(BertModel(BertConfig()).eval(), ["input_ids", "attention_mask"]), ["input_ids", "attention_mask"]


def gpt2() -> Tuple[torch.nn.Module, List[str]]:
    from transformers import GPT2Config, GPT2LMHeadModel

    return Positional(GPT2LMHeadModel(GPT2Config(use_cache=False)).eval(), ["input_ids"]), ["input_ids"]


MODELS: Dict[str, Callable[[], Tuple[torch.nn.Module, List[str]]]] = {"bert_base": bert_base, "gpt2": gpt2}


def fp16_weight_bytes(module: torch.nn.Module) -> int:
    seen = {}
    for t in list(module.parameters()) + list(module.buffers()):
        if t.is_floating_point():
            seen[t.data_ptr()] = t.numel() * 2
    return sum(seen.values())


def ours(module: torch.nn.Module, names: List[str]) -> int:
    import torch_tensorrt_rtx as trtx

    specs = [trtx.Input(min_shape=RANGE[0], opt_shape=RANGE[1], max_shape=RANGE[2], dtype=torch.int64,
                        dim_names=("batch", "seq")) for _ in names]
    compiled = trtx.compile(module, specs, progress=False, enabled_precisions={torch.float16})
    return sum(e.engine_bytes for e in compiled.compile_report.engines)


def onnx_route(module: torch.nn.Module, names: List[str]) -> int:
    import tensorrt_rtx as trt

    module = module.half()
    batch, seq = torch.export.Dim("batch", min=RANGE[0][0], max=RANGE[2][0]), torch.export.Dim("seq", min=RANGE[0][1],
                                                                                               max=RANGE[2][1])
    args = tuple(torch.ones(RANGE[1], dtype=torch.int64) for _ in names)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.onnx")
        torch.onnx.export(module, args, path, dynamo=True, input_names=names,
                          dynamic_shapes=(tuple({0: batch, 1: seq} for _ in names),))
        logger = trt.Logger(trt.Logger.ERROR)
        builder = trt.Builder(logger)
        network = builder.create_network(0)
        parser = trt.OnnxParser(network, logger)
        if not parser.parse_from_file(path):
            raise RuntimeError("OnnxParser: " + "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors)))
        config = builder.create_builder_config()
        profile = builder.create_optimization_profile()
        for name in names:
            profile.set_shape(name, *RANGE)
        config.add_optimization_profile(profile)
        engine = builder.build_serialized_network(network, config)
        return engine.nbytes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="bert_base,gpt2")
    parser.add_argument("--routes", default="ours,onnx")
    args = parser.parse_args()
    from tests.py.models.zoo import import_torchvision

    import_torchvision()
    routes = {"ours": ours, "onnx": onnx_route}
    print(f"{'model':10s} {'fp16 weights MB':>16s} " + " ".join(f"{r + ' MB':>10s}" for r in args.routes.split(","))
          + "   ours / onnx")
    for name in args.models.split(","):
        sizes = {}
        for route in args.routes.split(","):
            torch.manual_seed(0)
            module, names = MODELS[name]()
            weights = fp16_weight_bytes(module)
            sizes[route] = routes[route](module, names)
        ratio = f"{sizes['ours'] / sizes['onnx']:.3f}" if len(sizes) == 2 else "-"
        print(f"{name:10s} {weights / 2**20:16.1f} " + " ".join(f"{b / 2**20:10.1f}" for b in sizes.values())
              + f"   {ratio}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
