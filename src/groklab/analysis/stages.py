"""Generalization stages of a test-accuracy curve and the feature-rank moves that go with them.

Deep MLPs on MNIST can generalize in several surges separated by plateaus ("multi-stage
generalization"), and the feature rank of a layer falls as test accuracy rises; with two stages the
rank can fall, rise and fall again (Fan, Pascanu & Jaggi 2024, "Deep Grokking"). These are pure
functions of (steps, values) curves so they apply equally to live runs, stored runs and synthetic
curves. Steps may be irregular (dense early, log-spaced later): the surge detector counts in
evaluations, everything it reports is in steps. Non-finite values (diverged evaluations) are dropped.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from groklab.analysis.events import Event

Curve = tuple[Sequence[int], Sequence[float]]


@dataclass(frozen=True)
class Surge:
    """One generalization stage: the curve climbs from `low` (at `start`) to `level` (90% reached at `end`)."""

    start: int  # step of the last evaluation before the rise: still within 10% of the surge above its low
    end: int  # step of the first evaluation at which 90% of the rise is done: where it levels off
    rise: float  # level - low
    level: float  # the highest (median-of-3 smoothed) value the surge reaches
    low: float  # the lowest smoothed value before it, from which the rise is measured


@dataclass(frozen=True)
class DoubleDescent:
    """A fall, a rise and a second fall of a curve (steps of the turning points, and the values there)."""

    first_min: int
    peak: int
    second_min: int
    first_min_value: float
    peak_value: float
    second_min_value: float


def _finite(steps: Sequence[int], values: Sequence[float]) -> tuple[list[int], list[float]]:
    pairs = [(int(s), float(v)) for s, v in zip(steps, values, strict=True) if math.isfinite(v)]
    return [s for s, _ in pairs], [v for _, v in pairs]


def _median3(v: list[float]) -> list[float]:
    """Centered running median of three (end points kept): drops one-evaluation blips, leaves any monotone stretch unchanged."""
    if len(v) < 3:
        return list(v)
    return [v[0], *(sorted(v[i - 1 : i + 2])[1] for i in range(1, len(v) - 1)), v[-1]]


def surges(steps: Sequence[int], values: Sequence[float], rise: float = 0.1, window: int = 10) -> list[Surge]:
    """The generalization stages of a test-accuracy curve, in order.

    Algorithm (s = the values smoothed by a centered running median of 3; indices count evaluations):

    1. Rising evaluations. Evaluation j is rising if s[j] - min(s[j-window .. j]) >= rise: the curve
       has climbed at least `rise` within the last `window` evaluations. Its interval is [a_j, j],
       a_j the last index of that window where the minimum is attained.
    2. Cores. Intervals that share an evaluation are merged (chaining back if need be) into disjoint
       cores [a, b], so all the rising evaluations of one jump fall in one core.
    3. Plateaus. A core is joined to the previous one unless a plateau separates them: the curve must
       not be rising into the core's start (s[a] - min(s[a-window .. a]) < rise / 2) and must not
       have gained a whole `rise` since the previous core's end (s[a] - s[b_prev] < rise). This keeps
       one sigmoid one surge when the sampling thins out in the middle of it (dense early, log-spaced
       later), while stages parted by a plateau of more than about `window` evaluations stay apart.
    4. Extent. Each core is widened by up to `window` evaluations on each side, never into a
       neighbouring core, to catch the tails of the rise. In that span: level = the highest s from the
       core's start on (first such index h), low = the lowest s before h, start = the last index before
       h with s <= low + 0.1 (level - low), end = the first index from start with s >= low + 0.9 (level - low).
    5. New high. A core is a surge only if its level exceeds every smoothed value up to its start by
       at least `rise`: recovering from a dip is not a new stage.

    Hence a slow drift that never gains `rise` within `window` evaluations gives no surge, noise whose
    swing stays below `rise` gives none, and one sigmoid gives exactly one when it is steep enough (in
    evaluations) to gain `rise` within `window` of them, and none otherwise.
    """
    if rise <= 0 or window < 1:
        raise ValueError(f"surges: need rise > 0 and window >= 1, got rise={rise}, window={window}")
    st, raw = _finite(steps, values)
    s = _median3(raw)
    n = len(s)
    cores: list[tuple[int, int]] = []
    for j in range(n):
        w0 = max(0, j - window)
        low = min(s[w0 : j + 1])
        if s[j] - low < rise:
            continue
        a = max(i for i in range(w0, j + 1) if s[i] == low)
        while cores and a <= cores[-1][1]:
            a = min(a, cores.pop()[0])
        cores.append((a, j))
    merged: list[tuple[int, int]] = []
    for a, b in cores:
        rising_into = s[a] - min(s[max(0, a - window) : a + 1])
        if merged and (rising_into >= rise / 2 or s[a] - s[merged[-1][1]] >= rise):  # no plateau between
            merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    cores = merged
    found: list[Surge] = []
    for k, (a, b) in enumerate(cores):
        left = max(a - window, cores[k - 1][1] if k else 0)
        right = min(b + window, cores[k + 1][0] if k + 1 < len(cores) else n - 1)
        h = max(range(a, right + 1), key=lambda i: (s[i], -i))  # first index of the highest value
        level = s[h]
        low = min(s[left : h + 1])
        if level - low < rise:
            continue
        start = max(i for i in range(left, h + 1) if s[i] <= low + 0.1 * (level - low))
        end = next(i for i in range(start, h + 1) if s[i] >= low + 0.9 * (level - low))
        if level - max(s[: start + 1]) < rise:
            continue
        found.append(Surge(start=st[start], end=st[end], rise=level - low, level=level, low=low))
    return found


def _zigzag(v: list[float], delta: float) -> list[tuple[int, int]]:
    """Turning points (index, +1 peak / -1 trough) of moves of at least `delta`: a reversal counts only
    once the curve has come back `delta` from the extreme; extremes are their first index."""
    pivots: list[tuple[int, int]] = []
    trend, hi, lo = 0, 0, 0
    for i, x in enumerate(v):
        if trend == 0:
            hi = i if x > v[hi] else hi
            lo = i if x < v[lo] else lo
            if v[hi] - x >= delta:
                pivots.append((hi, 1))
                trend, lo = -1, i
            elif x - v[lo] >= delta:
                pivots.append((lo, -1))
                trend, hi = 1, i
        elif trend == -1:
            if x < v[lo]:
                lo = i
            elif x - v[lo] >= delta:
                pivots.append((lo, -1))
                trend, hi = 1, i
        else:
            if x > v[hi]:
                hi = i
            elif v[hi] - x >= delta:
                pivots.append((hi, 1))
                trend, lo = -1, i
    if trend:
        pivots.append((lo, -1) if trend == -1 else (hi, 1))
    return pivots


def double_descent(steps: Sequence[int], values: Sequence[float], prominence: float = 0.1) -> DoubleDescent | None:
    """The first fall-rise-fall of a (feature-rank) curve, each move at least prominence * (max - min).

    The turning points are those of a zigzag with that threshold: the curve must come back by the
    threshold from an extreme before the extreme counts. The first peak-trough-peak-trough run of
    turning points is returned (the trough after the intermediate peak is the lowest point of that
    second fall); None for a monotone fall, a fall then a plateau, or a flat curve.
    """
    if not 0 < prominence <= 1:
        raise ValueError(f"double_descent: prominence must be in (0, 1], got {prominence}")
    st, v = _finite(steps, values)
    if len(v) < 4 or max(v) == min(v):
        return None
    pivots = _zigzag(v, prominence * (max(v) - min(v)))
    for k in range(len(pivots) - 3):
        if pivots[k][1] == 1:  # peak, trough, peak, trough: kinds alternate
            m1, p, m2 = pivots[k + 1][0], pivots[k + 2][0], pivots[k + 3][0]
            return DoubleDescent(st[m1], st[p], st[m2], v[m1], v[p], v[m2])
    return None


def _onset(steps: Sequence[int], values: Sequence[float], fraction: float, sign: int) -> int | None:
    if not 0 < fraction <= 1:
        raise ValueError(f"onset: fraction must be in (0, 1], got {fraction}")
    st, raw = _finite(steps, values)
    if not raw or max(raw) == min(raw):
        return None
    s = _median3(raw)
    need = fraction * (max(raw) - min(raw))
    return next((t for t, x in zip(st, s, strict=True) if sign * (x - s[0]) >= need), None)


def onset_of_fall(steps: Sequence[int], values: Sequence[float], fraction: float = 0.1) -> int | None:
    """The first step at which the curve (median-of-3 smoothed) is at least fraction * (max - min) below
    its first value; None if it never gets there or is flat. Marks when a feature rank starts to fall."""
    return _onset(steps, values, fraction, -1)


def onset_of_rise(steps: Sequence[int], values: Sequence[float], fraction: float = 0.1) -> int | None:
    """The first step at which the curve (median-of-3 smoothed) is at least fraction * (max - min) above
    its first value; None if it never gets there or is flat. Marks when test accuracy starts to rise."""
    return _onset(steps, values, fraction, 1)


def steepest_change(steps: Sequence[int], values: Sequence[float], sign: int) -> int | None:
    """The step ending the steepest move of the (median-of-3 smoothed) curve between consecutive
    evaluations: the largest rise for sign = 1, the largest fall for sign = -1; None if it never moves that way.

    Measured per evaluation interval, not per step: with log-spaced evaluations a per-step slope would
    always favour the dense early intervals."""
    if sign not in (1, -1):
        raise ValueError(f"steepest_change: sign must be 1 or -1, got {sign}")
    st, raw = _finite(steps, values)
    v = _median3(raw)
    moves = [(sign * (v[i + 1] - v[i]), st[i + 1]) for i in range(len(v) - 1)]
    best = max(moves, key=lambda m: m[0], default=(0.0, None))  # the first of equal moves
    return best[1] if best[0] > 0 else None


def rank_lag(rank_curve: Curve, acc_curve: Curve, fraction: float = 0.1) -> int | None:
    """Steps from the onset of the rank's fall to the onset of the accuracy's rise (positive: the rank
    falls first, as a leading indicator would); None if either never moves `fraction` of its range."""
    fall = onset_of_fall(*rank_curve, fraction)
    up = onset_of_rise(*acc_curve, fraction)
    return None if fall is None or up is None else up - fall


def layer_metrics(names: Iterable[str], prefix: str) -> list[tuple[int, str]]:
    """(layer number, name) of the metrics named `{prefix}/L{i}`, in layer order (L2 before L10)."""
    pattern = re.compile(re.escape(prefix) + r"/L(\d+)")
    return sorted((int(m.group(1)), name) for name in names if (m := pattern.fullmatch(name)))


def stage_events(
    metrics: dict[str, tuple[list[int], list[float]]], rise: float = 0.1, window: int = 10, prominence: float = 0.1
) -> dict[str, Event]:
    """The stage events to store with a run: n_stages (None, count); stage{k} (start step, level) per
    surge of test accuracy; and per rank/L{i}: rank_dd/L{i} (step of the double descent's intermediate
    peak or None, None) and rank_lag/L{i} (lag in steps or None, None). Empty without test_acc."""
    if "test_acc" not in metrics:
        return {}
    acc = metrics["test_acc"]
    found = surges(*acc, rise=rise, window=window)
    events: dict[str, Event] = {"n_stages": (None, float(len(found)))}
    for k, surge in enumerate(found, 1):
        events[f"stage{k}"] = (surge.start, surge.level)
    for i, name in layer_metrics(metrics, "rank"):
        dd = double_descent(*metrics[name], prominence=prominence)
        events[f"rank_dd/L{i}"] = (dd.peak if dd else None, None)
        events[f"rank_lag/L{i}"] = (rank_lag(metrics[name], acc), None)
    return events
