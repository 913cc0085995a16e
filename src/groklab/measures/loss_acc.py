"""Loss and accuracy on the full train and test sets: the curves that define grokking."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from groklab.measures.base import MEASURES, EvalContext, Measure
from groklab.measures.passes import Tap


@MEASURES.register(
    "loss_acc",
    summary="train_loss, train_acc, test_loss, test_acc on the full sets; train_acc_batches: train mode, the last epoch's batches",
)
class LossAccuracy(Measure):
    name = "loss_acc"

    def taps(self, ctx: EvalContext) -> list[Tap]:
        """A pass over each split whose loss the trainer does not know already (a full-batch training forward
        saw the train set; an ensemble evaluates its members' test sets in one vectorized pass)."""
        return [Tap(split, loss=True) for split in ("train", "test") if f"{split}_loss" not in ctx.known]

    @torch.no_grad()
    def compute(self, ctx: EvalContext, taps: Sequence[Tap] = ()) -> dict[str, float]:
        passes = {tap.split: tap.loss_acc for tap in (taps or ctx.run(self.taps(ctx)))}
        out: dict[str, float] = {}
        for split in ("train", "test"):
            loss, acc = passes[split] if split in passes else (ctx.known[f"{split}_loss"], ctx.known[f"{split}_acc"])
            out[f"{split}_loss"], out[f"{split}_acc"] = loss, acc
        if "train_acc_batches" in ctx.known:  # the trainer's own record of its training forwards (training/batch_accuracy.py)
            out["train_acc_batches"] = ctx.known["train_acc_batches"]
        return out
