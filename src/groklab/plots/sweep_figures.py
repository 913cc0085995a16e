"""Figures of a sweep against one swept key: final accuracy with 95% bands, a steps × key heatmap of
test accuracy with the 90%-train-accuracy contour (the form of the model-wise grokking figures), and
test-accuracy curves with seed bands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from groklab.analysis.aggregate import mean_ci, metric_range
from groklab.errors import GroklabError
from groklab.plots.canvas import subplots
from groklab.plots.run_figure import _log_x, figure_path, save_figure
from groklab.store import Store, SweepRecord
from groklab.sweeps.results import Group, curves, groups


def plot_sweep(store: Store, sweep: SweepRecord, x_key: str | None, output: str | Path | None = None) -> Path:
    """Draw the sweep's figure and return its path (default: RUNS_DIR/sweeps/ID.png)."""
    path = figure_path(output, store.root / "sweeps" / f"{sweep.id}.png")
    return save_figure(draw_sweep(store, sweep, x_key), path)


def draw_sweep(store: Store, sweep: SweepRecord, x_key: str | None = None) -> Figure:
    """The sweep's figure against `x_key` (default: its only swept key), as a matplotlib Figure (nothing written)."""
    gs = [g for g in groups(store, sweep) if g.run_ids]
    if not gs:
        raise GroklabError(f"sweep {sweep.id} has no runs yet; nothing to plot")
    keys = list(gs[0].values)
    if x_key is None:
        if len(keys) != 1:
            raise GroklabError(f"--x: the sweep varies {', '.join(keys) or 'only seeds'}; name the key to put on the x axis")
        x_key = keys[0]
    if x_key not in keys:
        raise GroklabError(f"--x: {x_key!r} is not a swept key; choose one of {', '.join(keys) or '(none: only seeds vary)'}")
    others = [k for k in keys if k != x_key]
    series: dict[str, list[Group]] = {}
    for g in gs:  # one line per combination of the other keys
        series.setdefault(" ".join(f"{k}={g.values[k]}" for k in others), []).append(g)
    fig, axes = subplots(1, 3, figsize=(15, 4.2), constrained_layout=True)
    _final_vs_x(axes[0], store, series, x_key)
    first = next(iter(series.values()))
    _heatmap(fig, axes[1], store, first, x_key)
    _curves(axes[2], store, first, x_key)
    where = f" — heatmap and curves at {next(iter(series))}" if others else ""
    fig.suptitle(f"sweep {sweep.name} [{sweep.id}]{where}", fontsize=9)
    return fig


def _xs(groups_: list[Group], key: str) -> tuple[list[float], list[str] | None]:
    values = [g.values[key] for g in groups_]
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return [float(v) for v in values], None
    return list(range(len(values))), [str(v) for v in values]


def log_spaced(xs: list[float]) -> bool:
    """Do positive values look geometric (weight decays, learning rates: log:1e-4:1:9) rather than evenly spaced?"""
    v = np.unique(np.asarray(xs, dtype=float))
    if len(v) < 2 or v[0] <= 0:
        return False
    if len(v) == 2:
        return bool(v[1] / v[0] >= 10)
    steps, log_steps = np.diff(v), np.diff(np.log(v))
    return float(np.std(log_steps) / np.mean(log_steps)) < float(np.std(steps) / np.mean(steps))


def _final_vs_x(ax: Any, store: Store, series: dict[str, list[Group]], key: str) -> None:
    log_x = False
    for label, gs in series.items():
        xs, ticks = _xs(gs, key)
        order = np.argsort(xs)
        for metric, style in (("train_acc", "--"), ("test_acc", "-")):
            stats = []
            for g in gs:
                curves_ = [store.metrics(r, [metric]).get(metric) for r in g.run_ids]
                finals = [c[1][-1] for c in curves_ if c]
                stats.append(mean_ci(finals, metric_range(metric)))
            m = np.array([s[0] for s in stats])[order]
            lo = np.array([s[1] for s in stats])[order]
            hi = np.array([s[2] for s in stats])[order]
            x = np.array(xs)[order]
            line = ax.plot(x, m, style, marker="o", ms=3, label=f"{metric.split('_')[0]} {label}".strip())[0]
            ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.2, lw=0)
        if ticks:
            ax.set_xticks(range(len(ticks)), [ticks[i] for i in order])
        else:
            log_x = log_x or log_spaced(xs)
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel(key)
    ax.set_ylabel("final accuracy (mean, 95% CI over seeds)")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def _heatmap(fig: Any, ax: Any, store: Store, gs: list[Group], key: str) -> None:
    xs, ticks = _xs(gs, key)
    order = list(np.argsort(xs))
    test = [curves(store, gs[i].run_ids, "test_acc") for i in order]
    train = [curves(store, gs[i].run_ids, "train_acc") for i in order]
    steps = sorted(set.intersection(*(set(s) for s, _ in test))) if test else []
    if not steps:
        ax.set_axis_off()
        return
    grid = np.array([[dict(zip(s, (v[0] for v in st), strict=True))[t] for t in steps] for s, st in test])
    fit = np.array([[dict(zip(s, (v[0] for v in st), strict=True))[t] for t in steps] for s, st in train])
    y = np.arange(len(order))
    mesh = ax.pcolormesh(_log_x(steps), y, grid, shading="nearest", vmin=0, vmax=1, cmap="viridis")
    if len(order) > 1 and len(steps) > 1:
        ax.contour(_log_x(steps), y, fit, levels=[0.9], colors="white", linestyles=":", linewidths=1)
    ax.set_xscale("log")
    labels = ticks if ticks else [f"{xs[i]:g}" for i in range(len(xs))]
    ax.set_yticks(y, [labels[i] for i in order], fontsize=7)
    ax.set_xlabel("step")
    ax.set_ylabel(key)
    ax.set_title("test accuracy (dotted: 90% train accuracy)", fontsize=9)
    fig.colorbar(mesh, ax=ax)


def _curves(ax: Any, store: Store, gs: list[Group], key: str) -> None:
    xs, _ = _xs(gs, key)
    for i in np.argsort(xs):
        steps, stats = curves(store, gs[i].run_ids, "test_acc")
        if not steps:
            continue
        line = ax.plot(_log_x(steps), [s[0] for s in stats], lw=1.2, label=f"{key}={gs[i].values[key]}")[0]
        ax.fill_between(_log_x(steps), [s[1] for s in stats], [s[2] for s in stats], color=line.get_color(), alpha=0.2, lw=0)
    ax.set_xscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("test accuracy (mean, 95% CI over seeds)")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
