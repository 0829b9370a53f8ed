"""The acceptance models, built from code or configs with random weights (no downloads), small
enough for two CPUs. Each builder returns (model in eval mode, positional inputs, keyword inputs,
a function that makes example inputs of a given (batch, size))."""
from __future__ import annotations

import sys
import types
from typing import Any, Callable, Dict, List, NamedTuple, Tuple

import torch

from torch_tensorrt_rtx import Input


def import_torchvision():
    """torchvision 0.28.0 from PyPI is a CUDA build: its _C does not load against CPU torch, and
    `import torchvision` fails registering meta kernels for its C++ ops. The model definitions are
    pure Python: an empty `torchvision._meta_registrations` lets them import (FACTS.md, 2026-11-30).
    transformers and timm import torchvision when it is installed, so call this before them."""
    sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations"))
    import torchvision

    return torchvision


class Case(NamedTuple):
    model: torch.nn.Module
    args: List[Input]                 # positional inputs (dynamic: the range to compile for)
    kwargs: Dict[str, Input]          # keyword inputs
    make: Callable[[int, int], Tuple[List[torch.Tensor], Dict[str, torch.Tensor]]]  # (batch, size) -> inputs
    sizes: List[Tuple[int, int]]      # three (batch, size) points inside the dynamic range


def _image(channels: int, side: int, max_batch: int = 4):
    spec = Input(min_shape=(1, channels, side, side), opt_shape=(2, channels, side, side),
                 max_shape=(max_batch, channels, side, side), dim_names=("batch", None, None, None))
    return spec, (lambda b, s: ([torch.randn(b, channels, side, side)], {}))


def deit_tiny() -> Case:
    import_torchvision()
    import timm

    model = timm.create_model("deit_tiny_patch16_224", pretrained=False, img_size=64, depth=2).eval()
    spec, make = _image(3, 64)
    return Case(model, [spec], {}, make, [(1, 0), (3, 0), (4, 0)])


def resnet18d() -> Case:
    import_torchvision()
    import timm

    model = timm.create_model("resnet18d", pretrained=False).eval()
    spec, make = _image(3, 64)
    return Case(model, [spec], {}, make, [(1, 0), (2, 0), (4, 0)])


def mobilevitv2() -> Case:
    import_torchvision()
    import timm

    model = timm.create_model("mobilevitv2_050", pretrained=False).eval()
    spec, make = _image(3, 64)
    return Case(model, [spec], {}, make, [(1, 0), (2, 0), (4, 0)])


def _text(vocab: int, max_batch: int = 4, max_seq: int = 32):
    def spec():
        return Input(min_shape=(1, 2), opt_shape=(2, 16), max_shape=(max_batch, max_seq), dtype=torch.int64,
                     dim_names=("batch", "seq"))

    def make(b, s):
        ids = torch.randint(0, vocab, (b, s))
        mask = torch.ones(b, s, dtype=torch.int64)
        mask[0, s // 2:] = 0  # a padded row: the mask matters
        return [], {"input_ids": ids, "attention_mask": mask}

    return spec, make


def bert() -> Case:
    import_torchvision()
    from transformers import BertConfig, BertModel

    config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    model = BertModel(config).eval()
    spec, make = _text(100)
    return Case(model, [], {"input_ids": spec(), "attention_mask": spec()}, make, [(1, 2), (3, 17), (4, 32)])


def distilbert() -> Case:
    import_torchvision()
    from transformers import DistilBertConfig, DistilBertModel

    config = DistilBertConfig(vocab_size=100, dim=32, n_layers=2, n_heads=2, hidden_dim=64, max_position_embeddings=64)
    model = DistilBertModel(config).eval()
    spec, make = _text(100)
    return Case(model, [], {"input_ids": spec(), "attention_mask": spec()}, make, [(1, 2), (3, 17), (4, 32)])


BUILDERS: Dict[str, Callable[[], Case]] = {
    "deit_tiny": deit_tiny, "resnet18d": resnet18d, "mobilevitv2_050": mobilevitv2, "bert": bert,
    "distilbert": distilbert,
}


def _decoder_text(vocab: int):
    spec, make = _text(vocab)

    def ids_only(b, s):
        _, kwargs = make(b, s)
        return [], {"input_ids": kwargs["input_ids"]}

    return spec, make, ids_only


def gpt2() -> Case:
    import_torchvision()
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(vocab_size=100, n_embd=32, n_layer=2, n_head=2, n_positions=64, use_cache=False)
    model = GPT2LMHeadModel(config).eval()
    spec, make, _ = _decoder_text(100)
    return Case(model, [], {"input_ids": spec(), "attention_mask": spec()}, make, [(1, 2), (3, 17), (4, 32)])


def llama() -> Case:
    import_torchvision()
    from transformers import LlamaConfig, LlamaModel

    config = LlamaConfig(vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64, use_cache=False)
    model = LlamaModel(config).eval()
    spec, make, _ = _decoder_text(100)
    return Case(model, [], {"input_ids": spec(), "attention_mask": spec()}, make, [(1, 2), (3, 17), (4, 32)])


def t5_encoder() -> Case:
    import_torchvision()
    from transformers import T5Config, T5EncoderModel

    config = T5Config(vocab_size=100, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4, use_cache=False)
    model = T5EncoderModel(config).eval()
    spec, make, _ = _decoder_text(100)
    return Case(model, [], {"input_ids": spec(), "attention_mask": spec()}, make, [(1, 2), (3, 17), (4, 32)])


def vit_hf() -> Case:
    import_torchvision()
    from transformers import ViTConfig, ViTModel

    config = ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                       image_size=32, patch_size=8)
    model = ViTModel(config).eval()
    spec, make = _image(3, 32)
    return Case(model, [spec], {}, make, [(1, 0), (3, 0), (4, 0)])


def whisper_encoder() -> Case:
    import_torchvision()
    from transformers import WhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    config = WhisperConfig(d_model=32, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=64,
                           num_mel_bins=16, max_source_positions=32)
    model = WhisperEncoder(config).eval()
    spec = Input(min_shape=(1, 16, 64), opt_shape=(2, 16, 64), max_shape=(4, 16, 64), dim_names=("batch", None, None))
    return Case(model, [spec], {}, lambda b, s: ([torch.randn(b, 16, 64)], {}), [(1, 0), (2, 0), (4, 0)])


def _torchvision(name: str, side: int = 64, **kwargs) -> Callable[[], Case]:
    def build() -> Case:
        tv = import_torchvision()
        model = getattr(tv.models, name)(weights=None, **kwargs).eval()
        spec, make = _image(3, side)
        return Case(model, [spec], {}, make, [(1, 0), (2, 0), (4, 0)])

    return build


def vit_b_16() -> Case:
    """torchvision's VisionTransformer (the class vit_b_16 builds: class token, learned positions,
    the same encoder blocks) at 2 layers x 32 wide instead of 12 x 768, for CI time on 2 CPUs."""
    import_torchvision()
    from torchvision.models.vision_transformer import VisionTransformer

    model = VisionTransformer(image_size=32, patch_size=16, num_layers=2, num_heads=2, hidden_dim=32,
                              mlp_dim=64).eval()
    spec, make = _image(3, 32)
    return Case(model, [spec], {}, make, [(1, 0), (3, 0), (4, 0)])


def swin_t() -> Case:
    """torchvision's SwinTransformer with swin_t's blocks, patch 4, window 7 and shifts (roll, the
    shifted-window mask, patch merging), narrower and shallower (embed 32, two stages of 2 blocks
    instead of 96 and 2-2-6-2; at 64x64 both stages are larger than a window, so the second block
    of each is shifted): swin_t itself spends ~1 min in torch.export + decompositions per compile."""
    import_torchvision()
    from torchvision.models.swin_transformer import SwinTransformer

    model = SwinTransformer(patch_size=[4, 4], embed_dim=32, depths=[2, 2], num_heads=[2, 4],
                            window_size=[7, 7], stochastic_depth_prob=0.0).eval()
    spec, make = _image(3, 64)
    return Case(model, [spec], {}, make, [(1, 0), (2, 0), (4, 0)])


class VaeDecode(torch.nn.Module):
    """AutoencoderKL.decode(latents) -> image: what a diffusion pipeline runs last."""

    def __init__(self, vae: torch.nn.Module) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(latents, return_dict=False)[0]


def vae_decoder() -> Case:
    import_torchvision()
    from diffusers import AutoencoderKL

    vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(32, 64), latent_channels=4,
                        norm_num_groups=32, sample_size=32)
    spec = Input(min_shape=(1, 4, 8, 8), opt_shape=(2, 4, 8, 8), max_shape=(4, 4, 8, 8),
                 dim_names=("batch", None, None, None))
    return Case(VaeDecode(vae).eval(), [spec], {}, lambda b, s: ([torch.randn(b, 4, 8, 8)], {}),
                [(1, 0), (2, 0), (4, 0)])


def unet() -> Case:
    """UNet2DConditionModel: cross-attention down/up blocks, timestep embedding, text conditioning
    (sample, timestep per batch row, encoder_hidden_states), all sharing one dynamic batch."""
    import_torchvision()
    from diffusers import UNet2DConditionModel

    model = UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
                                 block_out_channels=(32, 64), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                 up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=32,
                                 attention_head_dim=8, norm_num_groups=32).eval()

    def batched(*shape, dtype=torch.float32):
        return Input(min_shape=(1, *shape), opt_shape=(2, *shape), max_shape=(4, *shape), dtype=dtype,
                     dim_names=("batch",) + (None,) * len(shape))

    def make(b, s):
        return [], {"sample": torch.randn(b, 4, 8, 8), "timestep": torch.randint(0, 1000, (b,)).float(),
                    "encoder_hidden_states": torch.randn(b, 6, 32)}

    kwargs = {"sample": batched(4, 8, 8), "timestep": batched(), "encoder_hidden_states": batched(6, 32)}
    return Case(model, [], kwargs, make, [(1, 0), (2, 0), (4, 0)])


# More families (every model in BUILDERS and MORE runs the whole matrix in test_models.py).
MORE: Dict[str, Callable[[], Case]] = {
    "gpt2": gpt2, "llama": llama, "t5_encoder": t5_encoder, "vit_hf": vit_hf, "whisper_encoder": whisper_encoder,
    "resnet18": _torchvision("resnet18"), "mobilenet_v3_small": _torchvision("mobilenet_v3_small"),
    "efficientnet_b0": _torchvision("efficientnet_b0"), "convnext_tiny": _torchvision("convnext_tiny"),
    "vit_b_16": vit_b_16, "swin_t": swin_t, "unet": unet, "vae_decoder": vae_decoder,
}

# Every acceptance model by name.
ALL_MODELS: Dict[str, Callable[[], Case]] = {**BUILDERS, **MORE}
