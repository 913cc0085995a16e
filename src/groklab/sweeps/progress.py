"""A local sweep trained under one overall progress bar (the CLI's and the notebook API's): the bar counts
every point's steps, so its ETA covers the sweep, and follows worker processes through the store."""

from __future__ import annotations

from groklab.store import ENDED, Store
from groklab.sweeps.local import run_sweep
from groklab.training.progress import SweepProgress


def train_locally(
    store: Store, sweep_id: str, progress: bool = True, workers: int = 1, max_ensemble: int | None = None, pad_widths: bool | None = None
) -> dict[str, int]:
    """Run a stored sweep with the local executor, under one progress bar if `progress`; returns run counts by status."""
    if not progress:
        return run_sweep(store, sweep_id, workers=workers, max_ensemble=max_ensemble, pad_widths=pad_widths)
    bar = sweep_progress(store, sweep_id)
    try:
        return run_sweep(
            store,
            sweep_id,
            reporter=bar.for_points,
            announce=bar.note,
            workers=workers,
            poll=lambda: bar.sync(steps_done(store, sweep_id)),
            max_ensemble=max_ensemble,
            pad_widths=pad_widths,
        )
    finally:
        bar.finish()


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
