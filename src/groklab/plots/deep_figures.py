"""Figures of deep-grokking runs (Fan, Pascanu & Jaggi 2024): the generalization stages of one run, its
feature rank per layer over training, rank against weight norm across runs (the paper's argument that
rank, not norm, tracks generalization), and linear-probe accuracy per layer."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

from groklab.analysis.stages import Surge, layer_metrics, surges
from groklab.errors import GroklabError
from groklab.plots.canvas import figure_file, subplots
from groklab.plots.run_figure import _log_x, save_figure
from groklab.store import RunRecord, Store


def _checked(output: str | Path | None) -> Path | None:
    """The output path, refused before any work if its format is unknown."""
    return None if output is None else figure_file(output)


def _stages(rec: RunRecord, test_acc: tuple[list[int], list[float]]) -> list[Surge]:
    """Surges with the run's own events.surge_rise / surge_window (the defaults for older runs)."""
    ev = rec.config.get("events", {})
    return surges(*test_acc, rise=ev.get("surge_rise", 0.1), window=ev.get("surge_window", 10))


def plot_stages(store: Store, run_id: str, output: str | Path | None = None) -> Path:
    """Train and test accuracy on a log-step axis with each generalization stage shaded and labelled
    (default output: the run's folder, stages.png)."""
    path = _checked(output)
    rec = store.get(run_id)
    m = store.metrics(rec.id, ["train_acc", "test_acc"])
    if "test_acc" not in m:
        raise GroklabError(f"run {rec.id} has no test_acc; nothing to plot")
    found = _stages(rec, m["test_acc"])
    fig, ax = subplots(figsize=(6.4, 4.0), constrained_layout=True)
    for name, color in (("train_acc", "tab:blue"), ("test_acc", "tab:red")):
        if name in m:
            ax.plot(_log_x(m[name][0]), m[name][1], color=color, lw=1.5, label=name.split("_")[0])
    for k, s in enumerate(found, 1):
        x0, x1 = _log_x([s.start, s.end])
        ax.axvspan(x0, x1, color="tab:orange", alpha=0.2, lw=0)
        ax.axhline(s.level, color="tab:orange", ls=":", lw=0.8)
        ax.text(x0, 1.0, f"stage {k}", fontsize=8, va="top", ha="left", color="tab:orange")
    ax.set_xscale("log")
    ax.set_ylim(-0.02, 1.04)
    ax.set_xlabel("step")
    ax.set_ylabel("accuracy")
    ax.grid(alpha=0.3, which="both", lw=0.4)
    ax.legend(fontsize=7, loc="center left")
    ax.set_title(f"{rec.name} [{rec.id}]: {len(found)} generalization stage{'s' if len(found) != 1 else ''}", fontsize=9)
    return save_figure(fig, path or store.run_dir(rec.id) / "stages.png")


def _layer_curves(store: Store, run_id: str, prefix: str, what: str, measure: str) -> tuple[Any, dict, list[tuple[int, str]]]:
    """The run's record, its metrics and its `prefix/L{i}` curves in layer order; a one-line error if it has none."""
    rec = store.get(run_id)
    m = store.metrics(rec.id)
    layers = layer_metrics(m, prefix)
    if not layers:
        raise GroklabError(f"run {rec.id} has no {what} ({prefix}/L1, ...); enable {measure}")
    return rec, m, layers


def plot_rank_heatmap(store: Store, run_id: str, output: str | Path | None = None) -> Path:
    """Feature rank per layer (rows, L1 at the bottom) over evaluations (columns, in order, labelled by
    step), with test accuracy in a panel above on the same columns (default output: rank_heatmap.png)."""
    path = _checked(output)
    rec, m, layers = _layer_curves(store, run_id, "rank", "feature-rank metrics", "the rank measure")
    steps = sorted(set().union(*(m[name][0] for _, name in layers)))
    column = {s: c for c, s in enumerate(steps)}
    grid = np.full((len(layers), len(steps)), np.nan)
    for row, (_, name) in enumerate(layers):
        for s, v in zip(*m[name], strict=True):
            grid[row, column[s]] = v
    cols = np.arange(len(steps))
    fig, (top, ax) = subplots(2, 1, sharex=True, figsize=(7.5, 5.5), height_ratios=[1, 2.4], constrained_layout=True)
    mesh = ax.pcolormesh(cols, np.arange(len(layers)), np.ma.masked_invalid(grid), shading="nearest", cmap="magma")
    fig.colorbar(mesh, ax=ax, label="feature rank")
    ax.set_yticks(np.arange(len(layers)), [f"L{i}" for i, _ in layers], fontsize=7)
    ticks = _step_ticks(steps)
    ax.set_xticks(ticks, [str(steps[t]) for t in ticks], fontsize=7, rotation=30)
    ax.set_xlabel("step (one column per evaluation)")
    ax.set_ylabel("layer")
    if "test_acc" in m:
        ts, vs = m["test_acc"]
        inside = [(t, v) for t, v in zip(ts, vs, strict=True) if steps[0] <= t <= steps[-1]]
        xs = np.interp([t for t, _ in inside], steps, cols)
        top.plot(xs, [v for _, v in inside], color="tab:red", lw=1.3)
        for s in _stages(rec, m["test_acc"]):
            for a in (top, ax):
                a.axvline(float(np.interp(s.start, steps, cols)), color="tab:cyan", ls="--", lw=0.9)
        top.set_ylim(-0.02, 1.02)
    top.set_ylabel("test accuracy")
    top.grid(alpha=0.3, lw=0.4)
    top.set_title(f"{rec.name} [{rec.id}]: feature rank per layer (dashed: stage starts)", fontsize=9)
    return save_figure(fig, path or store.run_dir(rec.id) / "rank_heatmap.png")


def _step_ticks(steps: list[int]) -> list[int]:
    """Columns to label: the first and last evaluation and the first at or past each power of ten
    (readable steps on a column axis), else eight evenly spaced columns."""
    powers = [10**k for k in range(1, len(str(max(steps[-1], 1))))]
    candidates = sorted({*(next(c for c, s in enumerate(steps) if s >= p) for p in powers if p > steps[0]), len(steps) - 1})
    gap = max(1, len(steps) // 15)  # labels closer than this would overlap
    ticks = [0]
    for c in candidates:
        if c - ticks[-1] >= gap:
            ticks.append(c)
        elif c == len(steps) - 1 and len(ticks) > 1:
            ticks[-1] = c
    if len(ticks) < 4:
        ticks = sorted({int(c) for c in np.linspace(0, len(steps) - 1, min(len(steps), 8)).round()})
    return ticks


def _label(rec: RunRecord) -> str:
    task = rec.config.get("task", {})
    return f"n_train={task['n_train']}" if "n_train" in task else rec.name


def plot_rank_vs_norm(store: Store, run_ids: Sequence[str], output: str | Path, layer: int | None = None) -> Path:
    """Weight norm (left) and the feature rank of one layer (right; default the second-to-last,
    L{depth-1}) over steps for several runs, one colour per run, labelled by task.n_train or name."""
    path = _checked(output)
    if path is None:
        raise GroklabError("--output: name the figure file for a comparison of several runs")
    if not run_ids:
        raise GroklabError("no runs to compare; give at least one run")
    rows = []
    for ref in run_ids:
        rec = store.get(ref)
        m = store.metrics(rec.id)
        layers = layer_metrics(m, "rank")
        if "weight_norm" not in m:
            raise GroklabError(f"run {rec.id} has no weight_norm; enable the weight_norm measure")
        if not layers:
            raise GroklabError(f"run {rec.id} has no feature-rank metrics (rank/L1, ...); enable the rank measure")
        k = layer if layer is not None else max(len(layers) - 1, 1)
        if f"rank/L{k}" not in m:
            raise GroklabError(f"--layer: run {rec.id} has no rank/L{k}; its layers are L{layers[0][0]}..L{layers[-1][0]}")
        rows.append((rec, m["weight_norm"], m[f"rank/L{k}"], k))
    labels = [_label(rec) for rec, *_ in rows]
    labels = [f"{lb} [{rec.id}]" if labels.count(lb) > 1 else lb for lb, (rec, *_) in zip(labels, rows, strict=True)]
    sizes = [rec.config.get("task", {}).get("n_train") for rec, *_ in rows]
    order = sorted(range(len(rows)), key=lambda i: sizes[i]) if all(isinstance(s, int | float) for s in sizes) else range(len(rows))
    cmap = matplotlib.colormaps.get_cmap("viridis")
    fig, (ax_n, ax_r) = subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for rank_in_order, i in enumerate(order):
        rec, norm, rank, _ = rows[i]
        color = cmap(0.9 * rank_in_order / max(len(rows) - 1, 1))
        ax_n.plot(_log_x(norm[0]), norm[1], color=color, lw=1.3, label=labels[i])
        ax_r.plot(_log_x(rank[0]), rank[1], color=color, lw=1.3, label=labels[i])
    used = sorted({k for *_, k in rows})
    ax_n.set_title("weight norm", fontsize=9)
    ax_r.set_title(f"feature rank of layer {', '.join(f'L{k}' for k in used)}", fontsize=9)
    for ax in (ax_n, ax_r):
        ax.set_xscale("log")
        ax.set_xlabel("step")
        ax.grid(alpha=0.3, which="both", lw=0.4)
        ax.legend(fontsize=7)
    return save_figure(fig, path)


def plot_probes(store: Store, run_id: str, output: str | Path | None = None) -> Path:
    """Linear-probe test accuracy of each layer over steps (a sequential colour from input to output),
    with the model's test accuracy dashed (default output: the run's folder, probes.png)."""
    path = _checked(output)
    rec, m, layers = _layer_curves(store, run_id, "probe_acc", "linear-probe metrics", "the probe measure")
    cmap = matplotlib.colormaps.get_cmap("viridis")
    fig, ax = subplots(figsize=(6.4, 4.0), constrained_layout=True)
    for n, (i, name) in enumerate(layers):
        ax.plot(_log_x(m[name][0]), m[name][1], color=cmap(0.9 * n / max(len(layers) - 1, 1)), lw=1.2, label=f"probe L{i}")
    if "test_acc" in m:
        ax.plot(_log_x(m["test_acc"][0]), m["test_acc"][1], color="black", ls="--", lw=1.3, label="model test acc")
    ax.set_xscale("log")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("step")
    ax.set_ylabel("test accuracy")
    ax.grid(alpha=0.3, which="both", lw=0.4)
    ax.legend(fontsize=7, ncol=2 if len(layers) > 6 else 1)
    ax.set_title(f"{rec.name} [{rec.id}]: linear probes per layer", fontsize=9)
    return save_figure(fig, path or store.run_dir(rec.id) / "probes.png")
