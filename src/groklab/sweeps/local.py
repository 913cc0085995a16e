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

from groklab.config import ExperimentConfig, from_dict
from groklab.store import Store, is_live
from groklab.training.allocator import tune_malloc
from groklab.training.ensemble_keys import can_vectorize, pad_key, shape_key
from groklab.training.reporter import Reporter
from groklab.training.runs import resume_run, start_ensemble, start_run
from groklab.training.setup import Prepared, prepare

DONE = ("finished", "stopped", "diverged")
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
    d_model / d_mlp do too, padded to the widest of their ensemble. Interrupted points resume alone from their checkpoints. With
    `workers` > 1 the batches are shared out to that many processes, each with an equal share of
    the CPU threads, and `poll` is called about twice a second (progress from the store); otherwise
    `reporter(points, label)` gives each batch's progress reporter. `announce` gets a line per batch.
    """
    sweep = store.get_sweep(sweep_id)
    batches = pending_batches(store, sweep, announce, max_ensemble, pad_widths)
    if workers > 1 and len(batches) > 1:
        _run_in_processes(store, sweep_id, batches, workers, poll)
    else:
        for batch in batches:
            if "interrupted" in train_batch(store, sweep, batch, reporter, announce):
                break
    return sweep_status(store, sweep_id)


def pending_batches(
    store: Store, sweep: dict[str, Any], announce: Callable[[str], Any], max_ensemble: int | None, pad_widths: bool | None = None
) -> list[list[int]]:
    """The batches that still need training: points not finished and not being trained right now."""
    pending = [i for i in range(len(sweep["points"])) if _needs_training(store, sweep, i, announce)]
    return plan_batches(store, sweep, pending, max_ensemble, pad_widths)


def plan_batches(
    store: Store, sweep: dict[str, Any], pending: list[int], max_ensemble: int | None, pad_widths: bool | None = None
) -> list[list[int]]:
    """Group the pending points that can share a vectorized pass (by shape key, or by pad key unless
    `pad_widths` is False: then each group is ordered by width, so an ensemble pads its members little).

    Padding spreads the per-op overhead that dominates a small model's step over more members, on a
    GPU (kernel launches) and on a CPU alike: on 2 CPU cores (davies2023, 3 seeds) widths 9..16 train
    2.5x faster padded than one after another, 41..48 1.8x; seed-only ensembles 1.2x. On a CPU, though,
    a narrow member padded into a much wider one pays the wider one's arithmetic, so there (unless
    `max_ensemble` is given) an ensemble's widest member costs at most CPU_PAD_RATIO times its narrowest,
    or both are overhead-bound; and members too big to gain at all train alone (`ensemble_cap`)."""
    linked = store.sweep_runs(sweep["id"])
    alone: list[list[int]] = []
    groups: dict[str, list[tuple[int, ExperimentConfig]]] = {}
    for i in pending:
        cfg = from_dict(sweep["points"][i]["config"])
        if i in linked or not can_vectorize(cfg) or max_ensemble == 1:
            alone.append([i])
            continue
        key = (pad_widths is not False and pad_key(cfg)) or shape_key(cfg)
        groups.setdefault(key, []).append((i, cfg))
    batches = list(alone)
    costs: dict[tuple[str, tuple[int, int]], tuple[int, float, bool]] = {}  # per group and width: (cap, FLOPs a step, on a CPU)
    for key, members in groups.items():
        members.sort(key=lambda m: (_widths(m[1]), m[0]))
        if max_ensemble:
            batches += [[i for i, _ in members[j : j + max_ensemble]] for j in range(0, len(members), max_ensemble)]
            continue
        bucket: list[int] = []
        first = 0.0
        for i, cfg in members:
            width = (key, _widths(cfg))
            if width not in costs:
                prep = prepare(cfg)
                costs[width] = (ensemble_cap(cfg, prep), *step_flops(prep))
            cap, flops, cpu = costs[width]
            if cap == 1:  # too big to gain from vectorizing
                batches.append([i])
                continue
            fits = not cpu or flops <= max(CPU_PAD_RATIO * first, CPU_OVERHEAD_FLOPS)
            if bucket and fits and len(bucket) < cap:
                bucket.append(i)
            else:
                batches += [bucket] if bucket else []
                bucket, first = [i], flops
        batches += [bucket] if bucket else []
    return sorted(batches, key=lambda b: b[0])


def _widths(cfg: ExperimentConfig) -> tuple[int, int]:
    d_model = getattr(cfg.model, "d_model", 0)
    return d_model, getattr(cfg.model, "d_mlp", 0) or 4 * d_model


# On a CPU a member step above this many FLOPs already keeps the cores busy; stacking members then
# gains nothing (measured on 2 cores: 12 gu2025 models, ~3 GFLOP a step each, took 170 s as one
# ensemble and 167 s as 12 separate runs), while overhead-bound small models gain (tiny MLPs: 4.4x at K=32).
CPU_VECTORIZE_MAX_FLOPS = 1e9
# On a CPU, padded ensembles: the widest member's step may cost this many times the narrowest's, unless
# both are below CPU_OVERHEAD_FLOPS, where a step costs its ops' overhead, not its arithmetic.
CPU_PAD_RATIO = 1.6
CPU_OVERHEAD_FLOPS = 5e7


def step_flops(prep: Prepared) -> tuple[float, bool]:
    """A training step's FLOPs, roughly (6 per parameter per example), and whether it runs off CUDA."""
    n_params = sum(p.numel() for p in prep.model.parameters())
    return 6.0 * n_params * (prep.cfg.schedule.batch_size or len(prep.data.train_y)), prep.device.type != "cuda"


def ensemble_cap(cfg: ExperimentConfig, prep: Prepared | None = None, default_cpu: int = 32, default_gpu: int = 256) -> int:
    """Members per ensemble when `--max-ensemble` is not given.

    On a CPU, 1 (no vectorization) for members whose step exceeds CPU_VECTORIZE_MAX_FLOPS (`step_flops`);
    otherwise a default per device kind, lowered so that a rough
    estimate of the members' memory (parameters, gradients, optimizer moments and per-element rates,
    and the train set's activations) fits in half of what the device has free. `prep`: cfg, prepared.
    """
    prep = prep or prepare(cfg)
    n_params = sum(p.numel() for p in prep.model.parameters())
    flops, cpu = step_flops(prep)
    if cpu and flops > CPU_VECTORIZE_MAX_FLOPS:
        return 1
    widths = sum(p.shape[0] for p in prep.model.parameters() if p.dim() == 2)
    per_member = (8 * n_params + 3 * len(prep.data.train_y) * widths) * torch.finfo(prep.dtype).bits // 8
    if prep.device.type == "cuda":
        free, default = torch.cuda.mem_get_info(prep.device)[0], default_gpu
    else:
        free, default = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), default_cpu
    return max(1, min(default, int(0.5 * free // max(per_member, 1))))


def train_batch(
    store: Store | Any,
    sweep: dict[str, Any],
    batch: list[int],
    reporter: Callable[[list[int], str], Reporter | None],
    announce: Callable[[str], Any],
) -> list[str]:
    """Train one batch of points: a lone point (started or resumed), or a new vectorized ensemble.

    `store` is a Store, or anything with the methods the trainers call (the Ray executor's remote store).
    """
    if len(batch) == 1:
        return [train_point(store, sweep, batch[0], reporter, announce)]
    labels = [" ".join(f"{k}={v}" for k, v in sweep["points"][i]["values"].items()) for i in batch]
    label = f"ensemble of {len(batch)}: {labels[0]} ... {labels[-1]}"
    announce(f"points {', '.join(str(i + 1) for i in batch)}/{len(sweep['points'])}: {label}")
    preps = [prepare(from_dict(sweep["points"][i]["config"])) for i in batch]
    return start_ensemble(preps, store, reporter(batch, label), sweep=(sweep["id"], batch))[1]


def _needs_training(store: Store, sweep: dict[str, Any], i: int, announce: Callable[[str], Any]) -> bool:
    run_id = store.sweep_runs(sweep["id"]).get(i)
    rec = store.get(run_id) if run_id else None
    if rec is not None and rec.status in DONE:
        return False
    if rec is not None and is_live(rec):
        announce(f"point {i + 1}/{len(sweep['points'])}: run {rec.id} is running in process {rec.pid}; skipped")
        return False
    return True


def train_point(store: Store, sweep: dict[str, Any], i: int, reporter: Reporters, announce: Callable[[str], Any]) -> str:
    """Start point i's run, or resume it if it has one; returns the run's status."""
    point = sweep["points"][i]
    run_id = store.sweep_runs(sweep["id"]).get(i)
    label = " ".join(f"{k}={v}" for k, v in point["values"].items())
    prep = prepare(from_dict(point["config"]))
    where = f"point {i + 1}/{len(sweep['points'])}: {label}"
    if run_id is None:
        announce(where)
        return start_run(prep, store, reporter([i], label), sweep=(sweep["id"], i))[1]
    announce(f"{where} (resuming run {run_id})")
    return resume_run(prep, store, run_id, reporter([i], label))


def _run_in_processes(store: Store, sweep_id: str, batches: list[list[int]], workers: int, poll: Callable[[], Any]) -> None:
    ctx = mp.get_context("spawn")  # a fresh interpreter: no inherited torch threads or locks
    todo = ctx.Queue()
    for batch in batches:
        todo.put(batch)
    n = min(workers, len(batches))
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
    """A worker process: take batches of points until none are left or a run is interrupted."""
    import torch

    torch.set_num_threads(threads)
    tune_malloc()
    store = Store(root, create=False)
    sweep = store.get_sweep(sweep_id)
    while True:
        try:
            batch = todo.get(timeout=1.0)
        except queue.Empty:
            return
        if "interrupted" in train_batch(store, sweep, batch, lambda points, label: None, lambda msg: None):
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
