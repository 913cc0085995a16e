"""Weight norm: the L2 norm of all parameters, and of each parameter tensor (Omnigrok's lens)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from groklab.measures.base import MEASURES, EvalContext, Measure
from groklab.measures.passes import Tap


@MEASURES.register("weight_norm", summary="weight_norm = sqrt(sum of squared parameters); weight_norm/<param> per tensor")
class WeightNorm(Measure):
    name = "weight_norm"

    @torch.no_grad()
    def compute(self, ctx: EvalContext, taps: Sequence[Tap] = ()) -> dict[str, float]:
        names, params = zip(*ctx.model.named_parameters(), strict=True)
        norms = torch.stack([p.detach().double().norm() for p in params]).tolist()
        out = {f"weight_norm/{n}": v for n, v in zip(names, norms, strict=True)}
        out["weight_norm"] = sum(v * v for v in norms) ** 0.5
        return out
