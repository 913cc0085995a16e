"""Training at a fixed weight norm (Liu, Michaud, Tegmark 2023, "Omnigrok"): after every optimizer step all
parameters are multiplied by one factor that brings their total L2 norm back to a target, as their
landscape notebooks do (`rescale(mlp, sqrt(L2_init / L2_new))`). The target is optim.fixed_norm times
the norm at initialization (after model.init_scale); theirs is 1. In a vectorized ensemble each member is
held at its own target: its norm runs over its slice of every stacked tensor (padding entries are zero
and stay zero)."""

from __future__ import annotations

import torch


@torch.no_grad()
def member_norms(params: list[torch.Tensor], stacked: bool = False) -> torch.Tensor:
    """The total L2 norm of all parameters, in float64: (K,) for stacked members, (1,) for one model."""
    squares = [p.detach().double().reshape(p.shape[0] if stacked else 1, -1).square().sum(1) for p in params]
    return torch.stack(squares).sum(0).sqrt()


@torch.no_grad()
def rescale_to_(params: list[torch.Tensor], target: torch.Tensor, stacked: bool = False) -> None:
    """Multiply every parameter in place so that the total norm (per member when `stacked`) equals `target`."""
    factor = target / member_norms(params, stacked)  # (K,) or (1,)
    for p in params:
        scale = factor.to(p.dtype)
        p.mul_(scale.view(-1, *([1] * (p.dim() - 1))) if stacked else scale)
