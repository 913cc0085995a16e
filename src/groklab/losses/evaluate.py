"""A model's mean loss and accuracy on a whole set, in chunks so large sets fit in memory."""

from __future__ import annotations

from collections.abc import Callable

import torch

from groklab.losses.objective import correct_count, mean_loss

EVAL_CHUNK = 16384  # rows per forward pass unless schedule.eval_batch_size says otherwise


def eval_chunk(eval_batch_size: int) -> int:
    """Rows per evaluation forward pass: schedule.eval_batch_size, 0 = EVAL_CHUNK."""
    return eval_batch_size or EVAL_CHUNK


@torch.no_grad()
def loss_and_accuracy(
    forward: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    kind: str,
    chunk: int = EVAL_CHUNK,
    dtype: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean loss and accuracy in float64 of `forward` on (x, y): one model's (N, ...) set gives two 0-dim
        tensors, a stack of K members' (K, N, ...) sets two (K,) tensors. The loss is computed in `dtype`
    (optim.loss_dtype). The sample axis is y's last."""
    axis, n = y.dim() - 1, y.shape[-1]
    total = torch.zeros(y.shape[:-1], dtype=torch.float64, device=y.device)
    correct = torch.zeros(y.shape[:-1], dtype=torch.long, device=y.device)
    for i in range(0, n, chunk):
        width = min(chunk, n - i)
        logits = forward(x.narrow(axis, i, width))
        yc = y.narrow(axis, i, width)
        total += mean_loss(logits, yc, kind, dtype).double() * width
        correct += correct_count(logits, yc)
    return total / n, correct.double() / n
