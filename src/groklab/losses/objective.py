"""Training objectives: cross-entropy, MSE against one-hot targets (Omnigrok, Deep Grokking), or StableMax
cross-entropy (Prieto et al. 2025: softmax's exponential replaced by s(x) = x + 1 for x >= 0 and
1 / (1 - x) below, computed in float64 as their code does, so that large logits do not collapse the loss
to exactly zero in floating point).

`dtype` (optim.loss_dtype) is what the loss is computed in: Prieto et al. compute it in float32, float16 or
float64 from a float32 model's logits, and softmax collapses at a smaller logit gap the fewer bits it has;
"auto" is the logits' own dtype, except StableMax, which their code always computes in float64.

Every function takes one model's logits (B, C), or a stack of K members' (K, B, C) and returns one value
per member. A lone model reduces its batch in one kernel and a stack per member; the two round
differently in the last bit, and each is kept as it was, so stored runs reproduce exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from groklab.dtypes import dtype_of

LOSS_NAMES = ("ce", "mse", "stablemax")
LOSS_DTYPES = ("auto", "float32", "float64")


def loss_input(logits: torch.Tensor, kind: str, dtype: str = "auto") -> torch.Tensor:
    """The logits in the dtype the loss is computed in (see the module docstring)."""
    if dtype not in LOSS_DTYPES:
        raise ValueError(f"unknown loss dtype {dtype!r}")
    if dtype == "auto":
        return logits.double() if kind == "stablemax" else logits
    return logits.to(dtype_of(dtype))


def stablemax_nll(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-example StableMax cross-entropy in z's dtype: -log(s(z_y) / sum_j s(z_j)); logits (..., C), y (...)."""
    s = torch.where(z < 0, 1 / (1 - z + 1e-30), z + 1)  # their s(x), epsilon included
    return -(s.gather(-1, y.unsqueeze(-1)).squeeze(-1) / s.sum(-1)).log()


def mean_loss(logits: torch.Tensor, y: torch.Tensor, kind: str, dtype: str = "auto") -> torch.Tensor:
    """Mean loss over the batch: (B, C) logits and (B,) labels -> (); (K, B, C) and (K, B) -> (K,).

    MSE averages over batch x classes."""
    C = logits.shape[-1]
    if kind not in LOSS_NAMES:
        raise ValueError(f"unknown loss {kind!r}")
    logits = loss_input(logits, kind, dtype)
    if kind == "stablemax":
        return stablemax_nll(logits, y).mean(-1)  # () or (K,)
    if logits.dim() == 2:
        if kind == "ce":
            return F.cross_entropy(logits, y)
        return F.mse_loss(logits, F.one_hot(y, C).to(logits.dtype))
    K, B, _ = logits.shape
    if kind == "ce":
        return F.cross_entropy(logits.reshape(K * B, C), y.reshape(K * B), reduction="none").view(K, B).mean(1)
    return F.mse_loss(logits, F.one_hot(y, C).to(logits.dtype), reduction="none").mean(dim=(1, 2))


def example_losses(logits: torch.Tensor, y: torch.Tensor, kind: str, dtype: str = "auto") -> torch.Tensor:
    """Each example's loss, unreduced, in the loss's precision: (B, C) logits and (B,) labels -> (B,)."""
    if kind not in LOSS_NAMES:
        raise ValueError(f"unknown loss {kind!r}")
    z = loss_input(logits, kind, dtype)
    if kind == "stablemax":
        return stablemax_nll(z, y)
    if kind == "ce":
        return F.cross_entropy(z, y, reduction="none")
    return F.mse_loss(z, F.one_hot(y, z.shape[-1]).to(z.dtype), reduction="none").mean(-1)


def correct_count(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Argmax predictions equal to the labels, per member: () or (K,), left on the device (no host sync)."""
    return (logits.argmax(dim=-1) == y).sum(-1)
