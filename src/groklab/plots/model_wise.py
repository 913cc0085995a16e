"""Figures of a sweep over model size (Davies et al. 2023, Figs. 4-7): heatmaps of accuracy and loss
over steps x embedding dimension with the 90%-train-accuracy contour, the final values against the
dimension, and one run's test accuracy on the division subsets."""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np

from groklab.analysis.width_curves import WidthCurves
from groklab.plots.canvas import subplots
from groklab.plots.run_figure import _log_x, save_figure
from groklab.store import Store

PANELS = (("train_acc", "train accuracy"), ("test_acc", "test accuracy"), ("train_loss", "train loss"), ("test_loss", "test loss"))


def _grid(widths: list[WidthCurves], name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dims, steps, values[steps, dims]) on the steps every dimension has; NaN where one lacks it."""
    means = {w.dim: dict(zip(*w.mean(name), strict=True)) for w in widths}
    steps = sorted(set().union(*(set(m) for m in means.values())))
    dims = [w.dim for w in widths]
    values = np.array([[means[d].get(s, np.nan) for d in dims] for s in steps], dtype=float)
    return np.array(dims), np.array(steps), values


def train_panel(train: str) -> tuple[str, str]:
    """The train-accuracy panel: groklab's eval-mode `train_acc`, or the authors' train-mode `train_acc_batches`."""
    return (train, "train accuracy" if train == "train_acc" else f"train accuracy ({train})")


def plot_heatmaps(widths: list[WidthCurves], output: Path, title: str = "", train: str = "train_acc") -> Path:
    """Train/test accuracy and loss over steps (log, vertical) x embedding dimension, seeds averaged;
    the dotted line is where train accuracy first reaches 90% (Davies et al. Figs. 4 and 6)."""
    fig, axes = subplots(1, 4, figsize=(18, 4.6), constrained_layout=True)
    dims, steps, fit_values = _grid(widths, train)
    for ax, (name, label) in zip(axes, (train_panel(train), *PANELS[1:]), strict=True):
        d, s, v = _grid(widths, name)
        if not len(s):
            ax.set_title(f"{label}: not logged")
            continue
        s_plot = np.maximum(s, 1)
        is_loss = name.endswith("loss")
        v_plot = np.log10(np.maximum(v, 1e-8)) if is_loss else v
        mesh = ax.pcolormesh(
            d,
            s_plot,
            v_plot,
            shading="nearest",
            cmap="magma" if is_loss else "viridis",
            vmin=None if is_loss else 0,
            vmax=None if is_loss else 1,
        )
        fig.colorbar(mesh, ax=ax, label=f"log10 {label}" if is_loss else label)
        if len(steps):
            fit = [next((st for st, a in zip(steps, fit_values[:, j], strict=True) if a >= 0.9), np.nan) for j in range(len(dims))]
            ax.plot(dims, np.maximum(fit, 1), "w:", lw=1.5, label="train acc 90%")
        ax.set_yscale("log")
        ax.set_xlabel("embedding dimension")
        ax.set_ylabel("step")
        ax.set_title(label)
    axes[0].legend(loc="lower right", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    return save_figure(fig, output)


def plot_final_vs_dim(
    widths: list[WidthCurves], output: Path, title: str = "", marks: dict[str, float | None] | None = None, train: str = "train_acc"
) -> Path:
    """Final train/test accuracy and loss against the embedding dimension: each seed a dot, the mean a
    line (Davies et al. Fig. 5). `marks` draws vertical lines at named dimensions (the transitions)."""
    fig, (ax_acc, ax_loss) = subplots(1, 2, figsize=(12, 4.2), constrained_layout=True)
    for ax, names in ((ax_acc, (train, "test_acc")), (ax_loss, ("train_loss", "test_loss"))):
        for name, color in zip(names, ("C0", "C1"), strict=True):
            xs = [w.dim for w in widths if w.finals(name)]
            ax.plot(xs, [statistics.fmean(w.finals(name)) for w in widths if w.finals(name)], color=color, label=name.replace("_", " "))
            for w in widths:
                ax.scatter([w.dim] * len(w.finals(name)), w.finals(name), s=8, color=color, alpha=0.5)
        for label, x in (marks or {}).items():
            if x is not None:
                ax.axvline(x, ls="--", lw=0.8, color="gray")
                ax.text(x, ax.get_ylim()[1], f" {label}", fontsize=7, va="top", rotation=90)
        ax.set_xlabel("embedding dimension")
        ax.legend(fontsize=8)
    ax_acc.set_ylabel("final accuracy")
    ax_acc.set_ylim(-0.02, 1.02)
    ax_loss.set_ylabel("final loss")
    ax_loss.set_yscale("log")
    if title:
        fig.suptitle(title, fontsize=9)
    return save_figure(fig, output)


def plot_subsets(store: Store, run_id: str, output: Path, title: str = "") -> Path:
    """One run's test accuracy on the division subsets and its count of correct test answers against
    chance (Davies et al. Fig. 7: the early 0/b bump, then below chance while memorizing)."""
    m = store.metrics(run_id)
    fig, (ax_acc, ax_count) = subplots(1, 2, figsize=(12, 4.2), constrained_layout=True)
    for name in ("test_acc", "train_acc", "test_acc/zero_div", "test_acc/div_one", "test_acc/self_div", "test_acc/rest"):
        if name in m:
            ax_acc.plot(_log_x(m[name][0]), m[name][1], label=name, lw=1.2 if "/" in name else 2)
    ax_acc.set_ylabel("accuracy")
    ax_acc.legend(fontsize=7)
    for name, style, label in (("test_correct", "-", "correct test answers"), ("test_chance_correct", "k--", "chance")):
        if name in m:
            ax_count.plot(_log_x(m[name][0]), m[name][1], style, label=label)
    ax_count.set_ylabel("count")
    ax_count.legend(fontsize=7)
    for ax in (ax_acc, ax_count):
        ax.set_xscale("log")
        ax.set_xlabel("step")
    fig.suptitle(title or f"run {run_id}: division subsets", fontsize=9)
    return save_figure(fig, output)
