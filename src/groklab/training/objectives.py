"""Training objectives: cross-entropy, or MSE against one-hot targets (Omnigrok, Deep Grokking)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


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
