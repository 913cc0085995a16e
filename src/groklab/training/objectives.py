"""Training objectives: cross-entropy, or MSE against one-hot targets (Omnigrok, Deep Grokking)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def loss_fn(logits: torch.Tensor, y: torch.Tensor, kind: str) -> torch.Tensor:
    """Mean loss of logits (B, K) against class ids (B,). MSE averages over batch × classes."""
    if kind == "ce":
        return F.cross_entropy(logits, y)
    if kind == "mse":
        return F.mse_loss(logits, F.one_hot(y, logits.shape[-1]).to(logits.dtype))
    raise ValueError(f"unknown loss {kind!r}")


def correct_count(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Number of argmax predictions equal to the labels, as a 0-dim tensor (no host sync)."""
    return (logits.argmax(dim=-1) == y).sum()


def train_mode_differs(model: nn.Module) -> bool:
    """Does the model compute something else in train mode (dropout, batch statistics)?

    Then a full-batch training forward cannot stand in for the evaluation of the train set:
    its loss and accuracy are those of a perturbed (dropout) or batch-normalized (BatchNorm) network.
    """
    return any((isinstance(m, nn.Dropout) and m.p > 0) or isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
