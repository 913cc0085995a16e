"""Softmax Collapse (Prieto et al. 2025): the share of training examples on which the loss, computed in its
floating-point precision, has stopped teaching anything.

Once the correct logit leads the others by more than the precision resolves (about 17 in float32, 37 in
float64), exp(z_j - z_max) rounds to 0 for every other class, the softmax becomes exactly one-hot, and the
example's loss and the gradient through its correct logit become exactly 0. The paper's signature of SC is
this share climbing towards 1 while the test accuracy stays at chance. Both counts follow their logger: the
loss exactly 0 (in the run's loss and loss dtype), and the softmax denominator exactly 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from groklab.losses import example_losses, loss_input
from groklab.measures.base import MEASURES, EvalContext, Measure
from groklab.measures.passes import LOGITS, Tap


def collapse_counts(logits: torch.Tensor, y: torch.Tensor, kind: str, dtype: str) -> tuple[int, int]:
    """(examples whose loss is exactly 0, examples whose softmax denominator sum_j exp(z_j - max z) is
    exactly 1), both in the loss's precision; logits (B, C), labels (B,)."""
    z = loss_input(logits, "ce", dtype)  # the softmax in the precision a cross-entropy would use
    denominators = torch.exp(z - z.amax(dim=-1, keepdim=True)).sum(-1)
    return int((example_losses(logits, y, kind, dtype) == 0).sum()), int((denominators == 1).sum())


class CollapseCounter:
    """A tap's sink: the two counts over the train set, chunk by chunk (chunks arrive in row order)."""

    def __init__(self, y: torch.Tensor, kind: str, dtype: str) -> None:
        self.y, self.kind, self.dtype = y, kind, dtype
        self.zero = self.collapsed = self.seen = 0

    def __call__(self, name: str, logits: torch.Tensor) -> None:
        zero, collapsed = collapse_counts(logits, self.y[self.seen : self.seen + len(logits)], self.kind, self.dtype)
        self.zero, self.collapsed, self.seen = self.zero + zero, self.collapsed + collapsed, self.seen + len(logits)


@MEASURES.register(
    "softmax_collapse",
    summary="sc_zero_loss: share of train examples whose loss is exactly 0 in floating point; sc_collapse: softmax exactly one-hot",
)
class SoftmaxCollapse(Measure):
    name = "softmax_collapse"

    def taps(self, ctx: EvalContext) -> list[Tap]:
        """The train set's logits, from loss_acc's train pass where it runs one."""
        return [Tap("train", (LOGITS,), CollapseCounter(ctx.data.train_y, ctx.cfg.optim.loss, ctx.cfg.optim.loss_dtype))]

    @torch.no_grad()
    def compute(self, ctx: EvalContext, taps: Sequence[Tap] = ()) -> dict[str, float]:
        (tap,) = taps or ctx.run(self.taps(ctx))
        assert isinstance(tap.sink, CollapseCounter)
        n = max(tap.sink.seen, 1)
        return {"sc_zero_loss": tap.sink.zero / n, "sc_collapse": tap.sink.collapsed / n}
