"""The run loop: one for every backend. Data stays on the device, evaluation follows the schedule, and
metrics are committed per evaluation, member by member.

A run is resumable from its last checkpoint (model, optimizer, filter and RNG states), and on the CPU a
resumed run ends bit-identical to an uninterrupted one: metric rows after the checkpoint are deleted and
recomputed, never duplicated. A member whose loss turns non-finite ends as `diverged` and the others go
on; the loop ends when every member has diverged, the schedule is done, early stopping holds, or a stop
is requested (Ctrl-C, SIGTERM: a checkpoint, then `interrupted`).
"""

from __future__ import annotations

import math
import time

import torch

from groklab.analysis.run_events import events_of
from groklab.store.protocol import RunStore
from groklab.training.backend import Backend
from groklab.training.interrupts import stop_requests
from groklab.training.reporter import Reporter, SilentReporter


def train(backend: Backend, store: RunStore, run_ids: list[str], reporter: Reporter | None = None) -> list[str]:
    """Train the backend's members, stored as `run_ids`, to the end; returns each member's status.

    A crash is recorded as `failed` on every member, then re-raised."""
    try:
        return _loop(backend, store, run_ids, reporter or SilentReporter())
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        for rid in run_ids:
            store.set_status(rid, "failed", backend.step, f"{type(exc).__name__}: {exc}")
        raise


def _loop(b: Backend, store: RunStore, run_ids: list[str], reporter: Reporter) -> list[str]:
    s = b.cfg.schedule
    reporter.start(list(run_ids), s.steps, b.step)
    diverged = [""] * b.K  # why member k diverged
    stopped = interrupted = False
    start, t0 = b.step, time.perf_counter()
    sync_every = 1 if b.device.type == "cpu" else 100  # a finiteness check syncs a GPU
    with stop_requests() as stop_requested:
        try:
            while True:
                if b.step % s.checkpoint_every == 0 and b.step != start:
                    _checkpoint(b, store, run_ids, diverged)
                if stop_requested():
                    interrupted = True
                    break
                if b.step in b.snapshot_at:
                    for k, rid in enumerate(run_ids):
                        if not diverged[k]:
                            store.save_weights(rid, b.member_weights(k), b.step)
                record = b.step in b.eval_at
                known: list[dict[str, float]] = [{} for _ in range(b.K)]
                if b.step < s.steps:
                    losses, known = b.train_step(record)
                    if record or b.step % sync_every == 0:
                        for k, bad in enumerate((~torch.isfinite(losses)).tolist()):
                            if bad and not diverged[k]:
                                diverged[k] = f"loss became {losses[k].item()} at step {b.step}"
                        if all(diverged):
                            break
                if record:
                    batch_acc = b.batch_acc.value(b.step)
                    if batch_acc is not None:
                        for k, a in enumerate(batch_acc.reshape(-1).tolist()):
                            known[k]["train_acc_batches"] = a
                    metrics = b.evaluate(known)
                    live = [k for k in range(b.K) if not diverged[k]]
                    for k in live:
                        store.log_metrics(run_ids[k], b.step, metrics[k])
                        if not all(math.isfinite(metrics[k][n]) for n in ("train_loss", "test_loss")):
                            diverged[k] = f"non-finite loss at step {b.step}"
                    reporter.evaluated(b.step, {run_ids[k]: metrics[k] for k in live})
                    if all(diverged):
                        break
                    if all([b.should_stop(k, metrics[k]) for k in live]):  # a list: every member's streak counts this evaluation
                        stopped = True
                        break
                if b.step >= s.steps:
                    break
                b.apply_update()
                reporter.step(b.step)
        except KeyboardInterrupt:  # a second Ctrl-C: the state may be mid-update, keep the last checkpoint
            for rid in run_ids:
                store.set_status(rid, "interrupted", b.step, f"continue with `groklab resume {rid}`")
            raise
        finally:
            reporter.close()
    _checkpoint(b, store, run_ids, diverged)
    elapsed = f"{b.step - start} steps in {time.perf_counter() - t0:.1f}s" + (f" (ensemble of {b.K})" if b.K > 1 else "")
    statuses = []
    for k, rid in enumerate(run_ids):
        if diverged[k]:
            status, message = "diverged", diverged[k]
        elif interrupted:
            status, message = "interrupted", f"interrupted at step {b.step}; continue with `groklab resume {rid}`"
        elif stopped:
            status, message = "stopped", f"test accuracy held >= {s.stop_test_acc} for {s.stop_patience} evaluations"
        else:
            status, message = "finished", elapsed
        store.set_events(rid, events_of(store, rid, b.preps[k].cfg))
        store.set_status(rid, status, b.step, message)
        statuses.append(status)
    return statuses


def _checkpoint(b: Backend, store: RunStore, run_ids: list[str], diverged: list[str]) -> None:
    """One checkpoint per member that has not diverged (a diverged member keeps its last finite one). An
    ensemble's members keep their previous one too: a kill between two members' writes leaves one step that
    all of them have, from which the ensemble resumes as it was (training/runs.py, train_ensemble)."""
    for k, rid in enumerate(run_ids):
        if not diverged[k]:
            store.save_checkpoint(rid, b.member_state(k), b.step, keep=b.cfg.schedule.keep_checkpoints, previous=b.K > 1)
