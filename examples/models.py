"""The small example models of this repository, in one place: the demo (examples/compile_demo.py),
the tests (tests/py), the benchmarks (benchmarks/) and the RTX acceptance run (scripts/rtx_acceptance)
all take them from here. No downloads; random weights, deterministic under torch.manual_seed.

    model, inputs = build("gpt_block")            # a family: eval-mode module + Input specs (dynamic)
    model = build_demo("cnn")                     # a demo model, with non-trivial batch-norm statistics
    model = TinyResNet()                          # or use the classes directly

Families (`MODELS`): a ResNet-style CNN, BERT-style encoder blocks (hand-written and torch.nn),
GPT-style causal decoder blocks (hand-written with sdpa, hand-written with an explicit tril mask,
and torch.nn.TransformerDecoderLayer). Every forward is KV-cache free and dropout is inert in eval.
Demo models (`DEMO_MODELS`): an MLP and a small CNN. `WithUnsupportedOp` calls an op that no
converter will ever accept, for the fallback paths.

Import it as `examples.models` with the repository root on sys.path (pytest's `pythonpath` does
that for the tests, the scripts do it themselves): one module name, so the custom op below is
registered once per process.
"""
from __future__ import annotations

import math
from typing import Callable, Dict, List, Tuple

import torch
import torch.nn.functional as F
from torch import nn

# -- ResNet ---------------------------------------------------------------------------------------


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.down is None else self.down(x)))


class TinyResNet(nn.Module):
    """Stem -> max pool -> two basic blocks -> grouped + dilated convs -> avg pool -> head."""

    def __init__(self, classes: int = 10, width: int = 8) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = BasicBlock(width, width)
        self.layer2 = BasicBlock(width, 2 * width, stride=2)
        self.grouped = nn.Conv2d(2 * width, 2 * width, 3, padding=2, dilation=2, groups=4, bias=True)
        self.smooth = nn.AvgPool2d(2, stride=1)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2 * width, classes)

    def forward(self, x):
        x = self.pool(self.stem(x))
        x = self.layer2(self.layer1(x))
        x = F.relu(self.grouped(x)) + x
        x = self.gap(self.smooth(x))
        return self.fc(torch.flatten(x, 1))


# -- Transformer encoder (BERT-style) -------------------------------------------------------------


class BertEmbeddings(nn.Module):
    def __init__(self, vocab: int, dim: int, max_len: int) -> None:
        super().__init__()
        self.tokens = nn.Embedding(vocab, dim)
        self.positions = nn.Embedding(max_len, dim)
        self.norm = nn.LayerNorm(dim, eps=1e-12)
        self.dropout = nn.Dropout(0.1)

    def forward(self, ids):
        positions = torch.arange(ids.shape[1], device=ids.device)
        return self.dropout(self.norm(self.tokens(ids) + self.positions(positions)[None]))


class BertSelfAttention(nn.Module):
    """Hand-written: q/k/v linears, view/permute, matmul, additive padding mask, softmax."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.q, self.k, self.v, self.o = (nn.Linear(dim, dim) for _ in range(4))
        self.dropout = nn.Dropout(0.1)

    def _split(self, x):
        b, s, _ = x.shape
        return x.view(b, s, self.heads, self.head_dim).permute(0, 2, 1, 3)

    def forward(self, x, mask):
        q, k, v = self._split(self.q(x)), self._split(self.k(x)), self._split(self.v(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim)
        bias = (1.0 - mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        probs = self.dropout(torch.softmax(scores + bias, dim=-1))
        ctx = torch.matmul(probs, v).permute(0, 2, 1, 3).contiguous()
        return self.o(ctx.reshape(x.shape[0], x.shape[1], -1))


class BertEncoderBlock(nn.Module):
    """Embeddings + one post-norm encoder layer (hand-written attention, erf-GELU FFN) + pooler."""

    def __init__(self, vocab: int = 64, dim: int = 32, heads: int = 4, ffn: int = 64, max_len: int = 32) -> None:
        super().__init__()
        self.embeddings = BertEmbeddings(vocab, dim, max_len)
        self.attention = BertSelfAttention(dim, heads)
        self.norm1 = nn.LayerNorm(dim, eps=1e-12)
        self.ffn_in, self.ffn_out = nn.Linear(dim, ffn), nn.Linear(ffn, dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-12)
        self.pooler = nn.Linear(dim, dim)

    def forward(self, ids):
        mask = ids != 0  # token 0 is padding (one input: export ties no dims across inputs)
        x = self.embeddings(ids)
        x = self.norm1(x + self.attention(x, mask))
        x = self.norm2(x + self.ffn_out(F.gelu(self.ffn_in(x))))
        pooled = torch.tanh(self.pooler(x[:, 0]))
        return x, pooled


class TorchEncoder(nn.Module):
    """nn.TransformerEncoderLayer (nn.MultiheadAttention inside) on top of an embedding."""

    def __init__(self, vocab: int = 64, dim: int = 32, heads: int = 4, ffn: int = 64) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.layer = nn.TransformerEncoderLayer(dim, heads, ffn, dropout=0.1, activation="gelu", batch_first=True)

    def forward(self, ids):
        return self.layer(self.embed(ids))


# -- Transformer decoder (GPT-style) --------------------------------------------------------------


class GPTBlock(nn.Module):
    """Pre-norm causal block: fused qkv + split, sdpa(is_causal), tanh-GELU MLP; tied-free LM head."""

    def __init__(self, vocab: int = 64, dim: int = 32, heads: int = 4, max_len: int = 32) -> None:
        super().__init__()
        self.heads = heads
        self.tokens, self.positions = nn.Embedding(vocab, dim), nn.Embedding(max_len, dim)
        self.ln1, self.ln2, self.ln_f = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.fc, self.fc_out = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)
        self.head = nn.Linear(dim, vocab, bias=False)

    def forward(self, ids):
        b, s = ids.shape
        pos = torch.arange(0, s, dtype=torch.long, device=ids.device)
        x = self.tokens(ids) + self.positions(pos)
        q, k, v = self.qkv(self.ln1(x)).split(x.shape[-1], dim=2)
        q, k, v = (t.view(b, s, self.heads, -1).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(y.transpose(1, 2).contiguous().view(b, s, -1))
        x = x + self.fc_out(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))
        return self.head(self.ln_f(x))


class HandCausalDecoder(nn.Module):
    """Hand-written causal attention: tril mask + masked_fill(-inf), baddbmm scores, silu MLP,
    RMS-style norm from pow/mean/rsqrt, chunk for the gate."""

    def __init__(self, vocab: int = 64, dim: int = 32, heads: int = 4) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.embed = nn.Embedding(vocab, dim)
        self.weight = nn.Parameter(torch.ones(dim) + 0.1 * torch.randn(dim))
        self.q, self.kv, self.o = nn.Linear(dim, dim), nn.Linear(dim, 2 * dim), nn.Linear(dim, dim)
        self.gate_up, self.down = nn.Linear(dim, 4 * dim), nn.Linear(2 * dim, dim)

    def _rms(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.weight

    def forward(self, ids):
        b, s = ids.shape
        x = self.embed(ids)
        h = self._rms(x)
        k, v = self.kv(h).chunk(2, dim=-1)
        q = self.q(h)
        q, k, v = (t.reshape(b, s, self.heads, self.head_dim).transpose(1, 2).reshape(b * self.heads, s, -1)
                   for t in (q, k, v))
        causal = torch.ones(s, s, dtype=torch.bool, device=ids.device).tril()
        scores = torch.baddbmm(torch.zeros(1, s, s, dtype=x.dtype), q, k.transpose(1, 2),
                               beta=0.0, alpha=1.0 / math.sqrt(self.head_dim))
        scores = scores.masked_fill(~causal, float("-inf"))
        y = torch.bmm(torch.softmax(scores, dim=-1), v)
        y = y.reshape(b, self.heads, s, self.head_dim).transpose(1, 2).reshape(b, s, -1)
        x = x + self.o(y)
        gate, up = self.gate_up(self._rms(x)).chunk(2, dim=-1)
        return x + self.down(F.silu(gate) * up)


class TorchDecoder(nn.Module):
    """nn.TransformerDecoderLayer with a causal target mask; the cross-attention memory is a
    projection of the target (one input, so no dims need tying across inputs)."""

    def __init__(self, dim: int = 32, heads: int = 4, ffn: int = 64) -> None:
        super().__init__()
        self.memory = nn.Linear(dim, dim)
        self.layer = nn.TransformerDecoderLayer(dim, heads, ffn, dropout=0.1, batch_first=True, norm_first=True)

    def forward(self, tgt):
        memory = self.memory(tgt)
        mask = nn.Transformer.generate_square_subsequent_mask(tgt.shape[1], dtype=tgt.dtype)
        return self.layer(tgt, memory, tgt_mask=mask, tgt_is_causal=True)


# -- demo models and a model with an op no converter accepts --------------------------------------


class MLP(nn.Module):
    """A 3-layer MLP classifier (the demo's is 256 -> 512 -> 512 -> 10)."""

    def __init__(self, features: int = 16, hidden: int = 32, classes: int = 10):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(features, hidden), nn.Linear(hidden, hidden)
        self.fc3 = nn.Linear(hidden, classes)

    def forward(self, x):
        x = F.gelu(self.fc1(x))
        x = F.silu(self.fc2(x))
        return torch.softmax(self.fc3(x), dim=-1)


class SmallCNN(nn.Module):
    """Two conv/batch-norm/relu stages, max pooling, global average pooling, a linear head."""

    def __init__(self, width: int = 8, classes: int = 5, pool_twice: bool = False):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width)
        self.conv2, self.bn2 = nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width)
        self.pool, self.gap = nn.MaxPool2d(2), nn.AdaptiveAvgPool2d((1, 1))
        self.head = nn.Linear(2 * width, classes)
        self.pool_twice = pool_twice

    def forward(self, x):
        x = self.pool(torch.relu(self.bn1(self.conv1(x))))
        x = torch.relu(self.bn2(self.conv2(x)))
        if self.pool_twice:
            x = self.pool(x)
        return self.head(torch.flatten(self.gap(x), 1))


DEMO_MODELS: Dict[str, Callable[[], nn.Module]] = {
    "mlp": lambda: MLP(features=256, hidden=512, classes=10),
    "cnn": lambda: SmallCNN(width=16, classes=10, pool_twice=True),
}


def build_demo(name: str) -> nn.Module:
    """One demo model in eval mode, with non-trivial running statistics so batch norm is really tested."""
    torch.manual_seed(0)
    model = DEMO_MODELS[name]().eval()
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 1.5)
    return model


@torch.library.custom_op("trtx_tests::mystery", mutates_args=())
def mystery(x: torch.Tensor) -> torch.Tensor:
    """An op no converter will ever exist for (coverage grows; this must stay unsupported)."""
    return torch.cumsum(x, dim=-1)


@mystery.register_fake
def _(x):
    return torch.empty_like(x)


class WithUnsupportedOp(nn.Module):
    """`mystery` has no converter: the graph must split into TensorRT + PyTorch + TensorRT."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(8, 8), nn.Linear(8, 4)

    def forward(self, x):
        x = torch.relu(self.a(x)) * 2
        x = mystery(x)
        return torch.sigmoid(self.b(x)) + 1


# -- the families, by name -------------------------------------------------------------------------

Builder = Callable[[], Tuple[nn.Module, List]]


def example_inputs(name: str, batch: int, seq: int, dtype: torch.dtype = torch.float32) -> List[torch.Tensor]:
    """Concrete inputs for `name` at one size (token ids in range, a padding mask with real zeros)."""
    gen = torch.Generator().manual_seed(batch * 100 + seq)
    if name == "resnet":
        return [torch.randn(batch, 3, 32, 32, generator=gen).to(dtype)]
    if name == "torch_decoder":
        return [torch.randn(batch, seq, 32, generator=gen).to(dtype)]
    ids = torch.randint(1, 64, (batch, seq), generator=gen)
    if name == "bert":
        ids[:, seq - 1:] = 0  # the last token is padding
    return [ids]


MODELS: Dict[str, Callable[[], nn.Module]] = {
    "resnet": TinyResNet,
    "bert": BertEncoderBlock,
    "torch_encoder": TorchEncoder,
    "gpt_block": GPTBlock,
    "hand_decoder": HandCausalDecoder,
    "torch_decoder": TorchDecoder,
}


def input_specs(name: str, dtype: torch.dtype = torch.float32, dynamic: bool = True):
    """torch_tensorrt_rtx.Input specs: batch 1..4 and sequence 2..16 when dynamic."""
    from torch_tensorrt_rtx import Input

    if name == "resnet":
        if not dynamic:
            return [Input(shape=(2, 3, 32, 32), dtype=dtype)]
        return [Input(min_shape=(1, 3, 32, 32), opt_shape=(2, 3, 32, 32), max_shape=(4, 3, 32, 32), dtype=dtype)]
    if name == "torch_decoder":
        if not dynamic:
            return [Input(shape=(2, 8, 32), dtype=dtype)]
        return [Input(min_shape=(1, 2, 32), opt_shape=(2, 8, 32), max_shape=(4, 16, 32), dtype=dtype)]
    if not dynamic:
        return [Input(shape=(2, 8), dtype=torch.int64)]
    return [Input(min_shape=(1, 2), opt_shape=(2, 8), max_shape=(4, 16), dtype=torch.int64)]


def build(name: str, dtype: torch.dtype = torch.float32, dynamic: bool = True, seed: int = 0):
    """(eval-mode model in `dtype`, Input specs) for one family."""
    torch.manual_seed(seed)
    model = MODELS[name]().eval().to(dtype)
    return model, input_specs(name, dtype, dynamic)
