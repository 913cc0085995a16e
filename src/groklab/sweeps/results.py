"""A stored sweep's results: its points grouped by grid values (seeds pooled), with statistics."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from groklab.analysis.aggregate import aggregate_curves, aggregate_events, mean_ci, metric_range
from groklab.analysis.run_events import run_events
from groklab.store import Store, SweepRecord
from groklab.store.db import DamagedError


@dataclass
class Group:
    """The seeds of one grid point."""

    values: dict[str, Any]  # the grid values, run.seed left out
    run_ids: list[str] = field(default_factory=list)

    def label(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.values.items()) or "(all)"


def groups(store: Store, sweep: SweepRecord) -> list[Group]:
    """Points with the same grid values, in sweep order; only points whose run has started have run ids."""
    linked = store.sweep_runs(sweep.id)
    out: dict[tuple, Group] = {}
    for i, point in enumerate(sweep.points):
        values = {k: v for k, v in point.values.items() if k != "run.seed"}
        key = tuple(sorted((k, repr(v)) for k, v in values.items()))
        group = out.setdefault(key, Group(values))
        if i in linked:
            group.run_ids.append(linked[i])
    return list(out.values())


def summarize(store: Store, sweep: SweepRecord) -> list[dict[str, Any]]:
    """Per group: seeds run, final train/test accuracy and loss (mean and 95% CI), and the aggregated events.
    A run whose stored rows are damaged is left out of the statistics and listed under `damaged`."""
    rows = []
    for g in groups(store, sweep):
        finals: dict[str, list[float]] = {}
        evs, used, damaged = [], [], []
        for rid in g.run_ids:
            try:
                store.check_rows(rid)
            except DamagedError:
                damaged.append(rid)
                continue
            used.append(rid)
            for name, (_, values) in store.metrics(rid, ["train_acc", "test_acc", "train_loss", "test_loss"]).items():
                finals.setdefault(name, []).append(values[-1])
            evs.append(run_events(store, rid))
        final = {k: mean_ci(v, metric_range(k)) for k, v in sorted(finals.items())}
        row: dict[str, Any] = {"values": g.values, "runs": used, "final": final, "damaged": damaged}
        row["events"] = aggregate_events(evs)
        rows.append(row)
    return rows


def curves(store: Store, run_ids: list[str], name: str) -> tuple[list[int], list[tuple[float, float, float]]]:
    """Mean and CI over seeds of one metric's curve, the CI kept within the metric's possible values."""
    data = [store.metrics(rid, [name]).get(name) for rid in run_ids]
    return aggregate_curves([d for d in data if d], metric_range(name))
