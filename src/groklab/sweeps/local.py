"""The local executor: a sweep's points one after another in this process, resumable at any point.

A point whose run finished (or stopped early, or diverged) is kept; one whose
run was interrupted or killed resumes from its checkpoint; one never started
starts. So `groklab sweep --resume` after Ctrl-C or SIGKILL runs nothing twice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from groklab.config import from_dict
from groklab.store import Store, is_live
from groklab.training.reporter import Reporter
from groklab.training.setup import prepare
from groklab.training.trainer import resume_run, start_run

DONE = ("finished", "stopped", "diverged")


def run_sweep(
    store: Store,
    sweep_id: str,
    reporter: Callable[[int, str], Reporter | None] = lambda i, label: None,
    announce: Callable[[str], Any] = lambda msg: None,
) -> dict[str, int]:
    """Train every unfinished point of a stored sweep; returns the count of runs per final status.

    `reporter(point, label)` gives each run's progress reporter; `announce` receives one line per point.
    """
    sweep = store.get_sweep(sweep_id)
    points = sweep["points"]
    for i, point in enumerate(points):
        run_id = store.sweep_runs(sweep_id).get(i)
        rec = store.get(run_id) if run_id else None
        if rec is not None and rec.status in DONE:
            continue
        if rec is not None and is_live(rec):
            announce(f"point {i + 1}/{len(points)}: run {rec.id} is running in process {rec.pid}; skipped")
            continue
        cfg = from_dict(point["config"])
        label = " ".join(f"{k}={v}" for k, v in point["values"].items())
        prep = prepare(cfg)
        if rec is None:
            announce(f"point {i + 1}/{len(points)}: {label}")
            run_id, status = start_run(prep, store, reporter(i, label), sweep=(sweep_id, i))
        else:
            announce(f"point {i + 1}/{len(points)}: {label} (resuming run {rec.id})")
            status = resume_run(prep, store, rec.id, reporter(i, label))
        if status == "interrupted":
            break
    return sweep_status(store, sweep_id)


def sweep_status(store: Store, sweep_id: str) -> dict[str, int]:
    """Runs per status, with `pending` for points not started."""
    sweep = store.get_sweep(sweep_id)
    linked = store.sweep_runs(sweep_id)
    counts: dict[str, int] = {}
    for i in range(len(sweep["points"])):
        status = store.get(linked[i]).status if i in linked else "pending"
        counts[status] = counts.get(status, 0) + 1
    return counts
