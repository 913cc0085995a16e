"""How a registered model is built from configs: its config class plus a builder."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from groklab.registry import Registry
from groklab.schema import ModelConfig
from groklab.tasks.base import TaskSpec

ModelBuilder = Callable[[Any, TaskSpec], nn.Module]  # (the model's config, the task's spec) -> the network
MODELS: Registry[ModelBuilder] = Registry("model")


@torch.no_grad()
def scale_parameters(model: nn.Module, alpha: float) -> nn.Module:
    """Multiply every parameter (weights, biases, norms) by alpha: the init-scale knob of Omnigrok and Deep Grokking."""
    if alpha != 1.0:
        for p in model.parameters():
            p.mul_(alpha)
    return model


def build_model(cfg: ModelConfig, spec: TaskSpec) -> nn.Module:
    """The model for a config and task, after the default init and the init-scale multiplier."""
    build = MODELS.get(cfg.name, "model.name")
    return scale_parameters(build(cfg, spec), cfg.init_scale)


def train_mode_differs(model: nn.Module) -> bool:
    """Does the model compute something else in train mode (dropout, batch statistics)?

    Then a full-batch training forward cannot stand in for the evaluation of the train set:
    its loss and accuracy are those of a perturbed (dropout) or batch-normalized (BatchNorm) network.
    """
    return any((isinstance(m, nn.Dropout) and m.p > 0) or isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
