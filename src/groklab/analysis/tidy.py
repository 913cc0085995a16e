"""Tidy tables of stored runs and sweeps: one row per (run, step, metric), the config and the grokking
events as columns, the form pandas, polars and R want for a figure of one's own."""

from __future__ import annotations

from typing import Any

from groklab.analysis.run_events import run_events
from groklab.config.presets import flatten
from groklab.store.db import Store, SweepRecord
from groklab.store.export import metric_table

METRIC_COLUMNS = ("step", "metric", "value")
VALUE_EVENTS = ("test_acc_at_fit", "n_stages")  # columns holding the event's value; every other event column is a step


def _events(store: Store, run_ids: list[str]) -> tuple[list[str], dict[str, dict[str, int | None]]]:
    """Event names (t_fit, t_grok, delay first) and each run's event steps (values for VALUE_EVENTS)."""
    steps = {rid: {n: v if n in VALUE_EVENTS else s for n, (s, v) in run_events(store, rid).items()} for rid in run_ids}
    first = ["t_fit", "t_grok", "delay"]
    names = first + sorted({n for ev in steps.values() for n in ev} - set(first))
    return names, steps


def _rows(store: Store, run_id: str, head: list[Any], layout: str) -> tuple[list[str] | None, list[list[Any]]]:
    """A run's metric rows after `head`: long (step, metric, value), or wide (step, one column per metric, None
    where one was not logged); for wide, the metric names too."""
    columns, table = metric_table(store, run_id, layout, missing=None)
    return (None if layout == "long" else columns[1:]), [[*head, *row] for row in table]


def _table(store: Store, heads: list[tuple[str, list[Any]]], head_cols: list[str], layout: str) -> tuple[list[str], list[list[Any]]]:
    names, ev = _events(store, [rid for rid, _ in heads])
    columns, rows = [*head_cols, *names], []
    metric_names: list[str] = []
    parts = []
    for rid, head in heads:
        full = [*head, *(ev[rid].get(n) for n in names)]
        metrics, r = _rows(store, rid, full, layout)
        parts.append((metrics, r))
        for m in metrics or []:
            if m not in metric_names:
                metric_names.append(m)
    if layout == "long":
        return [*columns, *METRIC_COLUMNS], [row for _, r in parts for row in r]
    metric_names.sort(key=lambda n: (n.startswith("weight_norm/"), n))
    width = len(columns) + 1
    for metrics, r in parts:  # runs that logged different metrics share one set of columns
        where = {m: width + i for i, m in enumerate(metrics or [])}
        rows += [[*row[:width], *(row[where[m]] if m in where else None for m in metric_names)] for row in r]
    return [*columns, "step", *metric_names], rows


def run_table(store: Store, run_id: str, layout: str = "long") -> tuple[list[str], list[list[Any]]]:
    """(columns, rows) of one run: run, status, every config key, the events, then its metrics."""
    rec = store.get(run_id)
    config = flatten(rec.config)
    return _table(store, [(rec.id, [rec.id, rec.status, *config.values()])], ["run", "status", *config], layout)


def sweep_table(store: Store, sweep: SweepRecord, layout: str = "long", all_config: bool = False) -> tuple[list[str], list[list[Any]]]:
    """(columns, rows) of a sweep's runs so far: sweep, point, run, status, the varied keys (or every config key),
    seed, the events, then the metrics. Points not started yet have no rows."""
    linked = store.sweep_runs(sweep.id)
    varied = [k for k in (sweep.points[0].values if sweep.points else {}) if k != "run.seed"]
    heads, keys = [], None
    for i, point in enumerate(sweep.points):
        if i not in linked:
            continue
        rec = store.get(linked[i])
        config = flatten(rec.config)
        keys = keys or (list(config) if all_config else varied)
        values = [config.get(k, point.values.get(k)) for k in keys]
        heads.append((rec.id, [sweep.id, i, rec.id, rec.status, *values, config.get("run.seed")]))
    cols = ["sweep", "point", "run", "status", *(keys or varied), "seed"]
    return _table(store, heads, cols, layout)
