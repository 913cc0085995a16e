"""Epoch-wise double descent of a test-loss curve: a descent, a peak, and a second descent.

Davies et al. (2023) read grokking as a form of epoch-wise double descent: the test loss falls a little,
climbs while the network memorizes, then falls again as it generalizes. The detector works on

    s = log10(max(loss, floor)), smoothed by a centred running median of 3,

because a test loss spans orders of magnitude (ln p at chance, ~10 while memorizing, 1e-3 once grokked): on
a log scale a peak's height is a ratio, the same whether the loss sits near 5 or near 0.01, so one
threshold (`prominence`, in decades: 0.1 is a rise by a factor 10^0.1 ≈ 1.26) fits every phase. The floor
(1e-5 by default) keeps float round-off from becoming decades: in float32 a cross-entropy below ~1e-5 is
mostly rounding, and log10 of it (or of an exact 0) would swing by whole decades between evaluations.
The median of 3 drops one-evaluation blips and leaves a monotone stretch unchanged; it can move a
sharp extreme by one evaluation, never more.

Definition. The turning points are those of a zigzag of s with threshold `prominence` (a reversal counts
once the curve has come back `prominence` from the extreme; an extreme is its first index), as for the
rank double descent in stages.py. A double descent is a trough, a peak and a trough, consecutive turning
points, where

1. the first trough is reached by a descent: it is not the first evaluation (so the curve went below its
   start, by any amount: Davies et al.'s first descent is slight) -- ``first_min``;
2. the peak rises at least `prominence` above that trough and falls at least `prominence` to the next
   trough -- ``peak``; its prominence is the smaller of the two moves;
3. that next trough is the second descent's lowest point before the curve turns up again by
   `prominence` (or the lowest point after the peak, if it never does) -- ``second_min``.

When several peaks qualify (say a small early bump and the memorization peak) the most prominent one is
returned, the earliest on a tie: a noise wiggle that barely clears the threshold never displaces the
main peak, and the minima are those on either side of it. A monotone descent, a peak lower than
`prominence` on either side, a single rise from the first evaluation followed by a fall (no first
descent), or a rise at the end with no fall after it, give None. A curve that rises first and later
falls, rises and falls again has one: its second peak, between the two later troughs. Steps may be
irregular; non-finite losses are dropped. A run's stored events count only peaks before its t_grok:
after it, a spike of the loss is an instability of a network that has generalized. Given the train
loss, a peak during which it rises too (by `prominence`, smoothed and floored alike) is not counted
either: in a double descent the test loss climbs while the network fits the train set, whereas a
spike of both is the optimizer overshooting (the default preset's run has one at step 1430, where
the train loss jumps from 1e-7 to 0.05 for two evaluations while the test loss goes 0.71 -> 1.34).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from groklab.analysis.events import Event
from groklab.analysis.stages import DoubleDescent, _finite, _median3, _zigzag

LOSS_FLOOR = 1e-5  # losses below this are clipped before the log (float32 round-off, exact zeros)
EVENT_NAMES = ("dd_first_min", "dd_peak", "dd_second_min")


def log_loss(values: Sequence[float], floor: float = LOSS_FLOOR) -> list[float]:
    """log10 of each loss, clipped below at `floor` (> 0)."""
    return [math.log10(max(v, floor)) for v in values]


def loss_double_descent(
    steps: Sequence[int],
    values: Sequence[float],
    prominence: float = 0.1,
    floor: float = LOSS_FLOOR,
    peak_before: int | None = None,
    train: tuple[Sequence[int], Sequence[float]] | None = None,
) -> DoubleDescent | None:
    """The most prominent descent-peak-descent of a loss curve (see the module docstring), or None.

    `prominence` is in decades of the loss (log10 units). With `peak_before` (a run's t_grok), only
    peaks at earlier steps count: once a network has generalized, a loss spike is an instability of
    the trained network (lr too high, a "slingshot"), not the memorization peak of a double descent.
    With `train` (the train-loss curve, steps and values), a peak the train loss climbs to as well is
    such an instability too. The steps are evaluation steps; each value returned is the smoothed loss there, i.e. the median of
    the loss at that evaluation and its two neighbours (clipped at `floor`): a one-evaluation blip at a
    turning point is not reported as its value.
    """
    if not (math.isfinite(prominence) and prominence > 0):
        raise ValueError(f"loss_double_descent: prominence must be a finite number > 0, got {prominence}")
    if not (math.isfinite(floor) and floor > 0):
        raise ValueError(f"loss_double_descent: floor must be a finite number > 0, got {floor}")
    st, raw = _finite(steps, values)
    if len(raw) < 3:
        return None
    smooth, s = _smoothed(raw, floor)
    pivots = _zigzag(s, prominence)
    train_rise = _rise_of(train, floor)
    best: tuple[float, int, int, int] | None = None  # (peak prominence, first_min, peak, second_min) as indices
    for k in range(len(pivots) - 2):
        (m1, kind1), (pk, kind2), (m2, _) = pivots[k : k + 3]
        if kind1 != -1 or kind2 != 1 or m1 == 0:  # trough, peak, trough, the first trough reached by a descent
            continue
        if peak_before is not None and st[pk] >= peak_before:
            continue
        if train_rise(st[m1], st[pk]) >= prominence:
            continue
        prom = min(s[pk] - s[m1], s[pk] - s[m2])
        if prom >= prominence and (best is None or prom > best[0]):
            best = (prom, m1, pk, m2)
    if best is None:
        return None
    _, m1, pk, m2 = best
    return DoubleDescent(st[m1], st[pk], st[m2], smooth[m1], smooth[pk], smooth[m2])


def _smoothed(raw: list[float], floor: float) -> tuple[list[float], list[float]]:
    """(losses floored and median-of-3 smoothed, their log10): the median commutes with the monotone log,
    so the first are exact losses to report and the second what turning points are read on."""
    smooth = _median3([max(v, floor) for v in raw])
    return smooth, log_loss(smooth, floor)


def _rise_of(train: tuple[Sequence[int], Sequence[float]] | None, floor: float) -> Callable[[int, int], float]:
    """rise(a, b): how far (decades) the smoothed, floored train loss climbs above its value at step a
    by step b (both ends included); 0 without a train curve or where it has no point."""
    if train is None:
        return lambda a, b: 0.0
    st, raw = _finite(*train)
    _, s = _smoothed(raw, floor)

    def rise(a: int, b: int) -> float:
        window = [v for t, v in zip(st, s, strict=True) if a <= t <= b]
        return max(window) - window[0] if window else 0.0

    return rise


def loss_dd_events(
    curve: tuple[Sequence[int], Sequence[float]],
    prominence: float = 0.1,
    peak_before: int | None = None,
    train: tuple[Sequence[int], Sequence[float]] | None = None,
) -> dict[str, Event]:
    """The events to store with a run for its test-loss curve: dd_first_min, dd_peak and dd_second_min,
    each (step, test loss there); no keys at all when the curve has no double descent (before `peak_before`,
    and not a spike of the `train` loss too)."""
    dd = loss_double_descent(*curve, prominence=prominence, peak_before=peak_before, train=train)
    if dd is None:
        return {}
    return {
        "dd_first_min": (dd.first_min, dd.first_min_value),
        "dd_peak": (dd.peak, dd.peak_value),
        "dd_second_min": (dd.second_min, dd.second_min_value),
    }
