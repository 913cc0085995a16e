"""Uniformity: how evenly the number-token embeddings are spaced (Gu et al. 2025, §3–4).

Gu et al. argue weight decay drives the embeddings of Z_p towards uniform
spacing, and track it through MED, a mean distance; MED's scale also shrinks
with weight decay. The coefficient of variation of the same consecutive
distances is scale-free: 0 when every ‖φ(i+1) − φ(i)‖ is equal.
"""

from __future__ import annotations

import torch
from torch import nn

from groklab.measures.base import MEASURES, EvalContext, Measure
from groklab.tasks.base import TaskSpec


def needs_number_tokens(model: nn.Module, spec: TaskSpec, what: str) -> str | None:
    """The one-line reason an embedding-geometry measure cannot run, or None (MED's rule)."""
    if spec.n_operand_tokens < 3 or not hasattr(model, "token_embedding"):
        return f"{what} needs a model with a token embedding over numbers 0..p-1 (a modular-arithmetic task)"
    return None


def consecutive_distances(emb: torch.Tensor, wrap: bool = True) -> torch.Tensor:
    """‖φ(i+1) − φ(i)‖ for rows of emb (p, C), in float64, with med.py's index convention.

    wrap: i = 0..p-1 with φ(p) = φ(0) (Gu et al. Def. 4.2); else i = 0..p-3, as in the authors' code.
    """
    e = emb.detach().double()
    diffs = torch.roll(e, -1, dims=0) - e if wrap else e[1:-1] - e[:-2]
    return diffs.norm(dim=1)


def uniformity(emb: torch.Tensor, wrap: bool = True) -> float:
    """std / mean of the consecutive distances (population std); NaN if every distance is 0."""
    dist = consecutive_distances(emb, wrap)
    mean = dist.mean()
    return (dist.std(correction=0) / mean).item() if mean > 0 else float("nan")


@MEASURES.register("uniformity")
class Uniformity(Measure):
    name = "uniformity"
    summary = "coefficient of variation of consecutive number-token embedding distances; 0 = evenly spaced (Gu et al. 2025)"

    @classmethod
    def not_applicable(cls, model: nn.Module, spec: TaskSpec) -> str | None:
        return needs_number_tokens(model, spec, "uniformity")

    @torch.no_grad()
    def compute(self, ctx: EvalContext) -> dict[str, float]:
        emb = ctx.model.token_embedding[: ctx.spec.n_operand_tokens]  # (p, C)
        return {"uniformity": uniformity(emb, ctx.cfg.measures.med_wrap)}
