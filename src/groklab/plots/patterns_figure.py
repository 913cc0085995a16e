"""Figures of the pattern-learning model (`groklab patterns`): train and test accuracy over steps for each
case with every pattern's p_i dotted (as in Davies et al.'s figure), optionally the model-wise picture
(accuracy against capacity at a fixed step), and a fitted model laid over a run's measured curves."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch
from matplotlib.axes import Axes

from groklab.analysis.pattern_fit import PatternFit
from groklab.analysis.patterns import PatternModel
from groklab.plots.canvas import figure_file, subplots
from groklab.plots.run_figure import _log_x, save_figure

PATTERN_COLORS = ("tab:green", "tab:purple", "tab:brown", "tab:olive", "tab:cyan", "tab:pink", "tab:gray", "tab:orange")


def check_output(output: str | Path, option: str = "--out") -> Path:
    """The figure's path, refused before anything is computed if its format is unknown."""
    return figure_file(output, option, user_given=False)


def time_grid(steps: int, points: int = 2001) -> torch.Tensor:
    """Steps 0..steps: every step when there are few, else `points` evenly spaced."""
    if steps + 1 <= points:
        return torch.arange(steps + 1, dtype=torch.float64)
    return torch.linspace(0.0, float(steps), points, dtype=torch.float64)


def _pattern_label(model: PatternModel, i: int) -> str:
    p = model.patterns[i]
    star = ", preferred" if model.preferred == i else ""
    return f"p{i + 1} (g={p.g:.2g}{star})"


def _draw(ax: Axes, x: torch.Tensor, model: PatternModel, train: torch.Tensor, test: torch.Tensor, probs: torch.Tensor) -> None:
    for i in range(len(model.patterns)):
        ax.plot(x, probs[..., i], ls=":", lw=1.3, color=PATTERN_COLORS[i % len(PATTERN_COLORS)], label=_pattern_label(model, i))
    ax.plot(x, train, color="tab:blue", lw=1.8, label="train")
    ax.plot(x, test, color="tab:red", lw=1.8, label="test")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3, which="both", lw=0.4)
    ax.legend(fontsize=7, loc="best")


def plot_cases(cases: Sequence[tuple[str, PatternModel, int]], output: str | Path, capacities: Sequence[float] | None = None) -> Path:
    """One column per (name, model, steps): accuracy over steps; with `capacities`, a second row with the
    accuracy at the last step against capacity (log axis). Returns the figure's path."""
    path = check_output(output)
    rows = 2 if capacities else 1
    fig, axes = subplots(rows, len(cases), figsize=(4.8 * len(cases), 3.8 * rows), constrained_layout=True, squeeze=False)
    for col, (name, model, steps) in enumerate(cases):
        t = time_grid(steps)
        ax = axes[0][col]
        _draw(ax, t, model, model.train_acc(t), model.test_acc(t), model.probs(t))
        ax.set_xlabel("step")
        ax.set_ylabel("accuracy")
        ax.set_title(f"{name}: accuracy over training", fontsize=9)
        if capacities:
            cs = sorted(float(c) for c in capacities)
            c_t = torch.tensor(cs, dtype=torch.float64)
            train = torch.stack([model.train_acc(steps, c) for c in cs])
            test = torch.stack([model.test_acc(steps, c) for c in cs])
            probs = torch.stack([model.probs(steps, c) for c in cs])
            ax = axes[1][col]
            _draw(ax, c_t, model, train, test, probs)
            ax.set_xscale("log")
            if cs[0] <= 1.0 <= cs[-1]:
                ax.axvline(1.0, color="0.35", lw=0.8, ls="--")
            ax.set_xlabel("capacity c (pattern i's clock runs c^kappa_i times faster)")
            ax.set_ylabel(f"accuracy at step {steps}")
            ax.set_title(f"{name}: model-wise, at step {steps}", fontsize=9)
    fig.suptitle("pattern-learning model (Davies et al. 2023)", fontsize=10)
    return save_figure(fig, path)


def plot_fit(
    steps: Sequence[int], train: Sequence[float], test: Sequence[float], fit: PatternFit, output: str | Path, title: str = ""
) -> Path:
    """A run's measured accuracy (solid, dots) with the fitted model's (dashed) and its p_i (dotted), log-step axis."""
    path = check_output(output)
    model = fit.model
    last = max(max(steps), 1)
    first = min((s for s in steps if s > 0), default=1)
    # Step 0, then 400 log-spaced steps from half the first evaluated one to the last.
    log_grid = torch.logspace(math.log10(first / 2), math.log10(last), 400, dtype=torch.float64)
    grid = torch.cat([torch.zeros(1, dtype=torch.float64), log_grid])
    x = _log_x(grid.tolist())
    fig, ax = subplots(figsize=(8.0, 4.6), constrained_layout=True)
    probs = model.probs(grid)
    for i in range(len(model.patterns)):
        ax.plot(x, probs[:, i], ls=":", lw=1.2, color=PATTERN_COLORS[i % len(PATTERN_COLORS)], label=_pattern_label(model, i))
    ax.plot(_log_x(list(steps)), train, color="tab:blue", lw=1.0, marker=".", ms=3, alpha=0.7, label="train (run)")
    ax.plot(_log_x(list(steps)), test, color="tab:red", lw=1.0, marker=".", ms=3, alpha=0.7, label="test (run)")
    ax.plot(x, model.train_acc(grid), color="tab:blue", lw=1.8, ls="--", label=f"train (fit, RMSE {fit.rmse_train:.3f})")
    ax.plot(x, model.test_acc(grid), color="tab:red", lw=1.8, ls="--", label=f"test (fit, RMSE {fit.rmse_test:.3f})")
    ax.set_xscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3, which="both", lw=0.4)
    ax.legend(fontsize=7, loc="best")
    ax.set_title(title or f"{len(model.patterns)}-pattern fit", fontsize=9)
    return save_figure(fig, path)
