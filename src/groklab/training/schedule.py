"""When to evaluate and what learning rate to use at a step."""

from __future__ import annotations

import functools
import math

import torch

from groklab.schema import ScheduleConfig


def eval_steps(s: ScheduleConfig) -> list[int]:
    """Evaluation steps: 0, every `eval_every` up to `eval_dense_until`, then log-spaced
    (`eval_per_decade` per decade) with gaps of at most `eval_max_gap`, and always the last step."""
    steps = set(range(0, min(s.eval_dense_until, s.steps) + 1, s.eval_every))
    k = 0
    while True:
        t = round(10 ** (k / s.eval_per_decade))
        if t > s.steps:
            break
        if t >= s.eval_dense_until:
            steps.add(t)
        k += 1
    ordered = sorted(steps | {s.steps})
    filled = [ordered[0]]
    for t in ordered[1:]:
        while t - filled[-1] > s.eval_max_gap:
            filled.append(filled[-1] + s.eval_max_gap)
        filled.append(t)
    return filled


def snapshot_steps(s: ScheduleConfig) -> set[int]:
    """Steps whose weights are kept: 0, `snapshot_per_decade` log-spaced steps per decade, and the last; none if 0."""
    if s.snapshot_per_decade <= 0:
        return set()
    steps = {0, s.steps}
    k = 0
    while (t := round(10 ** (k / s.snapshot_per_decade))) <= s.steps:
        steps.add(t)
        k += 1
    return steps


def warmup_factor(step: int, warmup_steps: int) -> float:
    """Linear warm-up: the update from `step` to `step`+1 uses lr · min(1, (step+1)/warmup_steps)."""
    if warmup_steps <= 0:
        return 1.0
    return min(1.0, (step + 1) / warmup_steps)


@functools.lru_cache(maxsize=256)
def epoch_permutation(seed: int, epoch: int, n: int) -> torch.Tensor:
    """The order of the n training examples in one epoch: a function of (seed, epoch) alone, so a
    resumed run and an ensemble member see exactly the batches of the same run trained in one go."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))


def batch_indices(seed: int, step: int, n: int, batch: int) -> torch.Tensor:
    """The training examples of the minibatch at `step` (the last batch of an epoch may be smaller)."""
    epoch, j = divmod(step, math.ceil(n / batch))
    return epoch_permutation(seed, epoch, n)[j * batch : (j + 1) * batch]
