"""Compile popular models that are NOT in the acceptance zoo and report what falls back.

A development tool (not a test): each model is built from code or a tiny config with random
weights (no downloads), compiled, and checked with torch_tensorrt_rtx.verify against eager PyTorch.
One line per model, entry point and precision, then the fallback ops ranked by how many models
they hit. Entry points: "aot" is torch_tensorrt_rtx.compile with the model's dynamic ranges
(verified at the example batch and at batch 3); "torch.compile" is torch.compile(backend=
"tensorrt_rtx", dynamic=True), called at the example batch and at batch 3 ("builds 2/1": two
builds where the first call made one graph, i.e. the second batch recompiled).

    .venv/bin/python benchmarks/model_sweep.py                    # every model, aot, fp32
    .venv/bin/python benchmarks/model_sweep.py regnet levit       # names containing these words
    .venv/bin/python benchmarks/model_sweep.py --json out.json    # also save the rows
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/model_sweep.py --new --entry both --precision both \\
        --markdown benchmarks/results/model_sweep_new_families.md   # the issue-19 families, whole matrix
"""
from __future__ import annotations

import os
import argparse
import collections
import json
import logging
import signal
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.py.models.zoo import import_torchvision  # noqa: E402  (the CPU torchvision workaround)
from benchmarks.sweep_families import FAMILIES, Sweep  # noqa: E402

import torch_tensorrt_rtx as trtx  # noqa: E402

os.environ.setdefault("TORCH_TENSORRT_RTX_ENGINE_CACHE", "0")  # time real builds: no engine cache unless asked


def _image(model, side=64, batch=2, channels=3, dynamic=False) -> Sweep:
    return Sweep(model.eval(), [torch.randn(batch, channels, side, side)], {}, dynamic)


def _tv(name, side=64, dynamic=False, **kwargs) -> Callable[[], Sweep]:
    def build():
        return _image(getattr(import_torchvision().models, name)(weights=None, **kwargs), side, dynamic=dynamic)
    return build


def _video(name) -> Callable[[], Sweep]:
    def build():
        model = getattr(import_torchvision().models.video, name)(weights=None)
        return Sweep(model.eval(), [torch.randn(1, 3, 4, 32, 32)], {})
    return build


def _tv_seg(name, side=64) -> Callable[[], Sweep]:
    def build():
        model = getattr(import_torchvision().models.segmentation, name)(weights=None, weights_backbone=None,
                                                                       num_classes=4)
        return _image(model, side)
    return build


def _timm(name, side=64, dynamic=False, **kwargs) -> Callable[[], Sweep]:
    def build():
        import_torchvision()
        import timm
        return _image(timm.create_model(name, pretrained=False, **kwargs), side, dynamic=dynamic)
    return build


def _timm_class(module, cls, side=64, dynamic=False, **kwargs) -> Callable[[], Sweep]:
    def build():
        import_torchvision()
        import importlib
        return _image(getattr(importlib.import_module(f"timm.models.{module}"), cls)(**kwargs), side, dynamic=dynamic)
    return build


class FirstOutput(torch.nn.Module):
    """A transformers/diffusers model's first output tensor (return_dict=False)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, *args, **kwargs):
        return self.model(*args, **kwargs, return_dict=False)[0]


class TextFirstOutput(FirstOutput):
    """Named text inputs: torch.export cannot match dynamic shapes to a **kwargs forward."""

    def forward(self, input_ids, attention_mask=None):
        kwargs = {} if attention_mask is None else {"attention_mask": attention_mask}
        return self.model(input_ids=input_ids, **kwargs, return_dict=False)[0]


def _hf_text(config_cls, model_cls, vocab=100, mask=True, dynamic=False, **config) -> Callable[[], Sweep]:
    def build():
        import_torchvision()
        import transformers
        cfg = getattr(transformers, config_cls)(vocab_size=vocab, **config)
        model = getattr(transformers, model_cls)(cfg)
        ids = torch.randint(0, vocab, (2, 16))
        kwargs = {"input_ids": ids}
        if mask:
            attention = torch.ones(2, 16, dtype=torch.int64)
            attention[0, 10:] = 0
            kwargs["attention_mask"] = attention
        return Sweep(TextFirstOutput(model).eval(), [], kwargs, dynamic)
    return build


def _hf_pixels(config_cls, model_cls, side=32, channels=3, **config) -> Callable[[], Sweep]:
    def build():
        import_torchvision()
        import transformers
        model = getattr(transformers, model_cls)(getattr(transformers, config_cls)(**config))
        return Sweep(FirstOutput(model).eval(), [torch.randn(2, channels, side, side)], {})
    return build


def _small_llm(**extra):
    return dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, max_position_embeddings=64, use_cache=False, **extra)


def _bart_encoder() -> Sweep:
    import_torchvision()
    from transformers import BartConfig, BartModel
    cfg = BartConfig(vocab_size=100, d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
                     decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=64)
    encoder = BartModel(cfg).get_encoder()
    return Sweep(FirstOutput(encoder).eval(), [], {"input_ids": torch.randint(0, 100, (2, 16)),
                                                   "attention_mask": torch.ones(2, 16, dtype=torch.int64)})


def _hf_audio(config_cls, model_cls) -> Callable[[], Sweep]:
    def build():
        import_torchvision()
        import transformers
        cfg = getattr(transformers, config_cls)(
            hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, conv_dim=(16, 16),
            conv_stride=(5, 2), conv_kernel=(10, 3), num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
            do_stable_layer_norm=True)
        return Sweep(FirstOutput(getattr(transformers, model_cls)(cfg)).eval(), [torch.randn(2, 800)], {})
    return build


def _clip_vision() -> Sweep:
    return _hf_pixels("CLIPVisionConfig", "CLIPVisionModel", side=32, hidden_size=32, intermediate_size=64,
                      num_hidden_layers=2, num_attention_heads=2, image_size=32, patch_size=8)()


def _unet2d() -> Sweep:
    import_torchvision()
    from diffusers import UNet2DModel
    model = UNet2DModel(sample_size=16, in_channels=3, out_channels=3, layers_per_block=1,
                        block_out_channels=(32, 64), down_block_types=("DownBlock2D", "AttnDownBlock2D"),
                        up_block_types=("AttnUpBlock2D", "UpBlock2D"), norm_num_groups=32)
    return Sweep(FirstOutput(model).eval(), [torch.randn(2, 3, 16, 16), torch.tensor([10.0, 500.0])], {})


def _dit() -> Sweep:
    import_torchvision()
    from diffusers import DiTTransformer2DModel
    model = DiTTransformer2DModel(num_attention_heads=2, attention_head_dim=16, in_channels=4, out_channels=4,
                                  num_layers=2, sample_size=8, patch_size=2, num_embeds_ada_norm=10)
    return Sweep(FirstOutput(model).eval(), [torch.randn(2, 4, 8, 8)],
                 {"timestep": torch.tensor([3, 700]), "class_labels": torch.tensor([1, 7])})


MODELS: Dict[str, Callable[[], Sweep]] = {
    # torchvision
    "tv.regnet_y_400mf": _tv("regnet_y_400mf", dynamic=True),
    "tv.shufflenet_v2_x0_5": _tv("shufflenet_v2_x0_5"),
    "tv.squeezenet1_0": _tv("squeezenet1_0"),
    "tv.densenet121": _tv("densenet121", side=32),
    "tv.mnasnet0_5": _tv("mnasnet0_5"),
    "tv.googlenet": _tv("googlenet", aux_logits=False, init_weights=False),
    "tv.efficientnet_v2_s": _tv("efficientnet_v2_s"),
    "tv.maxvit_t": _tv("maxvit_t", side=224),
    "tv.lraspp_mobilenet_v3_large": _tv_seg("lraspp_mobilenet_v3_large"),
    "tv.deeplabv3_mobilenet_v3_large": _tv_seg("deeplabv3_mobilenet_v3_large"),
    "tv.fcn_resnet50": _tv_seg("fcn_resnet50"),
    "tv.vgg11": _tv("vgg11", side=32, dynamic=True),
    "tv.alexnet": _tv("alexnet", side=64),
    # timm
    "timm.efficientnet_b0": _timm("efficientnet_b0"),
    "timm.regnety_002": _timm("regnety_002", dynamic=True),
    "timm.levit_128s": _timm("levit_128s", side=224),
    "timm.poolformer_s12": _timm("poolformer_s12"),
    "timm.convnextv2_atto": _timm("convnextv2_atto"),
    "timm.mixer": _timm_class("mlp_mixer", "MlpMixer", img_size=64, patch_size=16, num_blocks=2, embed_dim=64),
    "timm.coat_lite_tiny": _timm("coat_lite_tiny", img_size=64),
    "timm.edgenext_xx_small": _timm("edgenext_xx_small"),
    "timm.fastvit_t8": _timm("fastvit_t8"),
    "timm.vit_small_patch16_224": _timm("vit_small_patch16_224", depth=2, img_size=64, dynamic=True),
    "timm.ghostnet_100": _timm("ghostnet_100"),
    "timm.dla34": _timm("dla34"),
    "timm.rexnet_100": _timm("rexnet_100"),
    "timm.repvgg_a0": _timm("repvgg_a0"),
    "timm.res2net50_26w_4s": _timm("res2net50_26w_4s"),
    "timm.cspresnet50": _timm("cspresnet50"),
    "timm.nf_resnet26": _timm("nf_resnet26"),
    "timm.beit": _timm_class("beit", "Beit", img_size=64, patch_size=16, embed_dim=64, depth=2, num_heads=2,
                             use_rel_pos_bias=True),
    "timm.xcit_nano": _timm("xcit_nano_12_p16_224", img_size=64, depth=2),
    "timm.pvt_v2_b0": _timm("pvt_v2_b0"),
    "timm.mobilevit_xxs": _timm("mobilevit_xxs"),
    "timm.cait": _timm_class("cait", "Cait", img_size=64, patch_size=16, embed_dim=64, depth=2, num_heads=2),
    "timm.hrnet_w18_small": _timm("hrnet_w18_small"),
    "timm.gcvit_xxtiny": _timm("gcvit_xxtiny", img_size=64),
    "timm.eva02_tiny": _timm("eva02_tiny_patch14_224", side=56, img_size=56, depth=2),
    "timm.twins_svt_small": _timm("twins_svt_small", depths=(1, 1, 1, 1)),
    "timm.inception_v3": _timm("inception_v3", side=96),
    "tv.resnext50_32x4d": _tv("resnext50_32x4d"),
    "tv.mobilenet_v2": _tv("mobilenet_v2", dynamic=True),
    "tv.inception_v3": _tv("inception_v3", side=96, aux_logits=False, init_weights=False),
    "tv.swin_v2_t": _tv("swin_v2_t", side=64),
    "tv.r3d_18": _video("r3d_18"),
    "tv.mc3_18": _video("mc3_18"),
    # transformers
    "hf.roberta": _hf_text("RobertaConfig", "RobertaModel", hidden_size=32, num_hidden_layers=2,
                           num_attention_heads=2, intermediate_size=64, max_position_embeddings=64, dynamic=True),
    "hf.albert": _hf_text("AlbertConfig", "AlbertModel", embedding_size=16, hidden_size=32, num_hidden_layers=2,
                          num_attention_heads=2, intermediate_size=64, max_position_embeddings=64),
    "hf.electra": _hf_text("ElectraConfig", "ElectraModel", embedding_size=16, hidden_size=32,
                           num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                           max_position_embeddings=64),
    "hf.mobilebert": _hf_text("MobileBertConfig", "MobileBertModel", hidden_size=32, embedding_size=16,
                              num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                              intra_bottleneck_size=16, true_hidden_size=16, max_position_embeddings=64),
    "hf.deberta_v2": _hf_text("DebertaV2Config", "DebertaV2Model", hidden_size=32, num_hidden_layers=2,
                              num_attention_heads=2, intermediate_size=64, max_position_embeddings=64),
    "hf.bart_encoder": _bart_encoder,
    "hf.mistral": _hf_text("MistralConfig", "MistralModel", **_small_llm()),
    "hf.qwen2": _hf_text("Qwen2Config", "Qwen2Model", dynamic=True, **_small_llm()),
    "hf.phi": _hf_text("PhiConfig", "PhiModel", **_small_llm()),
    "hf.gpt_neox": _hf_text("GPTNeoXConfig", "GPTNeoXModel", hidden_size=32, intermediate_size=64,
                            num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=64, use_cache=False),
    "hf.opt": _hf_text("OPTConfig", "OPTModel", hidden_size=32, ffn_dim=64, num_hidden_layers=2,
                       num_attention_heads=2, word_embed_proj_dim=32, max_position_embeddings=64, use_cache=False),
    "hf.clip_text": _hf_text("CLIPTextConfig", "CLIPTextModel", hidden_size=32, intermediate_size=64,
                             num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=64),
    "hf.clip_vision": _clip_vision,
    "hf.bloom": _hf_text("BloomConfig", "BloomModel", hidden_size=32, n_layer=2, n_head=4, use_cache=False),
    "hf.falcon": _hf_text("FalconConfig", "FalconModel", hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                          use_cache=False),
    "hf.gemma": _hf_text("GemmaConfig", "GemmaModel", head_dim=8, **_small_llm()),
    "hf.gemma2": _hf_text("Gemma2Config", "Gemma2Model", head_dim=8, **_small_llm()),
    "hf.gpt_bigcode": _hf_text("GPTBigCodeConfig", "GPTBigCodeModel", n_embd=32, n_layer=2, n_head=4, use_cache=False),
    "hf.xlm_roberta": _hf_text("XLMRobertaConfig", "XLMRobertaModel", hidden_size=32, num_hidden_layers=2,
                               num_attention_heads=2, intermediate_size=64, max_position_embeddings=64),
    "hf.squeezebert": _hf_text("SqueezeBertConfig", "SqueezeBertModel", hidden_size=32, embedding_size=32,
                               num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                               max_position_embeddings=64, q_groups=2, k_groups=2, v_groups=2,
                               post_attention_groups=2, intermediate_groups=2, output_groups=2),
    "hf.mpnet": _hf_text("MPNetConfig", "MPNetModel", hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=64),
    "hf.funnel": _hf_text("FunnelConfig", "FunnelModel", d_model=32, n_head=2, d_head=16, d_inner=64,
                          block_sizes=[1, 1], block_repeats=[1, 1]),
    "hf.stablelm": _hf_text("StableLmConfig", "StableLmModel", **_small_llm()),
    "hf.beit": _hf_pixels("BeitConfig", "BeitModel", side=32, hidden_size=32, num_hidden_layers=2,
                          num_attention_heads=2, intermediate_size=64, image_size=32, patch_size=8,
                          use_relative_position_bias=True),
    "hf.dinov2": _hf_pixels("Dinov2Config", "Dinov2Model", side=28, hidden_size=32, num_hidden_layers=2,
                            num_attention_heads=2, image_size=28, patch_size=7, mlp_ratio=2),
    "hf.mobilevit": _hf_pixels("MobileViTConfig", "MobileViTModel", side=64, image_size=64, hidden_sizes=[32, 40, 48],
                               neck_hidden_sizes=[8, 8, 16, 16, 16, 24, 32]),
    "hf.resnet": _hf_pixels("ResNetConfig", "ResNetModel", side=64, embedding_size=16, hidden_sizes=[16, 32],
                            depths=[1, 1]),
    "hf.hubert": _hf_audio("HubertConfig", "HubertModel"),
    "hf.wavlm": _hf_audio("WavLMConfig", "WavLMModel"),
    "hf.wav2vec2": _hf_audio("Wav2Vec2Config", "Wav2Vec2Model"),
    "hf.segformer": _hf_pixels("SegformerConfig", "SegformerModel", side=64, num_encoder_blocks=2, depths=[1, 1],
                               sr_ratios=[2, 1], hidden_sizes=[16, 32], num_attention_heads=[1, 2],
                               mlp_ratios=[2, 2], patch_sizes=[7, 3], strides=[4, 2], decoder_hidden_size=32),
    "hf.convnext": _hf_pixels("ConvNextConfig", "ConvNextModel", side=64, hidden_sizes=[16, 32], depths=[1, 1],
                              num_stages=2),
    "hf.swin": _hf_pixels("SwinConfig", "SwinModel", side=32, image_size=32, patch_size=4, embed_dim=16,
                          depths=[1, 1], num_heads=[1, 2], window_size=4),
    # diffusers
    "diffusers.unet2d": _unet2d,
    "diffusers.dit": _dit,
}


MODELS.update(FAMILIES)  # the families added for issue 19 (names start with "new.")

PRECISIONS = {"fp32": frozenset(), "fp16": frozenset({torch.float16})}
ENTRIES = ("aot", "torch.compile")  # torch_tensorrt_rtx.compile with ranges; torch.compile(dynamic=True)
SECOND_BATCH = 3  # each dynamic cell is also called at this batch: one dynamic engine should serve it


class _Timeout(Exception):
    pass


def _on_alarm(signum, frame):
    raise _Timeout()


def _dims(case: Sweep, count: int) -> List[Dict[int, str]]:
    """{dim: name} of each input's dynamic dims, positional inputs first, then keyword inputs."""
    if not case.dynamic_batch:
        return [{} for _ in range(count)]
    return list(case.dims) if case.dims is not None else [{0: "batch"} for _ in range(count)]


def _spec(t: torch.Tensor, dims: Dict[int, str], ranges: Dict[str, Tuple[int, int]]):
    if not dims:
        return t
    lo, hi = list(t.shape), list(t.shape)
    for d, name in dims.items():
        lo[d], hi[d] = ranges.get(name, (1, 4))
    return trtx.Input(min_shape=lo, opt_shape=tuple(t.shape), max_shape=hi, dtype=t.dtype,
                      dim_names=tuple(dims.get(d) for d in range(t.dim())))


def _at_batch(t: torch.Tensor, dims: Dict[int, str], batch: int) -> torch.Tensor:
    """`t` with its "batch" dim grown or shrunk to `batch` by cycling its rows (same dtype and value range)."""
    for d, name in dims.items():
        if name == "batch":
            t = t.index_select(d, torch.arange(batch) % t.shape[d])
    return t


def _inputs(case: Sweep, batch: Optional[int] = None):
    names = list(case.kwargs)
    tensors = list(case.args) + [case.kwargs[k] for k in names]
    dims = _dims(case, len(tensors))
    if batch is not None:
        tensors = [_at_batch(t, d, batch) for t, d in zip(tensors, dims)]
    n = len(case.args)
    return tensors[:n], dict(zip(names, tensors[n:])), dims


class _BackendLog(logging.Handler):
    """Keeps the backend's notes on specialized dims and graphs left to PyTorch."""

    WORDS = ("specializ", "guarding it", "running this graph in PyTorch")

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.notes: List[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if any(w in message for w in self.WORDS):
            self.notes.append(message.splitlines()[0][:200])


def _add_report(row: dict, report) -> None:
    row["engines"] += len(report.engines)
    row["dynamic_engines"] += sum(any(r != "{}" for r in e.input_ranges) for e in report.engines)
    row["converted"] += sum(report.converted_op_counts.values())
    for op, n in report.fallback_ops.items():
        row["fallback_ops"][op] = row["fallback_ops"].get(op, 0) + n
        row["reasons"].setdefault(op, report.fallback_reasons.get(op, "?"))
    row["failed_nodes"].update(report.failed_nodes)
    row["report"] = (row.get("report", "") + "\n" + report.format()).strip()


def _verdict(verification) -> Tuple[str, str]:
    if verification.ok:
        return "ok", ""
    if verification.nothing_to_verify is not None:
        return "none", verification.nothing_to_verify.splitlines()[0][:200]
    return "MISMATCH", " / ".join(line.strip() for line in str(verification).splitlines()[:4])[:500]


def _run_aot(case: Sweep, precision, row: dict) -> None:
    args, kwargs, dims = _inputs(case)
    ranges = case.ranges or {}
    specs = [_spec(t, d, ranges) for t, d in zip(list(args) + list(kwargs.values()), dims)]
    start = time.perf_counter()
    compiled = trtx.compile(case.model, specs[:len(args)], kwarg_inputs=dict(zip(kwargs, specs[len(args):])) or None,
                            progress=False, enabled_precisions=precision)
    row["seconds"] = round(time.perf_counter() - start, 1)
    row["builds"] = 1
    _add_report(row, compiled.compile_report)
    sizes = [None, SECOND_BATCH] if case.dynamic_batch else [None]
    for batch in sizes:
        a, k, _ = _inputs(case, batch)
        row["verify"], row["error"] = _verdict(trtx.verify(compiled, *a, reference_module=case.model, **k))
        if row["verify"] != "ok":
            break


def _run_torch_compile(case: Sweep, precision, row: dict) -> None:
    torch._dynamo.reset()
    compiled = torch.compile(case.model, backend="tensorrt_rtx", dynamic=True,
                             options={"progress": False, "enabled_precisions": precision})
    with trtx.compile_reports() as reports:
        for batch in (None, SECOND_BATCH):
            a, k, _ = _inputs(case, batch)
            start = time.perf_counter()
            verification = trtx.verify(compiled, *a, reference_module=case.model, **k)
            if batch is None:  # the first call traces, compiles every graph and runs them
                row["seconds"], row["graphs"] = round(time.perf_counter() - start, 1), len(reports)
            row["verify"], row["error"] = _verdict(verification)
            if row["verify"] != "ok":
                break
    row["builds"] = len(reports)
    for report in reports:
        _add_report(row, report)
    if not reports:
        row["error"] = "the backend was given no graph"
    rnns = sorted({type(m).__name__ for m in case.model.modules() if isinstance(m, torch.nn.RNNBase)})
    if rnns and not torch._dynamo.config.allow_rnn:  # dynamo runs them in eager PyTorch, outside any graph
        row["untraced"] = f"{', '.join(rnns)} ran in eager PyTorch outside the graphs (dynamo's allow_rnn=False)"


def run_one(name: str, timeout: int, entry: str = "aot", precision: str = "fp32") -> dict:
    row = {"model": name, "entry": entry, "precision": precision, "engines": 0, "dynamic_engines": 0, "converted": 0,
           "fallback_ops": {}, "reasons": {}, "failed_nodes": {}, "verify": "-", "seconds": 0.0, "builds": 0,
           "error": "", "notes": [], "warnings": []}
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(timeout)
    log = _BackendLog()
    package_logger = logging.getLogger("torch_tensorrt_rtx")
    level = package_logger.level
    package_logger.addHandler(log)
    package_logger.setLevel(logging.INFO)
    start = time.perf_counter()
    try:
        torch.manual_seed(0)
        case = MODELS[name]()
        row["dynamic"] = case.dynamic_batch
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            (_run_aot if entry == "aot" else _run_torch_compile)(case, PRECISIONS[precision], row)
        row["warnings"] = sorted({f"{w.category.__name__}: {str(w.message).splitlines()[0][:160]}" for w in caught
                                  if "tensorrt_rtx" in str(w.message) or "torch_tensorrt_rtx" in w.filename})
    except _Timeout:
        row["error"] = f"timeout after {timeout} s"
    except Exception as e:  # noqa: BLE001 - a sweep reports every failure and moves on
        row["traceback"] = traceback.format_exc()
        if "_Timeout" in row["traceback"]:  # the alarm fired inside torch.compile, which wrapped it
            row["error"] = f"timeout after {timeout} s"
        else:
            row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]
            row["crash"] = True
    finally:
        signal.alarm(0)
        package_logger.removeHandler(log)
        package_logger.setLevel(level)
    row["notes"] = log.notes
    row["fallback"] = sum(row["fallback_ops"].values())
    if not row["seconds"]:
        row["seconds"] = round(time.perf_counter() - start, 1)
    row["status"] = status(row)
    return row


def status(row: dict) -> str:
    """full: engines only, verified; partial: some ops in PyTorch (or modules dynamo did not trace), verified;
    MISMATCH: wrong numbers;
    none: no engine at all; crash: an exception reached the caller; timeout: the cell ran out of time."""
    if row["error"].startswith("timeout"):
        return "timeout"
    if row.get("crash"):
        return "crash"
    if row["verify"] == "MISMATCH":
        return "MISMATCH"
    if not row["engines"]:
        return "none"
    return "full" if not row["fallback"] and not row.get("untraced") and row["verify"] == "ok" else "partial"


def _cell(row: dict) -> str:
    ops = ", ".join(f"{k} x{v}" for k, v in sorted(row["fallback_ops"].items()))
    builds = f" builds {row['builds']}/{row.get('graphs', 1)}" if row["entry"] == "torch.compile" else ""
    return (f"{row['model']:28} {row['entry']:13} {row['precision']} {row['status']:8} eng {row['engines']:>2} "
            f"(dyn {row['dynamic_engines']}) conv {row['converted']:>4} fb {row['fallback']:>3} {row['verify']:8} "
            f"{row['seconds']:>6}s{builds}  {ops}{'  ERROR ' + row['error'] if row['error'] else ''}"
            f"{'  UNTRACED ' + row['untraced'] if row.get('untraced') else ''}")


def ranked_fallbacks(rows: List[dict]) -> List[Tuple[str, List[str], str]]:
    """(op, models it stays in PyTorch for, one reason), most models first."""
    models: Dict[str, set] = collections.defaultdict(set)
    reasons: Dict[str, str] = {}
    for r in rows:
        for op in r["fallback_ops"]:
            models[op].add(r["model"])
            reasons.setdefault(op, r["reasons"].get(op, "?"))
    return sorted(((op, sorted(m), reasons[op]) for op, m in models.items()), key=lambda t: (-len(t[1]), t[0]))


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="run only models whose name contains one of these")
    parser.add_argument("--new", action="store_true", help="only the families added for issue 19 (new.*)")
    parser.add_argument("--entry", choices=("aot", "torch.compile", "both"), default="aot",
                        help="torch_tensorrt_rtx.compile (aot, default), torch.compile(dynamic=True), or both")
    parser.add_argument("--precision", choices=("fp32", "fp16", "both"), default="fp32",
                        help="enabled_precisions: fp32 (default), fp16, or both")
    parser.add_argument("--timeout", type=int, default=240, help="seconds per model and cell (default 240)")
    parser.add_argument("--json", help="write the rows here")
    parser.add_argument("--markdown", help="write the result tables here (benchmarks/sweep_markdown.py)")
    parser.add_argument("--reports", action="store_true", help="print each model's full compile report")
    parser.add_argument("--merge", nargs="*", default=[],
                        help="rows saved with --json by earlier runs; a cell run again here replaces its saved row")
    args = parser.parse_args(argv)
    names = [n for n in MODELS if (not args.new or n.startswith("new."))
             and (not args.names or any(w in n for w in args.names))]
    entries = ENTRIES if args.entry == "both" else (args.entry,)
    precisions = tuple(PRECISIONS) if args.precision == "both" else (args.precision,)
    rows = []
    for name in names:
        for entry in entries:
            for precision in precisions:
                row = run_one(name, args.timeout, entry, precision)
                rows.append(row)
                print(_cell(row), flush=True)
                for note in row["notes"][:3]:
                    print(f"    note: {note}", flush=True)
                if args.reports and row.get("report"):
                    print("    " + row["report"].replace("\n", "\n    "), flush=True)
    fresh = {(r["model"], r["entry"], r["precision"]) for r in rows}
    saved = [r for f in args.merge for r in json.loads(Path(f).read_text())
             if (r["model"], r["entry"], r["precision"]) not in fresh]
    for r in saved:  # rows saved before timeouts inside torch.compile were told apart from crashes
        if "_Timeout" in r.get("traceback", ""):
            r["error"], r["crash"] = f"timeout after {args.timeout} s", False
        r["status"] = status(r)
    rows = saved + rows
    print("\nfallback ops by number of models hit:")
    for op, models, reason in ranked_fallbacks(rows):
        print(f"  {len(models):>2}  {op}: {reason}  [{', '.join(models)}]")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=str))
    if args.markdown:
        from benchmarks.sweep_markdown import write_markdown
        write_markdown(rows, ranked_fallbacks(rows), Path(args.markdown), " ".join(sys.argv[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
