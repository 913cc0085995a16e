"""Train accuracy as Davies et al.'s runner logs it: in train mode (dropout on), from the training forward
passes themselves, averaged over the last epoch's minibatches.

Their Fig. 5 thresholds (train accuracy >= 90%) are on this quantity, not on an eval-mode pass over the
train set; groklab logs it as `train_acc_batches` beside `train_acc`. Their runner logs the single
minibatch for its first 1,000 steps and the unweighted mean of an epoch's minibatch accuracies after
that; so does this. With full batches and no dropout it equals `train_acc`, except at an evaluation after
the run's last update, where no training forward follows and the value is still the last step's.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import torch

SINGLE_BATCH_UNTIL = 1000  # the authors' runner: before this step it logs each step's own batch


class BatchAccuracy:
    """The last epoch's minibatch correct counts (0-dim, or (K,) for an ensemble) with their batch sizes.

    The counts stay on the device while training (no sync a step); the accuracy is taken on the host, in
    float64, only when an evaluation asks for it (MPS has no float64)."""

    def __init__(self, steps_per_epoch: int) -> None:
        self.window: deque[tuple[torch.Tensor, int]] = deque(maxlen=steps_per_epoch)

    def add(self, correct: torch.Tensor, n: int) -> None:
        """One training forward's correct count(s) over a batch of n examples."""
        self.window.append((correct, n))

    def value(self, step: int) -> torch.Tensor | None:
        """The logged accuracy at `step`: the newest batch's before SINGLE_BATCH_UNTIL, else the window's mean."""
        if not self.window:
            return None
        accs = [c.cpu().double() / n for c, n in self.window]
        return accs[-1] if step < SINGLE_BATCH_UNTIL else torch.stack(accs).mean(0)

    def state_dict(self, member: int | None = None) -> dict[str, Any]:
        """For a checkpoint; `member` k keeps only ensemble member k's entries."""
        return {"window": [(c.clone() if member is None else c[member].clone(), n) for c, n in self.window]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.window.clear()
        self.window.extend((c, n) for c, n in state.get("window", []))
