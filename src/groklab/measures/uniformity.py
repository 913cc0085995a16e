"""Uniformity: how evenly the number-token embeddings are spaced (Gu et al. 2025, §3–4).

Gu et al. argue weight decay drives the embeddings of Z_p towards uniform
spacing, and track it through MED, a mean distance; MED's scale also shrinks
with weight decay. The coefficient of variation of the same consecutive
distances is scale-free: 0 when every ‖φ(i+1) − φ(i)‖ is equal.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from groklab.measures.base import MEASURES, EvalContext, Measure
from groklab.measures.med import MedConfig, consecutive_distances, needs_number_tokens
from groklab.measures.passes import Tap
from groklab.tasks.base import TaskSpec


def uniformity(emb: torch.Tensor, wrap: bool = True) -> float:
    """std / mean of the consecutive distances (population std); NaN if every distance is 0."""
    dist = consecutive_distances(emb, wrap)
    mean = dist.mean()
    return (dist.std(correction=0) / mean).item() if mean > 0 else float("nan")


@MEASURES.register(
    "uniformity",
    config=MedConfig,
    summary="coefficient of variation of consecutive number-token embedding distances; 0 = evenly spaced (Gu et al. 2025)",
)
class Uniformity(Measure):
    name = "uniformity"

    @classmethod
    def not_applicable(cls, model: nn.Module, spec: TaskSpec) -> str | None:
        return needs_number_tokens(model, spec, "uniformity")

    @torch.no_grad()
    def compute(self, ctx: EvalContext, taps: Sequence[Tap] = ()) -> dict[str, float]:
        emb = ctx.model.token_embedding[: ctx.spec.n_operand_tokens]  # (p, C)
        return {"uniformity": uniformity(emb, ctx.cfg.measures.med_wrap)}
