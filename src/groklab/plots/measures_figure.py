"""Progress measures of one run on one axis: each normalized to [0, 1], against the target curve,
with change points marked (the figure of `groklab compare-measures`)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

from groklab.analysis.compare import MeasureFit
from groklab.plots.canvas import figure_file, subplots
from groklab.plots.run_figure import _log_x, save_figure


def _normalized(values: list[float]) -> list[float]:
    lo, hi = min(values), max(values)
    return [0.5] * len(values) if hi == lo else [(v - lo) / (hi - lo) for v in values]


def plot_measures(
    metrics: dict[str, tuple[list[int], list[float]]], fits: list[MeasureFit], target: str, output: str | Path, title: str = ""
) -> Path:
    path = figure_file(output, user_given=False)
    fig, ax = subplots(figsize=(8.5, 4.6), constrained_layout=True)
    steps, values = metrics[target]
    ax.plot(_log_x(steps), _normalized(values), color="black", lw=2.2, label=f"{target} (target)")
    cmap = matplotlib.colormaps.get_cmap("tab10")
    for i, fit in enumerate(fits[:10]):  # the ten that track the target best
        s, v = metrics[fit.measure]
        rho = "-" if fit.spearman is None else f"{fit.spearman:+.2f}"
        ax.plot(_log_x(s), _normalized(v), color=cmap(i % 10), lw=1.2, label=f"{fit.measure} (ρ {rho}, lead {fit.lead})")
        if fit.change_step is not None:
            ax.axvline(max(fit.change_step, 0.5), color=cmap(i % 10), lw=0.6, ls=":")
    ax.set_xscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("normalized to [0, 1]")
    ax.set_title(title or f"progress measures against {target} (dotted: change points)", fontsize=9)
    ax.legend(fontsize=7, loc="best")
    return save_figure(fig, path)
