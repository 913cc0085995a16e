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

import torch

from groklab.config import from_dict
from groklab.store import Store, SweepRecord
from groklab.store.db import TakenError
from groklab.store.protocol import RunStore
from groklab.sweeps.planning import pending_batches
from groklab.sweeps.progress import steps_done, sweep_progress
from groklab.training.allocator import tune_malloc
from groklab.training.reporter import Reporter
from groklab.training.runs import resume_run, start_run, train_ensemble
from groklab.training.setup import prepare

Reporters = Callable[[list[int], str], Reporter | None]  # (points trained together, label) -> their progress reporter


def run_sweep(
    store: Store,
    sweep_id: str,
    reporter: Reporters = lambda points, label: None,
    announce: Callable[[str], Any] = lambda msg: None,
    workers: int = 1,
    poll: Callable[[], Any] = lambda: None,
    max_ensemble: int | None = None,
    pad_widths: bool | None = None,
) -> dict[str, int]:
    """Train every unfinished point of a stored sweep; returns the count of runs per final status.

    Points never started whose configs differ only in seeds, learning rate, weight decay or init
    scale train together as vectorized ensembles of at most `max_ensemble` members (default:
    `ensemble_cap`); with `pad_widths` (None: on), transformers that also differ in
    d_model / d_mlp do too, padded to the widest of their ensemble. The grouping is planned once and
    stored (sweeps/planning.py): a point or ensemble stopped part-way resumes as it was, from its
    checkpoints. With `workers` > 1 the batches are shared out to that many processes, each with a
    1/`workers` share of the CPU threads however few batches are left (thread counts change float
    reductions, so a resumed sweep trains as the first driver did), and `poll` is called about twice
    a second (progress from the store); otherwise `reporter(points, label)` gives each batch's
    progress reporter. `announce` gets a line per batch.
    """
    sweep = store.get_sweep(sweep_id)
    batches = pending_batches(store, sweep, announce, max_ensemble, pad_widths)
    if workers > 1 and batches:
        _run_in_processes(store, sweep_id, batches, workers, poll)
    else:
        for batch in batches:
            if "interrupted" in train_batch(store, sweep, batch, reporter, announce):
                break
    return sweep_status(store, sweep_id)


def train_locally(
    store: Store, sweep_id: str, progress: bool = True, workers: int = 1, max_ensemble: int | None = None, pad_widths: bool | None = None
) -> dict[str, int]:
    """The local sweep entry point of the CLI and the notebook API: run a stored sweep with the local executor, under
    one progress bar over every point's steps if `progress`; returns run counts by status."""
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


def train_batch(
    store: RunStore,
    sweep: SweepRecord,
    batch: list[int],
    reporter: Callable[[list[int], str], Reporter | None],
    announce: Callable[[str], Any],
) -> list[str]:
    """Train one batch of points: a lone point (started or resumed), or a new vectorized ensemble.

    `store` is the local Store or the Ray executor's proxy to it (store/protocol.py).
    """
    if len(batch) == 1:
        try:
            return [train_point(store, sweep, batch[0], reporter, announce)]
        except TakenError as exc:  # a second driver (two `sweep --resume` at once): the point is the other's
            announce(f"skipped: {exc}")
            return ["taken"]
    labels = [sweep.points[i].label for i in batch]
    label = f"ensemble of {len(batch)}: {labels[0]} ... {labels[-1]}"
    linked = store.sweep_runs(sweep.id)
    run_ids = [linked.get(i) for i in batch]
    again = " (resuming its runs)" if any(run_ids) else ""
    announce(f"points {', '.join(str(i + 1) for i in batch)}/{len(sweep.points)}: {label}{again}")
    preps = [prepare(from_dict(sweep.points[i].config)) for i in batch]
    try:
        return train_ensemble(preps, store, run_ids, reporter(batch, label), sweep=(sweep.id, batch))[1]
    except TakenError as exc:  # a second driver holds one of its points: the ensemble is the other's
        announce(f"skipped: {exc}")
        return ["taken"]


def train_point(store: Store, sweep: SweepRecord, i: int, reporter: Reporters, announce: Callable[[str], Any]) -> str:
    """Start point i's run, or resume it if it has one; returns the run's status."""
    point = sweep.points[i]
    run_id = store.sweep_runs(sweep.id).get(i)
    label = point.label
    prep = prepare(from_dict(point.config))
    where = f"point {i + 1}/{len(sweep.points)}: {label}"
    if run_id is None:
        announce(where)
        return start_run(prep, store, reporter([i], label), sweep=(sweep.id, i))[1]
    announce(f"{where} (resuming run {run_id})")
    return resume_run(prep, store, run_id, reporter([i], label))


def _run_in_processes(store: Store, sweep_id: str, batches: list[list[int]], workers: int, poll: Callable[[], Any]) -> None:
    ctx = mp.get_context("spawn")  # a fresh interpreter: no inherited torch threads or locks
    todo = ctx.Queue()
    for batch in batches:
        todo.put(batch)
    n = min(workers, len(batches))
    threads = max(1, (os.cpu_count() or 1) // workers)
    procs = [ctx.Process(target=_worker, args=(str(store.root), sweep_id, todo, threads, os.getpid())) for _ in range(n)]
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


def _worker(root: str, sweep_id: str, todo: Any, threads: int, driver: int) -> None:
    """A worker process: take batches of points until none are left or a run is interrupted."""
    stopping = _die_with(driver)
    torch.set_num_threads(threads)
    tune_malloc()
    store = Store(root, create=False)
    sweep = store.get_sweep(sweep_id)
    while not stopping["now"]:
        try:
            batch = todo.get(timeout=1.0)
        except queue.Empty:
            return
        if "interrupted" in train_batch(store, sweep, batch, lambda points, label: None, lambda msg: None):
            return


def _die_with(driver: int) -> dict[str, bool]:
    """Ask Linux to send this worker SIGTERM when its driver dies, even by SIGKILL: the worker then stops its run
    as on Ctrl-C (a checkpoint, `interrupted`) and takes no other, instead of writing on beside the driver's
    resume. Outside the run loop a SIGTERM only marks the worker as stopping (the kernel may send one per
    thread), so a second one cannot kill it between the loop's end and its last status write."""
    stopping = {"now": False}

    def stop(signum: int, frame: Any) -> None:
        stopping["now"] = True

    signal.signal(signal.SIGTERM, stop)
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the resume's liveness check is what is left
        return stopping
    if os.getppid() != driver:  # the driver died before the request was made
        stopping["now"] = True
    return stopping


PR_SET_PDEATHSIG = 1


def sweep_status(store: Store, sweep_id: str) -> dict[str, int]:
    """Runs per status, with `pending` for points not started."""
    sweep = store.get_sweep(sweep_id)
    linked = store.sweep_runs(sweep_id)
    counts: dict[str, int] = {}
    for i in range(len(sweep.points)):
        status = store.get(linked[i]).status if i in linked else "pending"
        counts[status] = counts.get(status, 0) + 1
    return counts
