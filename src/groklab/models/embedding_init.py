"""Structured initializations of the token embedding (Gu et al. 2025, App. E).

Gu et al. initialise W_E as a Toeplitz matrix built from one random vector and
report that grokking comes about twice as early (p = 97). Their construction
(transformer/rec.py): v ~ U[0, 1) of length d_model, W_E = toeplitz(v, v)[:, :d_vocab] / sqrt(d_model),
so token j's embedding is (v[|i − j|])_i / sqrt(d_model) for every token, "=" included.
Consecutive tokens start as shifted copies of one vector: their distances are small
and even (MED ≈ 0.41 at d_model = 128, against ≈ 1.41 for Gaussian rows), which is
the uniformity the authors credit for the speed-up.
"""

from __future__ import annotations

import math

import torch

EMBED_INITS = ("default", "toeplitz")


def toeplitz_embedding(n_tokens: int, d: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """The authors' Toeplitz embedding as rows (n_tokens, d): E[j, i] = v[|i − j|] / sqrt(d), v ~ U[0, 1).

    v has length max(d, n_tokens): for n_tokens <= d this is exactly scipy's
    toeplitz(v, v)[:, :n_tokens].T / sqrt(d) with their v of length d (their code needs
    d_vocab <= d_model; more tokens extend the same symmetric pattern). Draws from
    `generator`, or from the global torch RNG when None (as the rest of the init does).
    """
    if n_tokens < 1 or d < 1:
        raise ValueError(f"need n_tokens >= 1 and d >= 1, got n_tokens={n_tokens}, d={d}")
    v = torch.rand(max(d, n_tokens), generator=generator, dtype=torch.float64)
    idx = (torch.arange(n_tokens)[:, None] - torch.arange(d)[None, :]).abs()  # (n_tokens, d): |j − i|
    return v[idx] / math.sqrt(d)


@torch.no_grad()
def apply_embed_init(weight: torch.Tensor, kind: str) -> None:
    """Overwrite an embedding weight (V, C) in place: every row, as the authors' W_E covers all d_vocab tokens."""
    if kind == "default":
        return
    if kind != "toeplitz":
        raise ValueError(f"unknown embed_init {kind!r}; choose one of {', '.join(EMBED_INITS)}")
    weight.copy_(toeplitz_embedding(*weight.shape).to(weight))
