"""A deep MLP on flat vectors: the network of Deep Grokking (Fan, Pascanu, Jaggi 2024)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from groklab.errors import ConfigError
from groklab.models.base import MODELS
from groklab.models.hooks import mlp_layer_hooks, run_hooked
from groklab.models.transformer import ACTIVATIONS
from groklab.schema import ModelConfig, check_layers
from groklab.tasks.base import TaskSpec


class DeepMLP(nn.Module):
    """`depth` Linear layers: d_in -> width, (depth - 2) x (width -> width), width -> n_classes, with the
    activation after every layer but the last: (B, d_in) -> (B, n_classes)."""

    def __init__(self, d_in: int, n_classes: int, depth: int = 4, width: int = 400, act: str = "relu", bias: bool = True) -> None:
        super().__init__()
        dims = [d_in] + [width] * (depth - 1) + [n_classes]
        layers: list[nn.Module] = []
        for i in range(depth):
            layers.append(nn.Linear(dims[i], dims[i + 1], bias=bias))
            if i < depth - 1:
                layers.append(ACTIVATIONS[act]())
        self.net = nn.Sequential(*layers)
        self.layers = mlp_layer_hooks(self.net)  # layers.{i}.hook_pre: Linear i's output; hook_post: after its activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return run_hooked(self.net, self.layers, x)  # (B, d_in) -> (B, n_classes)


# --- groklab registration: the config keys `model.*` for name=deep_mlp ---------------------------


@dataclass
class DeepMLPConfig(ModelConfig):
    name: str = "deep_mlp"
    depth: int = 4  # Linear layers, input and output layers included
    width: int = 400
    act: str = "relu"
    bias: bool = True

    def validate(self) -> None:
        super().validate()
        check_layers("model.depth", self.depth)
        if self.depth < 2:
            raise ConfigError("model.depth", f"must be >= 2 (input and output layers), got {self.depth}")
        if self.width < 1:
            raise ConfigError("model.width", f"must be >= 1, got {self.width}")
        if self.act not in ACTIVATIONS:
            raise ConfigError("model.act", f"unknown activation {self.act!r}; choose one of {', '.join(ACTIVATIONS)}")


def _build(cfg: DeepMLPConfig, spec: TaskSpec) -> DeepMLP:
    if spec.input_dim < 1:
        raise ConfigError("model.name", "deep_mlp needs a task with vector inputs (e.g. mnist), not token sequences")
    return DeepMLP(spec.input_dim, spec.n_classes, cfg.depth, cfg.width, cfg.act, cfg.bias)


MODELS.register("deep_mlp", config=DeepMLPConfig, summary="deep MLP on flat vectors (depth counts Linear layers)")(_build)
