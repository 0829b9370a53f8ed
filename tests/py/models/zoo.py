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
