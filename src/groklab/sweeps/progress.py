"""A sweep's progress as one bar over every point's steps, read from the store (so its ETA covers the sweep
and it follows worker processes and Ray tasks alike)."""

from __future__ import annotations

from groklab.store import ENDED, Store
from groklab.training.progress import SweepProgress


def sweep_progress(store: Store, sweep_id: str) -> SweepProgress:
    """One progress bar over all of a stored sweep's steps, starting from those already trained."""
    steps = [p.config["schedule"]["steps"] for p in store.get_sweep(sweep_id).points]
    return SweepProgress(sweep_id, steps, steps_done(store, sweep_id))


def steps_done(store: Store, sweep_id: str) -> list[int]:
    """Per point, the steps trained so far (all of them once its run has ended)."""
    linked = store.sweep_runs(sweep_id)
    done = []
    for i, point in enumerate(store.get_sweep(sweep_id).points):
        rec = store.get(linked[i]) if i in linked else None
        total = point.config["schedule"]["steps"]
        done.append(0 if rec is None else total if rec.status in ENDED else rec.step)
    return done
