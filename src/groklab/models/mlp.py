"""MLPs: on concatenated token embeddings (algorithmic tasks) or on flat vectors."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from groklab.errors import ConfigError
from groklab.models.base import MODELS
from groklab.models.dropout import Dropout
from groklab.models.embedding_init import EMBED_INITS, apply_embed_init
from groklab.models.hooks import HookPoint, mlp_layer_hooks, run_hooked
from groklab.models.lookup import lookup, stacked_lookup
from groklab.models.transformer import ACTIVATIONS
from groklab.schema import ModelConfig, check_layers
from groklab.tasks.base import TaskSpec


class EmbeddingMLP(nn.Module):
    """Embed each of T tokens in C dims, concatenate, then n_layers hidden layers of width W: (B, T) -> (B, K).

    `embed_init="toeplitz"` starts the token embedding as Gu et al.'s Toeplitz matrix (App. E).
    """

    def __init__(
        self,
        vocab_size: int,
        seq_len: int,
        n_classes: int,
        d_model: int = 128,
        d_mlp: int = 512,
        n_layers: int = 1,
        act: str = "relu",
        dropout: float = 0.0,
        embed_init: str = "default",
    ) -> None:
        super().__init__()
        self.d_model = d_model
        self.tok_emb = nn.Embedding(vocab_size, d_model)
        layers: list[nn.Module] = []
        width = seq_len * d_model
        for _ in range(n_layers):
            layers += [nn.Linear(width, d_mlp), ACTIVATIONS[act](), Dropout(dropout)]
            width = d_mlp
        layers.append(nn.Linear(width, n_classes))
        self.net = nn.Sequential(*layers)
        self.hook_embed = HookPoint()  # (B, T*C): the concatenated token embeddings
        self.layers = mlp_layer_hooks(self.net)  # layers.{i}.hook_pre: Linear i's output; hook_post: after its activation
        nn.init.normal_(self.tok_emb.weight, std=1.0 / math.sqrt(d_model))
        apply_embed_init(self.tok_emb.weight, embed_init)  # drawn last: the rest is unchanged

    @property
    def token_embedding(self) -> torch.Tensor:
        """(V, C) token embedding matrix."""
        return self.tok_emb.weight

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        B, T = idx.shape
        x = self.hook_embed(lookup(idx, self.tok_emb.weight).reshape(B, T * self.d_model))  # (B, T*C)
        return run_hooked(self.net, self.layers, x)  # (B, K)

    def stacked_forward(self, params: dict[str, torch.Tensor], idx: torch.Tensor) -> torch.Tensor:
        """E models of this shape at once: `params` as named here, each (E, ...); (E, B, T) -> (E, B, K).

        The same arithmetic as forward() with batched matmuls; a vectorized ensemble runs this instead of
        vmap over forward(), whose per-op overhead dominates a model this small."""
        E, B, T = idx.shape
        x = stacked_lookup(idx, params["tok_emb.weight"]).reshape(E, B, T * self.d_model)  # (E, B, T*C)
        for i, layer in enumerate(self.net):
            if isinstance(layer, nn.Linear):
                w, b = params[f"net.{i}.weight"], params[f"net.{i}.bias"]  # (E, out, in), (E, out)
                x = torch.baddbmm(b.unsqueeze(1), x, w.transpose(1, 2))  # (E, B, out)
            elif isinstance(layer, nn.ReLU):
                x = x.relu_()  # in place on the matmul's output, which its backward does not read: ~5% of a step
            else:
                x = layer(x)  # activation or dropout, element-wise: each member draws its own dropout mask
        return x


# --- groklab registration: the config keys `model.*` for name=mlp ------------------------------


@dataclass
class MLPConfig(ModelConfig):
    name: str = "mlp"
    d_model: int = 128  # embedding size per token
    d_mlp: int = 512  # hidden width
    n_layers: int = 1  # hidden layers
    act: str = "relu"
    dropout: float = 0.0
    embed_init: str = "default"  # default | toeplitz: Gu et al.'s Toeplitz embedding (App. E, their rec.py)

    def validate(self) -> None:
        super().validate()
        check_layers("model.n_layers", self.n_layers)
        for key in ("d_model", "d_mlp"):
            if getattr(self, key) < 1:
                raise ConfigError(f"model.{key}", f"must be >= 1, got {getattr(self, key)}")
        if self.n_layers < 0:
            raise ConfigError("model.n_layers", f"must be >= 0, got {self.n_layers}")
        if self.act not in ACTIVATIONS:
            raise ConfigError("model.act", f"unknown activation {self.act!r}; choose one of {', '.join(ACTIVATIONS)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError("model.dropout", f"must be in [0, 1), got {self.dropout}")
        if self.embed_init not in EMBED_INITS:
            raise ConfigError("model.embed_init", f"unknown embedding init {self.embed_init!r}; choose default or toeplitz")


def _build(cfg: MLPConfig, spec: TaskSpec) -> EmbeddingMLP:
    return EmbeddingMLP(
        spec.vocab_size,
        spec.seq_len,
        spec.n_classes,
        cfg.d_model,
        cfg.d_mlp,
        cfg.n_layers,
        cfg.act,
        cfg.dropout,
        embed_init=cfg.embed_init,
    )


MODELS.register("mlp", config=MLPConfig, summary="MLP on concatenated token embeddings")(_build)
