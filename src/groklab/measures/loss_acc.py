"""Loss and accuracy on the full train and test sets: the curves that define grokking."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from groklab.config.schema import ExperimentConfig
from groklab.losses import EVAL_CHUNK, loss_and_accuracy
from groklab.measures.base import MEASURES, EvalContext, Measure


def eval_chunk(cfg: ExperimentConfig) -> int:
    """Rows per evaluation forward pass (schedule.eval_batch_size, 0 = EVAL_CHUNK)."""
    return cfg.schedule.eval_batch_size or EVAL_CHUNK


@torch.no_grad()
def evaluate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss: str,
    forward: Callable[[torch.Tensor], torch.Tensor] | None = None,
    chunk: int = EVAL_CHUNK,
) -> tuple[float, float]:
    """Mean loss and accuracy of `model` on (x, y), in chunks so large sets fit in memory.

    `forward` replaces `model(chunk)`: a measure that hooks the same pass (feature rank) gets these
    numbers for free, identical to the ones loss_acc would compute."""
    loss_value, acc = loss_and_accuracy(forward or model, x, y, loss, chunk)
    return loss_value.item(), acc.item()


@MEASURES.register("loss_acc")
class LossAccuracy(Measure):
    name = "loss_acc"
    summary = "train_loss, train_acc, test_loss, test_acc on the full sets; train_acc_batches: train mode, the last epoch's batches"

    @torch.no_grad()
    def compute(self, ctx: EvalContext) -> dict[str, float]:
        loss, chunk = ctx.cfg.optim.loss, eval_chunk(ctx.cfg)
        d = ctx.data
        if "train_loss" in ctx.cache:  # the trainer's full-batch forward already saw the train set
            train_loss, train_acc = ctx.cache["train_loss"], ctx.cache["train_acc"]
        else:
            train_loss, train_acc = evaluate(ctx.model, d.train_x, d.train_y, loss, chunk=chunk)
        if "test_loss" in ctx.cache:  # an ensemble evaluated every member's test set in one vectorized pass
            test_loss, test_acc = ctx.cache["test_loss"], ctx.cache["test_acc"]
        else:
            test_loss, test_acc = evaluate(ctx.model, d.test_x, d.test_y, loss, chunk=chunk)
        out = {"train_loss": train_loss, "train_acc": train_acc, "test_loss": test_loss, "test_acc": test_acc}
        if "train_acc_batches" in ctx.cache:  # the trainer's own record of its training forwards (training/batch_accuracy.py)
            out["train_acc_batches"] = ctx.cache["train_acc_batches"]
        return out
