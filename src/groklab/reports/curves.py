"""The interactive figures of a report, in plotly's JSON form: every logged measure on a log-step axis,
a run's related metrics (train/test, a measure's per-layer parts) sharing one figure, a sweep's runs one
series each."""

from __future__ import annotations

import math
from typing import Any

ACCURACY = ("train_acc", "test_acc", "train_acc_batches")
LOSS = ("train_loss", "test_loss")
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


def log_x(steps: list[int]) -> list[float]:
    """Step 0 cannot sit on a log axis: drawn at 0.5, labelled by its true step on hover."""
    return [s if s > 0 else 0.5 for s in steps]


def _trace(name: str, steps: list[int], values: list[float], color: str | None = None, group: str | None = None) -> dict[str, Any]:
    trace: dict[str, Any] = {
        "type": "scatter",
        "mode": "lines",
        "name": name,
        "x": log_x(steps),
        "y": values,
        "customdata": steps,
        "hovertemplate": f"{name}<br>step %{{customdata}}<br>%{{y:.4g}}<extra></extra>",
        "line": {"width": 1.6},
    }
    if color:
        trace["line"]["color"] = color
    if group:
        trace["legendgroup"] = group
    return trace


def _layout(title: str, metric: str, events: dict[str, int | None] | None = None) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "title": {"text": title, "font": {"size": 13}},
        "xaxis": {"type": "log", "title": {"text": "step"}},
        "yaxis": {"type": "log" if metric.endswith("loss") else "linear", "title": {"text": metric}},
        "margin": {"l": 60, "r": 10, "t": 40, "b": 45},
        "legend": {"font": {"size": 10}},
        "hovermode": "closest",
    }
    if metric in ACCURACY or metric == "accuracy":
        layout["yaxis"]["range"] = [-0.02, 1.02]
    shapes, notes = [], []
    for name, dash in (("t_fit", "dot"), ("t_grok", "dash")):
        step = (events or {}).get(name)
        if step:
            line = {"dash": dash, "width": 1, "color": "#555"}
            shapes.append({"type": "line", "xref": "x", "yref": "paper", "x0": step, "x1": step, "y0": 0, "y1": 1, "line": line})
            x = math.log10(step)  # an annotation on a log axis is placed by log10 of its position (a shape by the step)
            label = {"size": 9}
            notes.append({"x": x, "xref": "x", "yref": "paper", "y": 1, "text": f"{name} {step}", "showarrow": False, "font": label})
    if shapes:
        layout["shapes"], layout["annotations"] = shapes, notes
    return layout


def _order(name: str) -> tuple:
    """Accuracy, then loss (train before test), then the measures, each total before its parts."""
    known = (*ACCURACY, *LOSS)
    return (
        group_of(name) not in ("accuracy", "loss"),
        known.index(name) if name in known else len(known),
        group_of(name),
        "/" in name,
        name,
    )


def group_of(name: str) -> str:
    """The figure a run's metric goes in: accuracy, loss, or its measure (the part before '/')."""
    if name in ACCURACY:
        return "accuracy"
    if name in LOSS:
        return "loss"
    return name.split("/")[0]


def run_figures(metrics: dict[str, tuple[list[int], list[float]]], events: dict[str, int | None]) -> list[dict[str, Any]]:
    """One figure per group of a run's metrics (accuracy, loss, then each measure), every metric a series."""
    groups: dict[str, list[str]] = {}
    for name in sorted(metrics, key=_order):
        groups.setdefault(group_of(name), []).append(name)
    figures = []
    for group, names in groups.items():
        data = [_trace(n, *metrics[n], color=PALETTE[i % len(PALETTE)]) for i, n in enumerate(names)]
        figures.append({"data": data, "layout": _layout(group, group if group in ("accuracy", "loss") else names[0], events)})
    return figures


Metrics = dict[str, tuple[list[int], list[float]]]


def sweep_figures(runs: list[tuple[str, Metrics]], skip_prefixes: tuple[str, ...] = ("weight_norm/",)) -> list[dict[str, Any]]:
    """One figure per metric across a sweep's runs, each run (labelled by its point) a series; per-parameter
    breakdowns (`skip_prefixes`) are left to the run reports."""
    names: list[str] = []
    for _, m in runs:
        names += [n for n in m if n not in names and not n.startswith(skip_prefixes)]
    names.sort(key=_order)
    figures = []
    for name in names:
        data = [_trace(label, *m[name], color=PALETTE[i % len(PALETTE)], group=label) for i, (label, m) in enumerate(runs) if name in m]
        figures.append({"data": data, "layout": _layout(name, name)})
    return figures
