"""Statistics across seeds: means and confidence intervals of curves and of grokking events.

The interval is Student's t at 95%: mean ± t(n−1) · s / √n, with s the sample
standard deviation; a single seed gives an interval of zero width.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from scipy.stats import t as student_t


def t95(dof: int) -> float:
    """The two-sided 95% quantile of Student's t with `dof` degrees of freedom (scipy's, exact for any dof)."""
    return float(student_t.ppf(0.975, dof))


def metric_range(name: str) -> tuple[float, float] | None:
    """The values a metric can take, by its name: accuracies in [0, 1], losses >= 0; None: unbounded."""
    if "_acc" in name or name.endswith("acc"):
        return 0.0, 1.0
    if "_loss" in name or name.endswith("loss"):
        return 0.0, math.inf
    return None


def mean_ci(values: Sequence[float], within: tuple[float, float] | None = None) -> tuple[float, float, float]:
    """(mean, low, high) of the 95% confidence interval of the mean; NaNs are left out.

    `within`: the metric's possible values (see metric_range); the t interval is symmetric, so with
    few seeds near a bound it reaches past it (an accuracy CI of [0.93, 1.04]) unless clipped."""
    xs = [v for v in values if v == v]
    if not xs:
        return math.nan, math.nan, math.nan
    n = len(xs)
    mean = sum(xs) / n
    if n == 1:
        return mean, mean, mean
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
    half = t95(n - 1) * sd / math.sqrt(n)
    low, high = mean - half, mean + half
    if within is not None:
        low, high = max(low, within[0]), min(high, within[1])
    return mean, low, high


def aggregate_curves(
    curves: Sequence[tuple[Sequence[int], Sequence[float]]], within: tuple[float, float] | None = None
) -> tuple[list[int], list[tuple[float, float, float]]]:
    """Mean and CI (clipped to `within`) at each step logged by every curve (seeds of one config share the schedule)."""
    if not curves:
        return [], []
    common = set(curves[0][0])
    for steps, _ in curves[1:]:
        common &= set(steps)
    steps = sorted(common)
    lookups = [dict(zip(s, v, strict=True)) for s, v in curves]
    return steps, [mean_ci([lk[t] for lk in lookups], within) for t in steps]


def aggregate_events(events: Sequence[dict[str, tuple[int | None, float | None]]]) -> dict[str, object]:
    """Across seeds: mean/CI of t_fit, t_grok and delay over the seeds that reached them, and the fraction that grokked."""
    out: dict[str, object] = {"n": len(events)}
    for name in ("t_fit", "t_grok", "delay"):
        reached = [float(e[name][0]) for e in events if e.get(name, (None, None))[0] is not None]
        out[name] = {"reached": len(reached), "mean_ci": mean_ci(reached) if reached else None}
    grokked = sum(1 for e in events if e.get("t_grok", (None, None))[0] is not None)
    out["grokked_fraction"] = grokked / len(events) if events else math.nan
    return out
