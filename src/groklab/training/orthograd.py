"""⊥Grad (Prieto et al. 2025): before the optimizer steps, each parameter tensor's gradient g loses its
component along the weights w, g - (w·g / (w·w + 1e-30)) w, and is rescaled to g's norm, as their
OrthoGrad wrapper does for any optimizer. In a vectorized ensemble each member is projected on its own
weights: the dot products run over a stacked tensor's trailing dimensions, one per member (padding
entries are zero in both and change nothing)."""

from __future__ import annotations

import torch

TINY = 1e-30  # their epsilon, in the norm and in w·w


@torch.no_grad()
def orthogonalize_(params: list[torch.Tensor], stacked: bool = False) -> None:
    """Project every parameter's .grad in place; `stacked`: dimension 0 indexes ensemble members."""
    for p in params:
        if p.grad is None:
            continue
        w = p.reshape(p.shape[0], -1) if stacked else p.reshape(1, -1)
        g = p.grad.view(w.shape)
        coef = (w * g).sum(1, keepdim=True) / ((w * w).sum(1, keepdim=True) + TINY)
        g_orth = g - coef * w
        g.copy_(g_orth * (g.norm(dim=1, keepdim=True) / (g_orth.norm(dim=1, keepdim=True) + TINY)))
