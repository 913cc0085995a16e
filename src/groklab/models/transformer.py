"""A small decoder-only transformer for algorithmic tasks, in the style of nanoGPT.

Shapes: B batch, T sequence length, C d_model, H heads, D = C // H head size,
V vocabulary, K classes, M MLP width. The model predicts from the last position only.

`forward` below is the whole model, written plainly. Training runs the same arithmetic through
models/transformer_fast.py (on by default, `Transformer.fast`), which skips what the loss never reads
and looks the first block's projections up from a table. Each parameter declares the width axes its
dimensions run along (`width_axes`), so models/width_padding.py can host a narrow model in a wide one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import torch
import torch.nn.functional as F
from torch import nn

from groklab.errors import ConfigError
from groklab.models.base import MODELS
from groklab.models.dropout import Dropout
from groklab.models.embedding_init import EMBED_INITS, apply_embed_init
from groklab.models.hooks import HookPoint
from groklab.models.transformer_fast import fast_forward
from groklab.schema import ModelConfig, check_layers
from groklab.tasks.base import TaskSpec

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "silu": nn.SiLU}
# Where `dropout` applies: the embedding sum, the attention probabilities, the attention output and the
# MLP output, each before its residual add. nanoGPT drops at all four; Davies et al.'s (OpenAI's grok)
# block only at the MLP output.
DROPOUT_SITES = ("embed", "attn", "attn_out", "mlp")


@dataclass
class TransformerArch:
    """The architecture's knobs: the network's shape has them, and so do the `model.*` config keys."""

    d_model: int = 128
    n_heads: int = 4
    n_layers: int = 1
    d_mlp: int = 512  # in a config, 0 = 4 * d_model, so a sweep over d_model scales the MLP with it (Davies et al.'s code)
    act: str = "relu"
    norm: str = "none"  # none | pre | post
    dropout: float = 0.0
    dropout_at: list[str] = field(default_factory=lambda: list(DROPOUT_SITES))  # the sites `dropout` applies at; davies2023: [mlp]
    causal: bool = True
    mlp_bias: bool = True
    init: str = "nanda"  # nanda: every matrix N(0, 1/d_model); torch: PyTorch's layer defaults (embeddings N(0, 1))
    embed_init: str = "default"  # default: as `init`; toeplitz: Gu et al.'s App. E construction (their rec.py), every token
    pos: str = "learned"  # learned: an nn.Embedding; sinusoidal: the fixed encoding of Vaswani et al. (Davies et al.'s code)


@dataclass(kw_only=True)
class TransformerShape(TransformerArch):
    """The network's hyper-parameters (independent of groklab's configs): the task's sizes and the architecture."""

    vocab_size: int
    n_classes: int
    seq_len: int


def sinusoidal_positions(seq_len: int, d_model: int, dtype: torch.dtype | None = None) -> torch.Tensor:
    """(T, C) fixed encoding: sin(t / 10000^(i/C)) at even i, cos(t / 10000^((i-1)/C)) at odd i (OpenAI's grok code).

    Computed in float64, then rounded once to `dtype` (default: torch's default dtype)."""
    t = torch.arange(seq_len, dtype=torch.float64)[:, None]
    i = torch.arange(d_model, dtype=torch.float64)  # an integer i would make the exponent float32
    angle = t / 10000 ** ((i - i % 2) / d_model)  # (T, C)
    return torch.where(i % 2 == 0, torch.sin(angle), torch.cos(angle)).to(dtype or torch.get_default_dtype())


def width_axes(module: nn.Module, **axes: tuple[str | None, ...]) -> nn.Module:
    """Declare, per parameter of `module`, the width each dimension runs along: "res" (the residual
    stream, C), "head" (the heads' features, H x D), "mlp" (the MLP units, M) or None (not a width)."""
    module.width_axes = axes
    return module


def dropout_at(s: TransformerArch, site: str) -> Dropout:
    """The dropout of one site: p = s.dropout where the shape drops out there, else 0 (an identity)."""
    return Dropout(s.dropout if site in s.dropout_at else 0.0)


def layer_norm(s: TransformerArch) -> nn.Module:
    if s.norm == "none":
        return nn.Identity()
    return width_axes(nn.LayerNorm(s.d_model), weight=("res",), bias=("res",))


class Attention(nn.Module):
    def __init__(self, s: TransformerArch) -> None:
        super().__init__()
        self.n_heads, self.causal = s.n_heads, s.causal
        self.scale = 1.0 / math.sqrt(s.d_model // s.n_heads)  # 1/sqrt(D)
        self.q_proj = width_axes(nn.Linear(s.d_model, s.d_model, bias=False), weight=("head", "res"))
        self.k_proj = width_axes(nn.Linear(s.d_model, s.d_model, bias=False), weight=("head", "res"))
        self.v_proj = width_axes(nn.Linear(s.d_model, s.d_model, bias=False), weight=("head", "res"))
        self.out_proj = width_axes(nn.Linear(s.d_model, s.d_model, bias=False), weight=("res", "head"))
        self.attn_drop, self.out_drop = dropout_at(s, "attn"), dropout_at(s, "attn_out")
        self.hook_q, self.hook_k, self.hook_v, self.hook_z = HookPoint(), HookPoint(), HookPoint(), HookPoint()  # each (B, T, H, D)
        self.hook_attn_scores, self.hook_pattern = HookPoint(), HookPoint()  # (B, H, T, T): scaled and masked; softmaxed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, T, C) -> (B, T, C)."""
        return self.out_drop(self.out_proj(self.mix(self.q_proj(x), self.k_proj(x), self.v_proj(x))))

    def mix(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Projected queries, keys, values, each (B, T, C) -> the heads' attention outputs, concatenated (B, T, C)."""
        B, T, C = k.shape
        H, D = self.n_heads, C // self.n_heads
        q, k, v = (hook(t.view(B, T, H, D)).transpose(1, 2) for hook, t in ((self.hook_q, q), (self.hook_k, k), (self.hook_v, v)))
        att = (q @ k.transpose(-2, -1)) * self.scale  # (B, H, T, T); explicit, so vmap batches it
        if self.causal:
            att = att.masked_fill(~torch.ones(T, T, dtype=torch.bool, device=att.device).tril(), float("-inf"))
        att = self.attn_drop(self.hook_pattern(F.softmax(self.hook_attn_scores(att), dim=-1)))
        return self.hook_z((att @ v).transpose(1, 2)).reshape(B, T, C)  # (B, T, H, D) -> (B, T, C)


class MLP(nn.Module):
    def __init__(self, s: TransformerArch) -> None:
        super().__init__()
        self.fc_in = width_axes(nn.Linear(s.d_model, s.d_mlp, bias=s.mlp_bias), weight=("mlp", "res"), bias=("mlp",))
        self.act = ACTIVATIONS[s.act]()
        self.fc_out = width_axes(nn.Linear(s.d_mlp, s.d_model, bias=s.mlp_bias), weight=("res", "mlp"), bias=("res",))
        self.dropout = dropout_at(s, "mlp")
        self.hook_pre, self.hook_post = HookPoint(), HookPoint()  # (B, T, M): before and after the activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.fc_out(self.hook_post(self.act(self.hook_pre(self.fc_in(x))))))  # (B, T, C) -> (B, T, M) -> (B, T, C)


class Block(nn.Module):
    """Residual attention + MLP; LayerNorm before each (pre), after each sum (post), or none."""

    def __init__(self, s: TransformerArch) -> None:
        super().__init__()
        self.norm = s.norm
        self.attn, self.mlp = Attention(s), MLP(s)
        self.ln_1, self.ln_2 = layer_norm(s), layer_norm(s)
        self.hook_resid_pre, self.hook_resid_mid, self.hook_resid_post = HookPoint(), HookPoint(), HookPoint()  # each (B, T, C)
        self.hook_attn_out, self.hook_mlp_out = HookPoint(), HookPoint()  # (B, T, C): each sublayer's output, before its residual add

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.hook_resid_pre(x)
        if self.norm == "post":
            x = self.hook_resid_mid(self.ln_1(x + self.hook_attn_out(self.attn(x))))
            return self.hook_resid_post(self.ln_2(x + self.hook_mlp_out(self.mlp(x))))
        x = self.hook_resid_mid(x + self.hook_attn_out(self.attn(self.ln_1(x))))  # (B, T, C); ln_1, ln_2 are identities without LayerNorm
        return self.hook_resid_post(x + self.hook_mlp_out(self.mlp(self.ln_2(x))))


class Transformer(nn.Module):
    """Token + position embeddings, `n_layers` blocks, logits at the last position: (B, T) -> (B, K)."""

    def __init__(self, s: TransformerShape) -> None:
        super().__init__()
        if s.d_model % s.n_heads:
            raise ValueError(f"d_model {s.d_model} is not divisible by n_heads {s.n_heads}")
        self.shape = s
        self.fast = True  # run models/transformer_fast.py: the same arithmetic, less of it
        self.tok_emb = width_axes(nn.Embedding(s.vocab_size, s.d_model), weight=(None, "res"))
        if s.pos == "learned":
            self.pos_emb = width_axes(nn.Embedding(s.seq_len, s.d_model), weight=(None, "res"))
        self._sinusoids: dict[tuple[torch.dtype, torch.device], torch.Tensor] = {}  # pos=sinusoidal: per dtype and device
        self.drop = dropout_at(s, "embed")
        self.hook_embed, self.hook_pos_embed = HookPoint(), HookPoint()  # (B, T, C) each
        self.blocks = nn.ModuleList(Block(s) for _ in range(s.n_layers))
        self.ln_f = layer_norm(s) if s.norm == "pre" else nn.Identity()
        self.unembed = width_axes(nn.Linear(s.d_model, s.n_classes, bias=False), weight=(None, "res"))
        if s.init == "nanda":
            self.reset_parameters()  # else keep the PyTorch defaults each layer drew at construction
        # Drawn last, so every other parameter is the same as under embed_init=default with the same seed.
        apply_embed_init(self.tok_emb.weight, s.embed_init)

    def reset_parameters(self) -> None:
        """Nanda et al.'s scheme: every weight matrix N(0, 1/d_model), biases 0, LayerNorm (1, 0)."""
        std = 1.0 / math.sqrt(self.shape.d_model)
        norms = {id(p) for m in self.modules() if isinstance(m, nn.LayerNorm) for p in m.parameters()}
        for name, p in self.named_parameters():
            if id(p) in norms:
                nn.init.ones_(p) if name.endswith("weight") else nn.init.zeros_(p)
            elif name.endswith("bias"):
                nn.init.zeros_(p)
            else:
                nn.init.normal_(p, std=std)

    @property
    def positions(self) -> torch.Tensor:
        """(T, C) position embedding added to the tokens: learned, or the fixed sinusoidal table, derived in
        float64 and rounded once to the weights' dtype (never a float32 table cast up)."""
        if self.shape.pos == "learned":
            return self.pos_emb.weight
        w = self.tok_emb.weight
        key = (w.dtype, w.device)
        if key not in self._sinusoids:
            self._sinusoids[key] = sinusoidal_positions(self.shape.seq_len, self.shape.d_model, w.dtype).to(w.device)
        return self._sinusoids[key]

    @property
    def token_embedding(self) -> torch.Tensor:
        """(V, C) token embedding matrix; progress measures such as MED read it."""
        return self.tok_emb.weight

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        if self.fast:
            return fast_forward(self, idx)
        B, T = idx.shape
        x = self.drop(self.hook_embed(self.tok_emb(idx)) + self.hook_pos_embed(self.positions[:T].expand(B, T, -1)))  # (B, T, C)
        for block in self.blocks:
            x = block(x)  # (B, T, C)
        return self.unembed(self.ln_f(x[:, -1]))  # (B, K): the last position predicts


# --- groklab registration: the config keys `model.*` for name=transformer -------------------------


@dataclass
class TransformerConfig(TransformerArch, ModelConfig):
    """`model.*` keys for name=transformer: the architecture (TransformerArch); the task gives the sizes."""

    name: str = "transformer"

    def validate(self) -> None:
        super().validate()
        check_layers("model.n_layers", self.n_layers)
        for key in ("d_model", "n_heads", "n_layers"):
            if getattr(self, key) < 1:
                raise ConfigError(f"model.{key}", f"must be >= 1, got {getattr(self, key)}")
        if self.d_mlp < 0:
            raise ConfigError("model.d_mlp", f"must be >= 1, or 0 for 4 * d_model; got {self.d_mlp}")
        if self.d_model % self.n_heads:
            raise ConfigError("model.n_heads", f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}")
        if self.act not in ACTIVATIONS:
            raise ConfigError("model.act", f"unknown activation {self.act!r}; choose one of {', '.join(ACTIVATIONS)}")
        if self.norm not in ("none", "pre", "post"):
            raise ConfigError("model.norm", f"unknown LayerNorm placement {self.norm!r}; choose none, pre or post")
        if self.init not in ("nanda", "torch"):
            raise ConfigError("model.init", f"unknown init scheme {self.init!r}; choose nanda or torch")
        if self.embed_init not in EMBED_INITS:
            raise ConfigError("model.embed_init", f"unknown embedding init {self.embed_init!r}; choose default or toeplitz")
        if self.pos not in ("learned", "sinusoidal"):
            raise ConfigError("model.pos", f"unknown position embedding {self.pos!r}; choose learned or sinusoidal")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError("model.dropout", f"must be in [0, 1), got {self.dropout}")
        unknown = [site for site in self.dropout_at if site not in DROPOUT_SITES]
        if unknown:
            raise ConfigError("model.dropout_at", f"unknown dropout site {unknown[0]!r}; choose from {', '.join(DROPOUT_SITES)}")


def _build(cfg: TransformerConfig, spec: TaskSpec) -> Transformer:
    arch = {f.name: getattr(cfg, f.name) for f in fields(TransformerArch)}
    arch["d_mlp"] = cfg.d_mlp or 4 * cfg.d_model
    arch["dropout_at"] = list(cfg.dropout_at)
    return Transformer(TransformerShape(vocab_size=spec.vocab_size, n_classes=spec.n_classes, seq_len=spec.seq_len, **arch))


MODELS.register("transformer", config=TransformerConfig, summary="decoder-only transformer, logits at the last position")(_build)
