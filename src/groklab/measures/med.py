"""MED, the mean distance between consecutive token embeddings (Gu et al. 2025, Definition 4.2).

MED = (1/p) Σ_{i=0}^{p-1} ‖φ(i+1) − φ(i)‖₂ with φ(p) = φ(0): it falls as weight
decay makes the embeddings of Z_p uniform, and traces the test loss. The
authors' code differs: no wrap-around and token p−1 left out, i.e. the mean of
‖φ(i+1) − φ(i)‖ over i = 0..p−3 (`measures.med_wrap=false`). When b has tokens
of its own (`task.b_offset`), MED is the mean of the two tables' MEDs (the authors'
str.py adds them; the mean keeps the scale of one table).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from groklab.measures.base import MEASURES, EvalContext, Measure
from groklab.measures.passes import Tap
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


def med(emb: torch.Tensor, wrap: bool = True) -> float:
    """MED of an embedding matrix (p, C) whose rows are the numbers 0..p-1 in order."""
    return consecutive_distances(emb, wrap).mean().item()


@dataclass
class MedConfig:
    """`measures.*` keys of med (and uniformity, which reads the same distances)."""

    med_wrap: bool = True  # Gu et al. Def. 4.2 wraps around at p; False = the authors' code variant

    def validate(self) -> None:
        """Nothing a type cannot say."""


@MEASURES.register("med", config=MedConfig, summary="mean L2 distance between consecutive number-token embeddings (Gu et al. 2025)")
class MeanEmbeddingDistance(Measure):
    name = "med"

    @classmethod
    def not_applicable(cls, model: nn.Module, spec: TaskSpec) -> str | None:
        return needs_number_tokens(model, spec, "MED")

    @torch.no_grad()
    def compute(self, ctx: EvalContext, taps: Sequence[Tap] = ()) -> dict[str, float]:
        p, table = ctx.spec.n_operand_tokens, ctx.model.token_embedding
        offsets = sorted(set(ctx.spec.operand_token_offsets))
        return {"med": sum(med(table[o : o + p], ctx.cfg.measures.med_wrap) for o in offsets) / len(offsets)}  # rows (p, C) each
