"""A small decoder-only transformer for algorithmic tasks, in the style of nanoGPT.

Shapes: B batch, T sequence length, C d_model, H heads, D = C // H head size,
V vocabulary, K classes. The model predicts from the last position only, and
the last block computes only that position's query, attention output and MLP:
nothing the loss does not read is computed. The first block's projections are
looked up from a table of the T·V possible inputs when the batch is larger.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields

import torch
import torch.nn.functional as F
from torch import nn

from groklab.config.schema import ModelConfig
from groklab.errors import ConfigError
from groklab.models.base import MODELS, ModelEntry
from groklab.models.dropout import Dropout
from groklab.models.embedding_init import EMBED_INITS, apply_embed_init
from groklab.models.lookup import lookup
from groklab.tasks.base import TaskSpec

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "silu": nn.SiLU}
# Where `dropout` applies: the embedding sum, the attention probabilities, the attention output and the
# MLP output, each before its residual add. nanoGPT drops at all four; Davies et al.'s (OpenAI's grok)
# block only at the MLP output.
DROPOUT_SITES = ("embed", "attn", "attn_out", "mlp")
QKV = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


@dataclass
class TransformerShape:
    """Hyper-parameters of the network itself (independent of groklab's configs)."""

    vocab_size: int
    n_classes: int
    seq_len: int
    d_model: int = 128
    n_heads: int = 4
    n_layers: int = 1
    d_mlp: int = 512
    act: str = "relu"
    norm: str = "none"  # none | pre | post
    dropout: float = 0.0
    dropout_at: tuple[str, ...] = DROPOUT_SITES  # the sites `dropout` applies at (DROPOUT_SITES)
    causal: bool = True
    mlp_bias: bool = True
    init: str = "nanda"  # nanda: every matrix N(0, 1/d_model); torch: PyTorch's layer defaults (embeddings N(0, 1))
    embed_init: str = "default"  # default: as `init`; toeplitz: Gu et al.'s App. E construction, every token
    masked_width: bool = False  # host a narrower model: LayerNorm and attention scale read per-model buffers (see width_padding)
    pos: str = "learned"  # learned: an nn.Embedding; sinusoidal: the fixed encoding of Vaswani et al. (Davies et al.'s code)


def sinusoidal_positions(seq_len: int, d_model: int, dtype: torch.dtype | None = None) -> torch.Tensor:
    """(T, C) fixed encoding: sin(t / 10000^(i/C)) at even i, cos(t / 10000^((i-1)/C)) at odd i (OpenAI's grok code).

    Computed in float64, then rounded once to `dtype` (default: torch's default dtype)."""
    t = torch.arange(seq_len, dtype=torch.float64)[:, None]
    i = torch.arange(d_model, dtype=torch.float64)  # an integer i would make the exponent float32
    angle = t / 10000 ** ((i - i % 2) / d_model)  # (T, C)
    return torch.where(i % 2 == 0, torch.sin(angle), torch.cos(angle)).to(dtype or torch.get_default_dtype())


class MaskedLayerNorm(nn.Module):
    """LayerNorm over the features where `mask` is 1, zero elsewhere: a narrow model's LayerNorm inside a wider one.

    Parameter names match nn.LayerNorm's, so state dicts are interchangeable."""

    def __init__(self, n_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(n_features))
        self.bias = nn.Parameter(torch.zeros(n_features))
        self.register_buffer("mask", torch.ones(n_features), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.mask.sum()
        xc = (x - (x * self.mask).sum(-1, keepdim=True) / n) * self.mask  # (..., C), zero on inactive features
        var = (xc * xc).sum(-1, keepdim=True) / n
        return xc * torch.rsqrt(var + self.eps) * self.weight + self.bias


def dropout_at(s: TransformerShape, site: str) -> Dropout:
    """The dropout of one site: p = s.dropout where the shape drops out there, else 0 (an identity)."""
    return Dropout(s.dropout if site in s.dropout_at else 0.0)


def layer_norm(s: TransformerShape) -> nn.Module:
    return MaskedLayerNorm(s.d_model) if s.masked_width else nn.LayerNorm(s.d_model)


class Attention(nn.Module):
    def __init__(self, s: TransformerShape) -> None:
        super().__init__()
        self.n_heads, self.causal, self.masked = s.n_heads, s.causal, s.masked_width
        if s.masked_width:  # 1/sqrt(head size) of the hosted model, which is narrower than this one
            self.register_buffer("scale", torch.tensor(1.0 / math.sqrt(s.d_model // s.n_heads)), persistent=False)
        self.q_proj = nn.Linear(s.d_model, s.d_model, bias=False)
        self.k_proj = nn.Linear(s.d_model, s.d_model, bias=False)
        self.v_proj = nn.Linear(s.d_model, s.d_model, bias=False)
        self.out_proj = nn.Linear(s.d_model, s.d_model, bias=False)
        self.attn_drop, self.out_drop = dropout_at(s, "attn"), dropout_at(s, "attn_out")

    def forward(self, x: torch.Tensor, last_only: bool = False, qkv: QKV | None = None) -> torch.Tensor:
        """x (B, T, C) -> (B, Tq, C) with Tq = 1 if last_only else T. `qkv` supplies the projections precomputed."""
        if qkv is None:
            # contiguous: under vmap (ensembles) a Linear with stacked weights on a strided slice copies
            # its weight once per example (B x C x C); on a contiguous (B, 1, C) it is one batched matmul
            qkv = self.q_proj(x[:, -1:].contiguous() if last_only else x), self.k_proj(x), self.v_proj(x)
        q, k, v = qkv  # (B, Tq, C), (B, T, C), (B, T, C)
        B, T, C = k.shape
        H, D = self.n_heads, C // self.n_heads
        k, v = k.view(B, T, H, D), v.view(B, T, H, D)
        scale = self.scale if self.masked else 1.0 / math.sqrt(D)
        if last_only:
            # One query per sequence: scores by broadcasting, cheaper than T-long batched matmuls.
            q = q.view(B, 1, H, D)
            att = (q * k).sum(-1) * scale  # (B, T, H): the last position sees every key
            att = self.attn_drop(F.softmax(att, dim=1))
            y = (att.unsqueeze(-1) * v).sum(1).reshape(B, 1, C)  # (B, 1, C)
        else:
            q, k, v = (t.transpose(1, 2) for t in (q.view(B, T, H, D), k, v))  # each (B, H, T, D)
            att = (q @ k.transpose(-2, -1)) * scale  # (B, H, T, T); explicit, so vmap batches it
            if self.causal:
                att = att.masked_fill(~torch.ones(T, T, dtype=torch.bool, device=att.device).tril(), float("-inf"))
            att = self.attn_drop(F.softmax(att, dim=-1))
            y = (att @ v).transpose(1, 2).reshape(B, T, C)  # (B, T, C)
        return self.out_drop(self.out_proj(y))


class MLP(nn.Module):
    def __init__(self, s: TransformerShape) -> None:
        super().__init__()
        self.fc_in = nn.Linear(s.d_model, s.d_mlp, bias=s.mlp_bias)
        self.act = ACTIVATIONS[s.act]()
        self.fc_out = nn.Linear(s.d_mlp, s.d_model, bias=s.mlp_bias)
        self.dropout = dropout_at(s, "mlp")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.fc_out(self.act(self.fc_in(x))))  # (B, T, C)


class Block(nn.Module):
    """Residual attention + MLP; LayerNorm before each (pre), after each sum (post), or none."""

    def __init__(self, s: TransformerShape) -> None:
        super().__init__()
        self.norm = s.norm
        self.attn, self.mlp = Attention(s), MLP(s)
        use_ln = s.norm != "none"
        self.ln_1 = layer_norm(s) if use_ln else nn.Identity()
        self.ln_2 = layer_norm(s) if use_ln else nn.Identity()

    def qkv(self, x: torch.Tensor) -> QKV:
        """Attention projections of every position of x (..., C)."""
        h = self.ln_1(x) if self.norm == "pre" else x
        return self.attn.q_proj(h), self.attn.k_proj(h), self.attn.v_proj(h)

    def forward(self, x: torch.Tensor, last_only: bool = False, qkv: QKV | None = None) -> torch.Tensor:
        res = x[:, -1:] if last_only else x  # the residual stream positions we keep
        if self.norm == "post":
            x = self.ln_1(res + self.attn(x, last_only, qkv))
            return self.ln_2(x + self.mlp(x))
        x = res + self.attn(self.ln_1(x) if qkv is None else x, last_only, qkv)
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    """Token + learned position embeddings, `n_layers` blocks, logits at the last position: (B, T) -> (B, K)."""

    def __init__(self, s: TransformerShape) -> None:
        super().__init__()
        if s.d_model % s.n_heads:
            raise ValueError(f"d_model {s.d_model} is not divisible by n_heads {s.n_heads}")
        self.shape = s
        self.tok_emb = nn.Embedding(s.vocab_size, s.d_model)
        if s.pos == "learned":
            self.pos_emb = nn.Embedding(s.seq_len, s.d_model)
        else:  # derived from the shape, so not saved with the weights
            self.register_buffer("pos_table", sinusoidal_positions(s.seq_len, s.d_model), persistent=False)
        self.drop = dropout_at(s, "embed")
        self.blocks = nn.ModuleList(Block(s) for _ in range(s.n_layers))
        self.ln_f = layer_norm(s) if s.norm == "pre" else nn.Identity()
        self.unembed = nn.Linear(s.d_model, s.n_classes, bias=False)
        if s.init == "nanda":
            self.reset_parameters()  # else keep the PyTorch defaults each layer drew at construction
        # Drawn last, so every other parameter is the same as under embed_init=default with the same seed.
        apply_embed_init(self.tok_emb.weight, s.embed_init)

    def reset_parameters(self) -> None:
        """Nanda et al.'s scheme: every weight matrix N(0, 1/d_model), biases 0, LayerNorm (1, 0)."""
        std = 1.0 / math.sqrt(self.shape.d_model)
        for name, p in self.named_parameters():
            if "ln_" in name:
                nn.init.ones_(p) if name.endswith("weight") else nn.init.zeros_(p)
            elif name.endswith("bias"):
                nn.init.zeros_(p)
            else:
                nn.init.normal_(p, std=std)

    def _apply(self, fn: Callable[[torch.Tensor], torch.Tensor], recurse: bool = True) -> Transformer:
        """After .to(dtype)/.double(), re-derive the fixed table at the new precision: a float32 table cast
        to float64 would carry float32 rounding (~3e-8) into a float64 run."""
        super()._apply(fn, recurse)
        table = getattr(self, "pos_table", None)
        if table is not None and table.is_floating_point() and table.device.type != "meta":
            T, C = table.shape
            self.pos_table = sinusoidal_positions(T, C, table.dtype).to(table.device)
        return self

    @property
    def positions(self) -> torch.Tensor:
        """(T, C) position embedding added to the tokens: learned, or the fixed sinusoidal table."""
        return self.pos_emb.weight if self.shape.pos == "learned" else self.pos_table

    @property
    def token_embedding(self) -> torch.Tensor:
        """(V, C) token embedding matrix; progress measures such as MED read it."""
        return self.tok_emb.weight

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        _, T = idx.shape
        qkv = self.first_block_qkv(idx)
        # With the first block's projections looked up, a 1-layer model's residual stream needs only the last position.
        keep = T - 1 if qkv is not None and len(self.blocks) == 1 else 0
        x = self.drop(lookup(idx[:, keep:], self.tok_emb.weight) + self.positions[keep:T])  # (B, T - keep, C)
        for i, block in enumerate(self.blocks):
            x = block(x, last_only=i == len(self.blocks) - 1, qkv=qkv if i == 0 else None)  # the last block keeps (B, 1, C)
        return self.unembed(self.ln_f(x[:, -1]))  # (B, K)

    def first_block_qkv(self, idx: torch.Tensor) -> QKV | None:
        """The first block's projections by table lookup, when that is cheaper.

        Its input at (b, t) is tok_emb[idx[b, t]] + pos_emb[t]: one of T·V vectors. Projecting those
        T·V vectors once and gathering costs far less than projecting B·T rows when V < B (a
        full-batch step on modular arithmetic: 98 tokens, thousands of examples). Exact, since each
        row of a projection depends on its own input row only; skipped under embedding dropout.
        """
        B, T = idx.shape
        V, C = self.tok_emb.weight.shape
        if V >= B or (self.training and self.drop.p > 0):
            return None
        table = self.positions[:T, None] + self.tok_emb.weight[None]  # (T, V, C): every (position, token)
        q, k, v = self.blocks[0].qkv(table)  # each (T, V, C)
        rows = idx + V * torch.arange(T, device=idx.device)  # (B, T): row of (t, idx[b, t]) in the flattened table
        if len(self.blocks) == 1:  # the only block is also the last: only the last position's query is needed
            q, q_rows = q[-1], idx[:, -1:]  # (V, C), (B, 1)
        else:
            q, q_rows = q.reshape(T * V, C), rows
        return lookup(q_rows, q), lookup(rows, k.reshape(T * V, C)), lookup(rows, v.reshape(T * V, C))


# --- groklab registration: the config keys `model.*` for name=transformer -------------------------


@dataclass
class TransformerConfig(ModelConfig):
    """`model.*` keys: the TransformerShape fields that do not come from the task."""

    name: str = "transformer"
    d_model: int = 128
    n_heads: int = 4
    n_layers: int = 1
    d_mlp: int = 512  # 0 = 4 * d_model, so a sweep over d_model scales the MLP with it (Davies et al.'s code)
    act: str = "relu"
    norm: str = "none"
    dropout: float = 0.0
    dropout_at: list[str] = field(default_factory=lambda: list(DROPOUT_SITES))  # embed attn attn_out mlp; davies2023: [mlp]
    causal: bool = True
    mlp_bias: bool = True
    init: str = "nanda"  # nanda: every matrix N(0, 1/d_model); torch: PyTorch's layer defaults (embeddings N(0, 1))
    embed_init: str = "default"  # default | toeplitz: Gu et al.'s Toeplitz W_E (App. E, their rec.py), every token
    pos: str = "learned"  # learned | sinusoidal: fixed sin/cos positions, as in Davies et al.'s (OpenAI's grok) code

    def validate(self) -> None:
        super().validate()
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
    from_task = {
        "vocab_size": spec.vocab_size,
        "n_classes": spec.n_classes,
        "seq_len": spec.seq_len,
    }
    from_cfg = {f.name: getattr(cfg, f.name) for f in fields(TransformerShape) if f.name not in from_task and hasattr(cfg, f.name)}
    from_cfg["d_mlp"] = cfg.d_mlp or 4 * cfg.d_model
    from_cfg["dropout_at"] = tuple(cfg.dropout_at)
    return Transformer(TransformerShape(**from_task, **from_cfg))


MODELS.register("transformer")(ModelEntry(TransformerConfig, _build, "decoder-only transformer, logits at the last position"))
