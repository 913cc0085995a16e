"""The local executor: a sweep's points one after another in this process, or shared out to N worker
processes (`--workers N`), resumable at any point.

A point whose run finished (or stopped early, or diverged) is kept; one whose
run was interrupted or killed resumes from its checkpoint; one never started
starts. So `groklab sweep --resume` after Ctrl-C or SIGKILL runs nothing twice.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
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
    workers: int = 1,
    poll: Callable[[], Any] = lambda: None,
) -> dict[str, int]:
    """Train every unfinished point of a stored sweep; returns the count of runs per final status.

    With `workers` > 1 the points are shared out to that many processes, each with an equal share
    of the CPU threads; `poll` is called about twice a second while they run (progress from the
    store). Otherwise `reporter(point, label)` gives each run's progress reporter. `announce`
    receives one line per point.
    """
    sweep = store.get_sweep(sweep_id)
    pending = [i for i in range(len(sweep["points"])) if _needs_training(store, sweep, i, announce)]
    if workers > 1 and len(pending) > 1:
        _run_in_processes(store, sweep_id, pending, workers, poll)
    else:
        for i in pending:
            if train_point(store, sweep, i, reporter, announce) == "interrupted":
                break
    return sweep_status(store, sweep_id)


def _needs_training(store: Store, sweep: dict[str, Any], i: int, announce: Callable[[str], Any]) -> bool:
    run_id = store.sweep_runs(sweep["id"]).get(i)
    rec = store.get(run_id) if run_id else None
    if rec is not None and rec.status in DONE:
        return False
    if rec is not None and is_live(rec):
        announce(f"point {i + 1}/{len(sweep['points'])}: run {rec.id} is running in process {rec.pid}; skipped")
        return False
    return True


def train_point(
    store: Store, sweep: dict[str, Any], i: int, reporter: Callable[[int, str], Reporter | None], announce: Callable[[str], Any]
) -> str:
    """Start point i's run, or resume it if it has one; returns the run's status."""
    point = sweep["points"][i]
    run_id = store.sweep_runs(sweep["id"]).get(i)
    label = " ".join(f"{k}={v}" for k, v in point["values"].items())
    prep = prepare(from_dict(point["config"]))
    where = f"point {i + 1}/{len(sweep['points'])}: {label}"
    if run_id is None:
        announce(where)
        return start_run(prep, store, reporter(i, label), sweep=(sweep["id"], i))[1]
    announce(f"{where} (resuming run {run_id})")
    return resume_run(prep, store, run_id, reporter(i, label))


def _run_in_processes(store: Store, sweep_id: str, pending: list[int], workers: int, poll: Callable[[], Any]) -> None:
    ctx = mp.get_context("spawn")  # a fresh interpreter: no inherited torch threads or locks
    todo = ctx.Queue()
    for i in pending:
        todo.put(i)
    n = min(workers, len(pending))
    threads = max(1, (os.cpu_count() or 1) // n)
    procs = [ctx.Process(target=_worker, args=(str(store.root), sweep_id, todo, threads)) for _ in range(n)]
    for proc in procs:
        proc.start()
    # Ctrl-C reaches the workers too (one process group): each stops its run cleanly; wait for them.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        while any(proc.is_alive() for proc in procs):
            for proc in procs:
                proc.join(timeout=0.5 / n)
            poll()
    finally:
        signal.signal(signal.SIGINT, previous)
    poll()


def _worker(root: str, sweep_id: str, todo: Any, threads: int) -> None:
    """A worker process: take points until none are left or a run is interrupted."""
    import torch

    torch.set_num_threads(threads)
    store = Store(root, create=False)
    sweep = store.get_sweep(sweep_id)
    while True:
        try:
            i = todo.get(timeout=1.0)
        except queue.Empty:
            return
        if train_point(store, sweep, i, lambda i, label: None, lambda msg: None) == "interrupted":
            return


def sweep_status(store: Store, sweep_id: str) -> dict[str, int]:
    """Runs per status, with `pending` for points not started."""
    sweep = store.get_sweep(sweep_id)
    linked = store.sweep_runs(sweep_id)
    counts: dict[str, int] = {}
    for i in range(len(sweep["points"])):
        status = store.get(linked[i]).status if i in linked else "pending"
        counts[status] = counts.get(status, 0) + 1
    return counts
