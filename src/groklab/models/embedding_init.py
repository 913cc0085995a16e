"""Structured initializations of the number-token embedding (Gu et al. 2025, App. E).

Gu et al. initialise W_E as a Toeplitz matrix built from one random vector and
report that grokking comes about twice as early (p = 97): consecutive numbers
start as shifted copies of one another, so their embeddings are spread more
evenly over Z_p than independent Gaussian rows are.
"""

from __future__ import annotations

import torch

EMBED_INITS = ("default", "toeplitz")


def toeplitz_embedding(p: int, d: int, generator: torch.Generator | None = None, std: float = 1.0) -> torch.Tensor:
    """A (p, d) Toeplitz matrix E[i, j] = v[i − j + d − 1] from one vector v ~ N(0, std²) of length p + d − 1.

    Every diagonal is constant, so row i + 1 is row i shifted one column to the right with
    one fresh entry, v[i + d], at column 0 (scipy.linalg.toeplitz(v[d-1:], v[d-1::-1])).
    Each entry is N(0, std²), as under an i.i.d. init with the same std. Consecutive distances
    ‖E[i+1] − E[i]‖² = Σ_{j<d} (v[i+d−j] − v[i+d−j−1])² are sliding sums over one sequence of
    differences: equal in expectation and far more even than for i.i.d. rows, but not exactly equal.
    Draws from `generator`, or from the global torch RNG when None (as the rest of the init does).
    """
    if p < 1 or d < 1:
        raise ValueError(f"need p >= 1 and d >= 1, got p={p}, d={d}")
    v = torch.randn(p + d - 1, generator=generator) * std
    idx = torch.arange(p)[:, None] - torch.arange(d)[None, :] + d - 1  # (p, d): i − j + d − 1, constant on diagonals
    return v[idx]


@torch.no_grad()
def apply_embed_init(weight: torch.Tensor, kind: str, n_rows: int, std: float) -> None:
    """Overwrite rows 0..n_rows-1 of an embedding weight (V, C) in place; n_rows = 0 means all V rows.

    Only the number tokens get the structure: other tokens (e.g. "=") keep the default init.
    """
    if kind == "default":
        return
    if kind != "toeplitz":
        raise ValueError(f"unknown embed_init {kind!r}; choose one of {', '.join(EMBED_INITS)}")
    V, C = weight.shape
    rows = n_rows or V
    if not 1 <= rows <= V:
        raise ValueError(f"cannot initialise {rows} number-token rows of a {V}-token embedding")
    weight[:rows] = toeplitz_embedding(rows, C, std=std).to(weight)
