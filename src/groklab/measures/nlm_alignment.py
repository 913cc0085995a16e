"""Alignment of the descent direction with the weights: Prieto et al.'s (2025) naïve loss minimization.

Past fitting the train set, a network whose logits scale with its weights lowers the loss fastest by growing
its weights along themselves (the "NLM direction"); the paper shows the negative gradient turning towards the
weights while learning stalls, which is what ⊥Grad removes. `nlm_cos` is cos(-∇L, θ) over all parameters at
once, with L the mean training loss over the full train set, as the run computes it (loss, loss dtype).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from groklab.losses import mean_loss
from groklab.measures.base import MEASURES, EvalContext, Measure
from groklab.measures.passes import Tap


def train_gradient(ctx: EvalContext) -> list[torch.Tensor]:
    """The gradient of the mean train loss with respect to every trainable parameter, in evaluation chunks;
    the parameters' own .grad is left alone."""
    params = [p for p in ctx.model.parameters() if p.requires_grad]
    x, y = ctx.data.train_x, ctx.data.train_y
    total = [torch.zeros_like(p) for p in params]
    with torch.enable_grad():
        for i in range(0, len(y), ctx.eval_chunk):
            xc, yc = x[i : i + ctx.eval_chunk], y[i : i + ctx.eval_chunk]
            loss = mean_loss(ctx.model(xc), yc, ctx.cfg.optim.loss, ctx.cfg.optim.loss_dtype) * (len(yc) / len(y))
            grads = torch.autograd.grad(loss, params, allow_unused=True)
            for t, g in zip(total, grads, strict=True):
                if g is not None:
                    t += g
    return total


@MEASURES.register("nlm_alignment", summary="nlm_cos: cosine between the negative train-loss gradient and the weights (Prieto et al. 2025)")
class NlmAlignment(Measure):
    name = "nlm_alignment"

    @torch.no_grad()
    def compute(self, ctx: EvalContext, taps: Sequence[Tap] = ()) -> dict[str, float]:
        grads = train_gradient(ctx)
        params = [p for p in ctx.model.parameters() if p.requires_grad]
        g = torch.cat([t.reshape(-1).double() for t in grads])
        w = torch.cat([p.detach().reshape(-1).double() for p in params])
        denominator = g.norm() * w.norm()
        return {"nlm_cos": float(-(g @ w) / denominator) if denominator > 0 else 0.0}
