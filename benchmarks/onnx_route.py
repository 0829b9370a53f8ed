"""Benchmark (not a test): torch_tensorrt_rtx.compile against NVIDIA's documented ONNX route, in one process.

    .venv/bin/python benchmarks/onnx_route.py [--dtype float16] [--models resnet50,bert_base] [--pairs 3]

The ONNX route, as TensorRT-RTX documents it for a PyTorch model:
  torch.onnx.export(model, args, path, dynamo=True, dynamic_shapes=...)   (export s)
  tensorrt_rtx.OnnxParser(network).parse_from_file(path)                  (parse s)
  builder.build_serialized_network(network, config) with one optimization profile covering the
  same (min, opt, max) shapes as ours                                      (build s)
Ours: torch_tensorrt_rtx.compile(model, [Input(min, opt, max)], progress=False), end to end;
its CompileReport.phase_seconds split it into torch.export, decompositions, the TensorRT-RTX
build and "ours" (lowering, partitioning, conversion, packaging and anything unaccounted for).

Models, all built from configs with random weights (no downloads), each behind a wrapper that
takes positional tensors and returns a tuple, the same module for both routes:
  resnet50   torchvision resnet50, 3x224x224, batch 1..8
  vit_b_16   torchvision vit_b_16, 3x224x224, batch 1..8
  bert_base  transformers BertModel(BertConfig()), input_ids + attention_mask, batch 1..8, seq 2..128
  gpt2       transformers GPT2LMHeadModel(GPT2Config(use_cache=False)), input_ids, batch 1..8, seq 2..128
  unet       diffusers UNet2DConditionModel, block_out_channels (128, 256, 512), 4x32x32 latents,
             77x512 text states, batch 1..8

--dtype float16: the ONNX route exports `model.half()` (TensorRT-RTX networks are strongly typed,
so a float16 engine needs a float16 ONNX graph); ours compiles the float32 model with
enabled_precisions={torch.float16}, the option a user of this package sets.

Method: one untimed warm-up of both routes on a small convolutional model (one-time imports and
setup), then per model --pairs rounds of (ours, ONNX route), the order alternating between
rounds so that drifting load on a shared machine hits both alike. The ratio printed per model is
the median over rounds of ours / ONNX route. A full garbage collection runs, untimed, before and
after each route, so neither pays for the other's garbage; the collector's pauses inside our
compile are listed with its phases. Writes benchmarks/results/onnx_route_<dtype>.md.
"""
from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, List, NamedTuple, Tuple

os.environ.setdefault("TORCH_TENSORRT_RTX_ENGINE_CACHE", "0")  # time real builds: no engine cache unless asked


REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "py"))

import torch  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"


class Case(NamedTuple):
    module: torch.nn.Module
    names: List[str]  # input names, positional order
    ranges: List[Tuple[Tuple[int, ...], Tuple[int, ...], Tuple[int, ...]]]  # (min, opt, max) per input
    dtypes: List[torch.dtype]
    dynamic: List[Dict[int, str]]  # per input: dim -> dim name (one torch.export.Dim per name)


class _Positional(torch.nn.Module):
    """`model` called with keyword inputs named `names`, given positionally; returns a tuple of tensors."""

    def __init__(self, model: torch.nn.Module, names: List[str], **fixed: Any) -> None:
        super().__init__()
        self.model, self.names, self.fixed = model, names, fixed

    def forward(self, *inputs: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        out = self.model(**dict(zip(self.names, inputs)), **self.fixed)
        if isinstance(out, torch.Tensor):
            return (out,)
        return tuple(v for v in (out.values() if hasattr(out, "values") else out) if isinstance(v, torch.Tensor))


def _import_torchvision():
    from tests.py.models.zoo import import_torchvision

    return import_torchvision()


def _image_case(model: torch.nn.Module) -> Case:
    return Case(_Positional(model, ["x"]), ["x"], [((1, 3, 224, 224), (4, 3, 224, 224), (8, 3, 224, 224))],
                [torch.float32], [{0: "batch"}])


def resnet50() -> Case:
    return _image_case(_import_torchvision().models.resnet50())


def vit_b_16() -> Case:
    return _image_case(_import_torchvision().models.vit_b_16())


_TEXT = ((1, 2), (4, 64), (8, 128))


def bert_base() -> Case:
    _import_torchvision()
    from transformers import BertConfig, BertModel

    names = ["input_ids", "attention_mask"]
    return Case(_Positional(BertModel(BertConfig()), names), names, [_TEXT, _TEXT], [torch.int64] * 2,
                [{0: "batch", 1: "seq"}] * 2)


def gpt2() -> Case:
    _import_torchvision()
    from transformers import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(use_cache=False))
    return Case(_Positional(model, ["input_ids"]), ["input_ids"], [_TEXT], [torch.int64], [{0: "batch", 1: "seq"}])


def unet() -> Case:
    _import_torchvision()
    from diffusers import UNet2DConditionModel

    model = UNet2DConditionModel(
        sample_size=32, block_out_channels=(128, 256, 512), cross_attention_dim=512, attention_head_dim=8,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"))
    names = ["sample", "timestep", "encoder_hidden_states"]

    def batched(*shape):
        return tuple((b, *shape) for b in (1, 4, 8))

    return Case(_Positional(model, names, return_dict=False), names,
                [batched(4, 32, 32), batched(), batched(77, 512)], [torch.float32] * 3, [{0: "batch"}] * 3)


def _warm_up_model() -> Case:
    nn = torch.nn
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 14 * 14, 4))
    return Case(_Positional(model, ["input"]), ["input"], [((1, 3, 16, 16), (2, 3, 16, 16), (4, 3, 16, 16))],
                [torch.float32], [{0: "batch"}])


MODELS: Dict[str, Callable[[], Case]] = {
    "resnet50": resnet50, "vit_b_16": vit_b_16, "bert_base": bert_base, "gpt2": gpt2, "unet": unet,
}


def _example(shape: Tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    if dtype == torch.int64:
        return torch.ones(shape, dtype=dtype)
    return torch.randn(shape).to(dtype)


def _dims(case: Case):
    named: Dict[str, Any] = {}
    shapes = []
    for (lo, _opt, hi), dims in zip(case.ranges, case.dynamic):
        shapes.append({d: named.setdefault(name, torch.export.Dim(name, min=lo[d], max=hi[d]))
                       for d, name in dims.items()})
    return (tuple(shapes),)  # forward(*inputs): one entry, for the packed tuple


def run_ours(case: Case, dtype: torch.dtype) -> Dict[str, Any]:
    import torch_tensorrt_rtx as trtx

    specs = [trtx.Input(min_shape=lo, opt_shape=opt, max_shape=hi, dtype=dt,
                        dim_names=tuple(dims.get(d) for d in range(len(lo))))
             for (lo, opt, hi), dt, dims in zip(case.ranges, case.dtypes, case.dynamic)]
    precisions = {torch.float16} if dtype == torch.float16 else set()
    with _CollectorPauses() as pauses:
        start = time.perf_counter()
        compiled = trtx.compile(case.module, specs, progress=False, enabled_precisions=precisions)
        seconds = time.perf_counter() - start
    report = compiled.compile_report
    phases = dict(report.phase_seconds)
    build = phases.get("engine build", 0.0)
    parts = {"export": phases.get("export", 0.0), "decompositions": phases.get("decompositions", 0.0),
             "build": build}
    parts["ours"] = seconds - sum(parts.values())
    own = seconds - parts["export"] - build  # issue 21's "own phases": everything but torch.export and the build
    return {"seconds": seconds, "parts": parts, "own": own, "phases": phases,
            "engine_bytes": sum(e.engine_bytes for e in report.engines), "engines": len(report.engines),
            "fallback_ops": sum(report.fallback_ops.values()), "gc": pauses.summary()}


class _CollectorPauses:
    """Garbage-collector pauses while the block runs (gc.callbacks): seconds and count, young
    (generations 0 and 1) and full (generation 2) apart. They fall in whichever phase was running."""

    def __init__(self) -> None:
        self.young, self.full, self._start = [], [], 0.0

    def _callback(self, phase: str, info: Dict[str, Any]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            (self.full if info["generation"] == 2 else self.young).append(time.perf_counter() - self._start)

    def __enter__(self) -> "_CollectorPauses":
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: Any) -> None:
        gc.callbacks.remove(self._callback)

    def summary(self) -> str:
        return (f"young {sum(self.young):.2f} s ({len(self.young)}), full {sum(self.full):.2f} s "
                f"({len(self.full)})")


def run_onnx_route(case: Case, dtype: torch.dtype) -> Dict[str, Any]:
    import tensorrt_rtx as trt

    module = case.module.half() if dtype == torch.float16 else case.module
    dtypes = [dtype if dt.is_floating_point else dt for dt in case.dtypes]
    args = tuple(_example(opt, dt) for (_lo, opt, _hi), dt in zip(case.ranges, dtypes))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.onnx")
        start = time.perf_counter()
        torch.onnx.export(module, args, path, dynamo=True, dynamic_shapes=_dims(case), input_names=case.names,
                          verbose=False)
        exported = time.perf_counter()
        logger = trt.Logger(trt.Logger.ERROR)
        builder = trt.Builder(logger)
        network = builder.create_network(0)
        parser = trt.OnnxParser(network, logger)
        if not parser.parse_from_file(path):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise RuntimeError(f"OnnxParser failed: {errors}")
        parsed = time.perf_counter()
        config = builder.create_builder_config()
        profile = builder.create_optimization_profile()
        for i in range(network.num_inputs):
            name = network.get_input(i).name
            lo, opt, hi = case.ranges[case.names.index(name)]
            profile.set_shape(name, lo, opt, hi)
        config.add_optimization_profile(profile)
        serialized = builder.build_serialized_network(network, config)
        end = time.perf_counter()
    if serialized is None:
        raise RuntimeError("build_serialized_network failed on the ONNX route")
    if dtype == torch.float16:
        case.module.float()  # back for our route
    return {"seconds": end - start, "parts": {"export": exported - start, "parse": parsed - exported,
                                              "build": end - parsed}, "engine_bytes": serialized.nbytes}


def _one(route: Callable, case: Case, dtype: torch.dtype) -> Dict[str, Any]:
    gc.collect()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        result = route(case, dtype)
    gc.collect()
    return result


def measure(name: str, dtype: torch.dtype, pairs: int) -> Dict[str, Any]:
    torch.manual_seed(0)
    case = MODELS[name]()
    case.module.eval()
    ours, onnx = [], []
    for k in range(pairs):
        order = [(run_ours, ours), (run_onnx_route, onnx)]
        for route, into in (order if k % 2 == 0 else order[::-1]):
            into.append(_one(route, case, dtype))
        print(f"  {name} round {k + 1}: ours {ours[-1]['seconds']:.1f} s, ONNX route {onnx[-1]['seconds']:.1f} s",
              flush=True)
    ratios = [a["seconds"] / b["seconds"] for a, b in zip(ours, onnx)]
    middle = sorted(range(pairs), key=lambda i: ratios[i])[pairs // 2]  # the median round, for its phases
    return {"model": name, "ratio": statistics.median(ratios), "ratios": ratios, "ours": ours[middle],
            "onnx": onnx[middle]}


def _share(part: float, total: float) -> str:
    return f"{part:.2f} ({100 * part / total:.0f}%)"


def render(rows: List[Dict[str, Any]], dtype_name: str, pairs: int) -> str:
    ratios = ["| model | ours / ONNX | rounds | ours s | ONNX s | ours engine MB | ONNX engine MB | engines | "
              "fallback ops |", "|---|---|---|---|---|---|---|---|---|"]
    shares = ["| model | export | decompositions | build | ours | own (all but export and build) | ONNX: export | "
              "parse | build |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        o, x = r["ours"], r["onnx"]
        p, q = o["parts"], x["parts"]
        ratios.append(f"| {r['model']} | **{r['ratio']:.2f}** | {', '.join(f'{v:.2f}' for v in r['ratios'])} | "
                      f"{o['seconds']:.1f} | {x['seconds']:.1f} | {o['engine_bytes'] / 2**20:.0f} | "
                      f"{x['engine_bytes'] / 2**20:.0f} | {o['engines']} | {o['fallback_ops']} |")
        shares.append(f"| {r['model']} | " + " | ".join(
            [_share(p[k], o["seconds"]) for k in ("export", "decompositions", "build", "ours")]
            + [_share(o["own"], o["seconds"])] + [_share(q[k], x["seconds"]) for k in ("export", "parse", "build")]) + " |")
    lines = [f"# torch_tensorrt_rtx.compile vs the ONNX route, {dtype_name}", "",
             f"`benchmarks/onnx_route.py --dtype {dtype_name} --pairs {pairs}`; torch {torch.__version__}, "
             f"{platform.machine()}, {os.cpu_count()} CPUs (shared with other jobs: ratios are of interleaved "
             "rounds, absolute seconds depend on the load). Ratio: median over rounds of ours / ONNX route; "
             "the other columns are the median round's.", ""] + ratios
    lines += ["", "Where our compile's time goes (seconds, share of our compile): torch.export, decompositions "
              "(node by node; run_decompositions where a program needs the retrace), the TensorRT-RTX build, "
              "and ours (lowering, partitioning, conversion, packaging, unaccounted); own is everything but "
              "torch.export and the build (issue 21: at most 10%). The ONNX route: "
              "torch.onnx.export, parse, build.", ""] + shares
    lines += ["", "Our phases (CompileReport.phase_seconds) of the median round, and the garbage collector's "
              "pauses during the compile (young and full collections; they count in whichever phase ran):", ""]
    for r in rows:
        detail = ", ".join(f"{k} {v:.2f}" for k, v in r["ours"]["phases"].items())
        lines.append(f"- {r['model']}: {detail}; collector pauses within: {r['ours']['gc']}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16"])
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated subset of {', '.join(MODELS)}")
    parser.add_argument("--pairs", type=int, default=3, help="interleaved rounds per model (default 3)")
    parser.add_argument("--no-write", action="store_true", help="print only; do not write benchmarks/results")
    options = parser.parse_args()
    names = options.models.split(",")
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        raise SystemExit(f"unknown model(s) {unknown}; expected a subset of {', '.join(MODELS)}")
    if options.pairs < 1:
        raise SystemExit(f"--pairs must be at least 1, got {options.pairs}")
    dtype = getattr(torch, options.dtype)
    warm = _warm_up_model()
    for route in (run_ours, run_onnx_route):
        _one(route, warm, dtype)
    rows = []
    for name in names:
        try:
            rows.append(measure(name, dtype, options.pairs))
        except Exception as exc:  # noqa: BLE001 - report it and go on with the other models
            print(f"{name}: FAILED: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", flush=True)
            continue
        last = rows[-1]
        shares = ", ".join(f"{k} {100 * v / last['ours']['seconds']:.0f}%" for k, v in last["ours"]["parts"].items())
        print(f"{name}: ours / ONNX route {last['ratio']:.2f} (rounds: "
              f"{', '.join(f'{v:.2f}' for v in last['ratios'])}); ours: {shares}; own phases (all but export "
              f"and build) {100 * last['ours']['own'] / last['ours']['seconds']:.0f}%", flush=True)
    text = render(rows, options.dtype, options.pairs)
    print(text)
    if not options.no_write:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"onnx_route_{options.dtype}.md").write_text(text)


if __name__ == "__main__":
    main()
