"""Which progress measure predicts generalization best, and how early?

For each logged measure of a run: how well it tracks a target curve (the test loss by default),
as Pearson and Spearman correlations, and how early it moves: the step of its change point (the
split of the curve into two segments of different means that leaves the least squared error)
against the target's. A positive lead means the measure moves before the target does, the
property that makes a measure a *progress* measure.

Both are taken over the run in steps: the curves are read on a grid of steps (linear between
evaluations), not at the evaluations themselves. Evaluation schedules are dense early (every 10
steps for the first 2,000 of a 30,000-step gu2025 run: 200 of its 509 evaluations), and statistics
over the raw evaluations let that early phase outweigh the rest of the run. The grid is even in
steps by default, or even in log(1 + step), the axis grokking curves are drawn on, where each
decade of training counts the same.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from scipy.stats import rankdata

from groklab.analysis.events import first_crossing

# Curves that are outcomes, not progress measures, or an estimate's spread (llc_std); per-tensor weight
# norms are left out for brevity.
OUTCOMES = ("train_loss", "train_acc", "test_loss", "test_acc", "test_correct", "test_chance_correct", "test_pred_zero", "llc_std")


def default_measures(names: Sequence[str]) -> list[str]:
    """The measures to compare: every logged curve except the outcomes (subset accuracies included)
    and per-tensor weight norms."""
    return sorted(n for n in names if n not in OUTCOMES and not n.startswith(("weight_norm/", "test_acc/")))


MIN_POINTS = 5  # fewer evaluations than this give no correlation: with 3 points, +-1 is common by chance


def pearson(x: Sequence[float], y: Sequence[float], min_points: int = MIN_POINTS) -> float | None:
    """Pearson correlation (the standard library's), or None where it is undefined (fewer than min_points
    points, or a constant curve)."""
    if len(x) < max(min_points, 2) or len(x) != len(y):
        return None
    try:
        return max(-1.0, min(1.0, statistics.correlation(x, y)))
    except statistics.StatisticsError:  # a constant curve
        return None


def ranks(values: Sequence[float]) -> list[float]:
    """Ranks 1..n, ties sharing their mean rank (as Spearman's rho needs)."""
    return rankdata(values, method="average").tolist()


def spearman(x: Sequence[float], y: Sequence[float], min_points: int = MIN_POINTS) -> float | None:
    """Spearman's rho: Pearson's correlation of the ranks."""
    return pearson(ranks(x), ranks(y), min_points)


def change_point(steps: Sequence[float], values: Sequence[float]) -> int | None:
    """The first step of the second segment in the best two-segment split (least squared error), or
    None for fewer than MIN_POINTS points or a constant curve. O(n) with prefix sums."""
    n = len(values)
    if n < MIN_POINTS or max(values) == min(values):
        return None
    s1, s2 = [0.0], [0.0]
    for v in values:
        s1.append(s1[-1] + v)
        s2.append(s2[-1] + v * v)

    def sse(a: int, b: int) -> float:  # squared error of values[a:b] around their mean
        m = b - a
        return s2[b] - s2[a] - (s1[b] - s1[a]) ** 2 / m

    best = min(range(2, n - 1), key=lambda k: sse(0, k) + sse(k, n))
    return round(steps[best])


SPACINGS = ("linear", "log")


def step_grid(first: float, last: float, n: int, spacing: str = "linear") -> list[float]:
    """n steps from first to last: evenly spaced, or evenly spaced in log(1 + step) (`log`), the axis
    grokking is read on, where every decade of training weighs the same."""
    if spacing == "linear":
        return [first + (last - first) * k / (n - 1) for k in range(n)]
    if spacing == "log":
        lo, hi = math.log1p(first), math.log1p(last)
        return [first] + [math.expm1(lo + (hi - lo) * k / (n - 1)) for k in range(1, n - 1)] + [last]
    raise ValueError(f"spacing: expected one of {', '.join(SPACINGS)}, got {spacing!r}")


def on_step_grid(
    steps: Sequence[int], *curves: Sequence[float], n: int | None = None, spacing: str = "linear"
) -> tuple[list[float], list[list[float]]]:
    """The curves, logged at increasing `steps`, read at n (default len(steps)) steps from the first to the
    last, spaced as `step_grid` says, by linear interpolation: (grid, one list per curve)."""
    n = len(steps) if n is None else n
    if len(steps) < 2 or steps[-1] == steps[0] or n < 2:
        return [float(s) for s in steps], [list(map(float, c)) for c in curves]
    grid = step_grid(steps[0], steps[-1], n, spacing)
    out: list[list[float]] = [[] for _ in curves]
    j = 0
    for g in grid:
        while j + 2 < len(steps) and steps[j + 1] <= g:
            j += 1
        gap = steps[j + 1] - steps[j]
        w = min(1.0, max(0.0, (g - steps[j]) / gap)) if gap > 0 else 1.0
        for c, o in zip(curves, out, strict=True):
            o.append(c[j] + w * (c[j + 1] - c[j]))
    return grid, out


def tracking(
    steps: Sequence[int], measure: Sequence[float], target: Sequence[float], spacing: str = "linear"
) -> tuple[float | None, float | None]:
    """(Pearson, Spearman) of a measure against the target over the run in steps (see the module docstring)."""
    _, (m, t) = on_step_grid(steps, measure, target, spacing=spacing)
    return pearson(m, t), spearman(m, t)


@dataclass(frozen=True)
class MeasureFit:
    """How one measure relates to the target over one run."""

    measure: str
    points: int
    pearson: float | None
    spearman: float | None
    change_step: int | None
    lead: int | None  # target's change step minus the measure's: > 0 = the measure moves first


def aligned(
    measure: tuple[Sequence[int], Sequence[float]], target: tuple[Sequence[int], Sequence[float]]
) -> tuple[list[int], list[float], list[float]]:
    """The steps where both curves have finite values, and both curves there."""
    t = dict(zip(*target, strict=True))
    rows = [(s, v, t[s]) for s, v in zip(*measure, strict=True) if s in t and math.isfinite(v) and math.isfinite(t[s])]
    return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]


def fit_step(metrics: dict[str, tuple[list[int], list[float]]], threshold: float = 0.99) -> int | None:
    """The first step with train accuracy >= threshold (t_fit), or None."""
    steps, acc = metrics.get("train_acc", ([], []))
    return first_crossing(steps, acc, threshold)


def window(metrics: dict[str, tuple[list[int], list[float]]], start: int) -> dict[str, tuple[list[int], list[float]]]:
    """Every curve from step `start` on."""
    out = {}
    for name, (steps, values) in metrics.items():
        kept = [(s, v) for s, v in zip(steps, values, strict=True) if s >= start]
        out[name] = ([s for s, _ in kept], [v for _, v in kept])
    return out


def compare(
    metrics: dict[str, tuple[list[int], list[float]]],
    target: str = "test_loss",
    measures: Sequence[str] | None = None,
    start: int = 0,
    spacing: str = "linear",
) -> list[MeasureFit]:
    """One MeasureFit per measure over the evaluations from step `start` on, ordered by |Spearman|
    (best first, undefined last). Starting at t_fit leaves out the early transient of the loss
    (large at a large init scale), so the change points are those of the generalization phase.
    `spacing` is that of the step grid the curves are read on (see step_grid)."""
    if target not in metrics:
        return []
    metrics = window(metrics, start) if start > 0 else metrics
    grid, (target_on_grid,) = on_step_grid(*aligned(metrics[target], metrics[target])[:2], spacing=spacing)
    t_change = change_point(grid, target_on_grid)
    fits = []
    for name in measures if measures is not None else default_measures(list(metrics)):
        if name not in metrics or name == target:
            continue
        steps, m, t = aligned(metrics[name], metrics[target])
        grid, (m_on_grid, t_on_grid) = on_step_grid(steps, m, t, spacing=spacing)  # one resampling serves both figures
        c = change_point(grid, m_on_grid)
        r, rho = pearson(m_on_grid, t_on_grid), spearman(m_on_grid, t_on_grid)
        fits.append(MeasureFit(name, len(steps), r, rho, c, None if c is None or t_change is None else t_change - c))
    return sorted(fits, key=lambda f: -abs(f.spearman) if f.spearman is not None else 1.0)
