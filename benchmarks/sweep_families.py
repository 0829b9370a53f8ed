"""Model families for benchmarks/model_sweep.py that the acceptance zoo and the first sweep do not
cover: diffusion transformers, detection, depth, segment-anything, state-space models, RNNs,
super-resolution, optical flow, an LLM decode step with its KV cache as tensors, newer encoders.

Each builder returns a `Sweep` whose inputs are all positional tensors; `dims` names the dynamic
dims of each input (default: dim 0 is "batch") and `ranges` gives each name's engine range. Weights
are random (configs or code, no downloads) and sizes tiny, so a compile takes seconds.
"""
from __future__ import annotations

from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import torch

from tests.py.models.zoo import import_torchvision

BATCH = {0: "batch"}


class Sweep(NamedTuple):
    model: torch.nn.Module
    args: List[torch.Tensor]          # positional example inputs
    kwargs: Dict[str, torch.Tensor]   # keyword example inputs
    dynamic_batch: bool = False       # compile with the ranges below instead of the example's shape
    # per positional input: {dim: name} of its dynamic dims; None means {0: "batch"} for every input
    dims: Optional[Sequence[Dict[int, str]]] = None
    ranges: Optional[Dict[str, Tuple[int, int]]] = None  # name -> (min, max); "batch" is 1..4 by default


class Keywords(torch.nn.Module):
    """Calls `model` with its positional inputs as the keywords `names` (plus fixed keywords) and
    returns the output(s) at `pick` of its tuple output (return_dict=False). Positional inputs keep
    torch.export's dynamic shapes simple for models whose forward takes many keywords."""

    def __init__(self, model: torch.nn.Module, names: Sequence[str], pick: Union[int, Tuple[int, ...]] = 0,
                 **fixed) -> None:
        super().__init__()
        self.model, self.names, self.pick, self.fixed = model, tuple(names), pick, fixed

    def forward(self, x0, x1=None, x2=None, x3=None, x4=None, x5=None):
        given = dict(zip(self.names, (x0, x1, x2, x3, x4, x5)))
        out = self.model(**given, **self.fixed, return_dict=False)
        if isinstance(self.pick, tuple):
            return tuple(out[i] for i in self.pick)
        return out[self.pick]


def _sweep(model, args, dims=None, ranges=None) -> Sweep:
    return Sweep(model.eval(), list(args), {}, True, dims, ranges)


def _transformers():
    import_torchvision()
    import transformers
    return transformers


def _diffusers():
    import_torchvision()
    import diffusers
    return diffusers


# ---- diffusion transformers --------------------------------------------------------------------

def pixart() -> Sweep:
    model = _diffusers().PixArtTransformer2DModel(
        num_attention_heads=2, attention_head_dim=16, in_channels=4, out_channels=8, num_layers=2,
        cross_attention_dim=32, sample_size=8, patch_size=2, caption_channels=24, use_additional_conditions=False)
    wrapped = Keywords(model, ["hidden_states", "encoder_hidden_states", "timestep"],
                       added_cond_kwargs={"resolution": None, "aspect_ratio": None})
    return _sweep(wrapped, [torch.randn(2, 4, 8, 8), torch.randn(2, 6, 24), torch.tensor([3, 700])])


def sd3() -> Sweep:
    model = _diffusers().SD3Transformer2DModel(
        sample_size=8, patch_size=2, in_channels=4, num_layers=2, attention_head_dim=16, num_attention_heads=2,
        joint_attention_dim=24, caption_projection_dim=32, pooled_projection_dim=16, out_channels=4,
        pos_embed_max_size=16)
    wrapped = Keywords(model, ["hidden_states", "encoder_hidden_states", "pooled_projections", "timestep"])
    return _sweep(wrapped, [torch.randn(2, 4, 8, 8), torch.randn(2, 6, 24), torch.randn(2, 16),
                            torch.tensor([3, 700])])


def flux() -> Sweep:
    """Flux's rotary position embedding computes in float64."""
    model = _diffusers().FluxTransformer2DModel(
        patch_size=1, in_channels=8, num_layers=1, num_single_layers=1, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=24, pooled_projection_dim=16, axes_dims_rope=(4, 6, 6))
    wrapped = Keywords(model, ["hidden_states", "encoder_hidden_states", "pooled_projections", "timestep",
                               "img_ids", "txt_ids"])
    img_ids = torch.stack(torch.meshgrid(torch.zeros(1), torch.arange(4.0), torch.arange(4.0), indexing="ij"),
                          -1).reshape(16, 3)
    args = [torch.randn(2, 16, 8), torch.randn(2, 6, 24), torch.randn(2, 16), torch.tensor([0.3, 0.9]),
            img_ids, torch.zeros(6, 3)]
    return _sweep(wrapped, args, dims=[BATCH, BATCH, BATCH, BATCH, {}, {}])


# ---- detection ------------------------------------------------------------------------------------

def detr() -> Sweep:
    tf = _transformers()
    backbone = tf.ResNetConfig(embedding_size=16, hidden_sizes=[16, 32], depths=[1, 1],
                               out_features=["stage2"])
    cfg = tf.DetrConfig(use_timm_backbone=False, backbone_config=backbone, use_pretrained_backbone=False,
                        d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, num_queries=10,
                        num_labels=5)
    return _sweep(Keywords(tf.DetrForObjectDetection(cfg), ["pixel_values"], pick=(0, 1)), [torch.randn(2, 3, 64, 64)])


def rt_detr() -> Sweep:
    """RT-DETR: a real-time, NMS-free detector with deformable attention (grid_sample)."""
    tf = _transformers()
    backbone = tf.RTDetrResNetConfig(embedding_size=16, hidden_sizes=[16, 32, 64, 64], depths=[1, 1, 1, 1],
                                     layer_type="basic", out_features=["stage2", "stage3", "stage4"])
    cfg = tf.RTDetrConfig(backbone_config=backbone, encoder_in_channels=[32, 64, 64], feat_strides=[8, 16, 32],
                          encoder_hidden_dim=32, encoder_ffn_dim=64, encoder_attention_heads=2, d_model=32,
                          decoder_in_channels=[32, 32, 32], decoder_ffn_dim=64, decoder_attention_heads=2,
                          decoder_layers=1, num_queries=10, num_denoising=0, num_labels=5, anchor_image_size=[64, 64],
                          use_pretrained_backbone=False)
    model = tf.RTDetrForObjectDetection(cfg)
    return _sweep(Keywords(model, ["pixel_values"], pick=(0, 1)), [torch.randn(2, 3, 64, 64)])


class DetectionHead(torch.nn.Module):
    """A torchvision detector's backbone and head: what runs per image before box decoding and NMS."""

    def __init__(self, detector: torch.nn.Module) -> None:
        super().__init__()
        self.backbone, self.head = detector.backbone, detector.head

    def forward(self, images):
        out = self.head(list(self.backbone(images).values()))
        return out["bbox_regression"], out["cls_logits"]


def ssdlite_head() -> Sweep:
    tv = import_torchvision()
    detector = tv.models.detection.ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None,
                                                                 num_classes=5)
    return _sweep(DetectionHead(detector), [torch.randn(2, 3, 128, 128)])


# ---- depth, segment-anything, super-resolution, optical flow ------------------------------------

def dpt() -> Sweep:
    tf = _transformers()
    cfg = tf.DPTConfig(hidden_size=32, num_hidden_layers=4, backbone_out_indices=[0, 1, 2, 3], num_attention_heads=2,
                       intermediate_size=64, image_size=32, patch_size=8, neck_hidden_sizes=[8, 16, 32, 32],
                       fusion_hidden_size=16, head_in_index=-1)
    return _sweep(Keywords(tf.DPTForDepthEstimation(cfg), ["pixel_values"]), [torch.randn(2, 3, 32, 32)])


def depth_anything() -> Sweep:
    tf = _transformers()
    backbone = tf.Dinov2Config(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, mlp_ratio=2,
                               image_size=28, patch_size=7, out_features=["stage1", "stage2", "stage3", "stage4"],
                               reshape_hidden_states=False)
    cfg = tf.DepthAnythingConfig(backbone_config=backbone, neck_hidden_sizes=[8, 16, 32, 32], fusion_hidden_size=16,
                                 reassemble_hidden_size=32, head_hidden_size=8, patch_size=7)
    return _sweep(Keywords(tf.DepthAnythingForDepthEstimation(cfg), ["pixel_values"]), [torch.randn(2, 3, 28, 28)])


def sam() -> Sweep:
    tf = _transformers()
    cfg = tf.SamConfig(
        vision_config=dict(hidden_size=32, output_channels=16, num_hidden_layers=2, num_attention_heads=2,
                           image_size=64, patch_size=8, window_size=4, global_attn_indexes=[1], num_pos_feats=8,
                           mlp_dim=64),
        prompt_encoder_config=dict(hidden_size=16, image_size=64, patch_size=8, mask_input_channels=4),
        mask_decoder_config=dict(hidden_size=16, mlp_dim=32, num_attention_heads=2, iou_head_hidden_dim=16))
    model = Keywords(tf.SamModel(cfg), ["pixel_values", "input_points"], pick=(0, 1))
    return _sweep(model, [torch.randn(2, 3, 64, 64), torch.rand(2, 1, 1, 2) * 64])


def swin2sr() -> Sweep:
    tf = _transformers()
    cfg = tf.Swin2SRConfig(image_size=16, patch_size=1, embed_dim=16, depths=[1, 1], num_heads=[2, 2], window_size=4,
                           upscale=2, upsampler="pixelshuffle", mlp_ratio=2.0)
    return _sweep(Keywords(tf.Swin2SRForImageSuperResolution(cfg), ["pixel_values"]), [torch.randn(2, 3, 16, 16)])


class _DenseBlock(torch.nn.Module):
    def __init__(self, width: int, growth: int) -> None:
        super().__init__()
        self.convs = torch.nn.ModuleList(torch.nn.Conv2d(width + i * growth, growth if i < 2 else width, 3, padding=1)
                                         for i in range(3))

    def forward(self, x):
        features = [x]
        for i, conv in enumerate(self.convs):
            out = conv(torch.cat(features, 1))
            features.append(torch.nn.functional.leaky_relu(out, 0.2) if i < 2 else out)
        return x + 0.2 * features[-1]


class TinyESRGAN(torch.nn.Module):
    """ESRGAN's generator shape (residual dense blocks, nearest 2x upsampling, LeakyReLU) at toy width."""

    def __init__(self, width: int = 16, blocks: int = 2) -> None:
        super().__init__()
        self.head = torch.nn.Conv2d(3, width, 3, padding=1)
        self.body = torch.nn.Sequential(*(_DenseBlock(width, 8) for _ in range(blocks)))
        self.up = torch.nn.Conv2d(width, width, 3, padding=1)
        self.tail = torch.nn.Conv2d(width, 3, 3, padding=1)

    def forward(self, x):
        features = self.head(x)
        features = features + self.body(features)
        up = torch.nn.functional.interpolate(features, scale_factor=2, mode="nearest")
        return self.tail(torch.nn.functional.leaky_relu(self.up(up), 0.2))


def esrgan() -> Sweep:
    return _sweep(TinyESRGAN(), [torch.randn(2, 3, 16, 16)])


class FlowUpdates(torch.nn.Module):
    """RAFT with a fixed number of refinement steps, returning the last flow estimate."""

    def __init__(self, raft: torch.nn.Module, steps: int) -> None:
        super().__init__()
        self.raft, self.steps = raft, steps

    def forward(self, image1, image2):
        return self.raft(image1, image2, num_flow_updates=self.steps)[-1]


def raft_small() -> Sweep:
    tv = import_torchvision()
    model = FlowUpdates(tv.models.optical_flow.raft_small(weights=None), steps=2)
    return _sweep(model, [torch.randn(2, 3, 128, 128), torch.randn(2, 3, 128, 128)])


# ---- sequence models ------------------------------------------------------------------------------

TEXT = {0: "batch", 1: "seq"}
SEQ_RANGES = {"batch": (1, 4), "seq": (4, 32)}


def mamba() -> Sweep:
    tf = _transformers()
    cfg = tf.MambaConfig(vocab_size=100, hidden_size=32, state_size=8, num_hidden_layers=2, expand=2, conv_kernel=4,
                         use_cache=False)
    return _sweep(Keywords(tf.MambaModel(cfg), ["input_ids"]), [torch.randint(0, 100, (2, 16))], [TEXT], SEQ_RANGES)


class TextLSTM(torch.nn.Module):
    """A two-layer bidirectional LSTM tagger over token embeddings."""

    def __init__(self, vocab: int = 100, width: int = 32, classes: int = 5) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, width)
        self.rnn = torch.nn.LSTM(width, width, num_layers=2, bidirectional=True, batch_first=True)
        self.out = torch.nn.Linear(2 * width, classes)

    def forward(self, ids):
        return self.out(self.rnn(self.embed(ids))[0])


class ConvGRU(torch.nn.Module):
    """A keyword-spotting style CRNN: a 1-D convolution over audio features, a GRU, a classifier."""

    def __init__(self, features: int = 20, width: int = 32, classes: int = 6) -> None:
        super().__init__()
        self.conv = torch.nn.Conv1d(features, width, 3, padding=1)
        self.rnn = torch.nn.GRU(width, width, batch_first=True)
        self.out = torch.nn.Linear(width, classes)

    def forward(self, frames):  # (batch, time, features)
        x = torch.relu(self.conv(frames.transpose(1, 2))).transpose(1, 2)
        return self.out(self.rnn(x)[0][:, -1])


# RNNs get a dynamic batch only: torch.export (2.13) unrolls aten.lstm / aten.gru over time steps
# while tracing, so a dynamic sequence length fails with "Constraints violated (seq)".
def lstm() -> Sweep:
    return _sweep(TextLSTM(), [torch.randint(0, 100, (2, 16))])


def gru() -> Sweep:
    return _sweep(ConvGRU(), [torch.randn(2, 16, 20)])


class DecodeStep(torch.nn.Module):
    """One decoder step of a causal LM with its KV cache passed in and out as tensors.

    past_keys / past_values: (layers, batch, kv_heads, past_len, head_dim). Returns the next-token
    logits and the caches grown by one position."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids, past_keys, past_values):
        from transformers import DynamicCache

        cache = DynamicCache(ddp_cache_data=list(zip(past_keys.unbind(0), past_values.unbind(0))))
        past = past_keys.shape[3]
        position = torch.arange(past, past + input_ids.shape[1]).unsqueeze(0)
        out = self.model(input_ids=input_ids, cache=cache, position_ids=position, use_cache=True, return_dict=True)
        layers = out.cache.layers
        return out.logits, torch.stack([l.keys for l in layers]), torch.stack([l.values for l in layers])


def llama_decode() -> Sweep:
    tf = _transformers()
    cfg = tf.LlamaConfig(vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    kv = (2, 2, 2, 12, 8)  # layers, batch, kv heads, past length, head dim
    cache_dims = {1: "batch", 3: "past"}
    return _sweep(DecodeStep(tf.LlamaForCausalLM(cfg)), [torch.randint(0, 100, (2, 1)), torch.randn(kv),
                                                         torch.randn(kv)],
                  [BATCH, cache_dims, cache_dims], {"batch": (1, 4), "past": (1, 48)})


def modernbert() -> Sweep:
    """ModernBERT: alternating global and sliding-window attention, a padded row."""
    tf = _transformers()
    cfg = tf.ModernBertConfig(vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                              num_attention_heads=2, global_attn_every_n_layers=2, local_attention=8,
                              max_position_embeddings=64, pad_token_id=0, bos_token_id=1,
                              eos_token_id=2, cls_token_id=1, sep_token_id=2)
    mask = torch.ones(2, 16, dtype=torch.int64)
    mask[0, 10:] = 0
    model = Keywords(tf.ModernBertModel(cfg), ["input_ids", "attention_mask"])
    return _sweep(model, [torch.randint(1, 100, (2, 16)), mask], [TEXT, TEXT], SEQ_RANGES)


FAMILIES: Dict[str, Callable[[], Sweep]] = {
    "new.diffusers.pixart": pixart,
    "new.diffusers.sd3": sd3,
    "new.diffusers.flux": flux,
    "new.hf.detr": detr,
    "new.hf.rt_detr": rt_detr,
    "new.tv.ssdlite_head": ssdlite_head,
    "new.hf.dpt": dpt,
    "new.hf.depth_anything": depth_anything,
    "new.hf.sam": sam,
    "new.hf.swin2sr": swin2sr,
    "new.esrgan": esrgan,
    "new.tv.raft_small": raft_small,
    "new.hf.mamba": mamba,
    "new.lstm": lstm,
    "new.gru": gru,
    "new.hf.llama_decode": llama_decode,
    "new.hf.modernbert": modernbert,
}
