"""Sweep planning: which of a sweep's points still need training, and which train together.

Points that differ only in what ensemble members may differ in (training/ensemble_keys.py) share one
vectorized pass, and transformers that differ in width too, padded to the widest. How many share one
pass comes from a rough cost model of each point's step (its FLOPs) and memory, taken from its model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from groklab.config import ExperimentConfig, from_dict
from groklab.store import ENDED, Store, SweepRecord, is_live
from groklab.store.protocol import RunStore
from groklab.training.ensemble_keys import can_vectorize, pad_key, shape_key
from groklab.training.memory import available_bytes, check_ensemble_fits, estimate
from groklab.training.setup import Prepared, prepare


def pending_batches(
    store: Store, sweep: SweepRecord, announce: Callable[[str], Any], max_ensemble: int | None, pad_widths: bool | None = None
) -> list[list[int]]:
    """The batches that still need training, as the sweep's plan groups them. The plan is made once, when the
    sweep first trains, and stored: a resume groups the points as the first driver did (an automatic
    --max-ensemble depends on the memory free at the time), so an ensemble stopped part-way resumes as that
    ensemble and every point ends as it would have. A batch that another process is training is skipped."""
    plan = store.sweep_plan(sweep.id) or store.sweep_plan(
        sweep.id, plan_batches(store, sweep, list(range(len(sweep.points))), max_ensemble, pad_widths)
    )
    linked, batches = store.sweep_runs(sweep.id), []
    for batch in plan or []:
        records = {i: store.get(linked[i]) for i in batch if i in linked}
        live = [rec for rec in records.values() if is_live(rec)]
        if live:
            points = ", ".join(str(i + 1) for i in batch)
            announce(f"point(s) {points}/{len(sweep.points)}: run {live[0].id} is running in process {live[0].pid}; skipped")
            continue
        todo = [i for i in batch if i not in records or records[i].status not in ENDED]
        batches += [todo] if todo else []
    return batches


def plan_batches(
    store: RunStore, sweep: SweepRecord, pending: list[int], max_ensemble: int | None, pad_widths: bool | None = None
) -> list[list[int]]:
    """Group the pending points that can share a vectorized pass (by shape key, or by pad key unless
    `pad_widths` is False: then each group is ordered by width, so an ensemble pads its members little).

    Padding spreads the per-op overhead that dominates a small model's step over more members, on a
    GPU (kernel launches) and on a CPU alike (benchmarks/model_wise.py prints the gain). On a CPU, though,
    a narrow member padded into a much wider one pays the wider one's arithmetic, so there (unless
    `max_ensemble` is given) an ensemble's widest member costs at most CPU_PAD_RATIO times its narrowest,
    or both are overhead-bound; and members too big to gain at all train alone (`ensemble_cap`)."""
    linked = store.sweep_runs(sweep.id)
    alone: list[list[int]] = []
    groups: dict[str, list[tuple[int, ExperimentConfig]]] = {}
    for i in pending:
        cfg = from_dict(sweep.points[i].config)
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


def check_ensembles_fit(configs: list[ExperimentConfig], max_ensemble: int | None, pad_widths: bool | None, field: str) -> None:
    """Before a sweep is stored: refuse an explicit `max_ensemble` whose largest ensemble cannot fit in memory
    (training/memory.py). The automatic cap (`ensemble_cap`) fits by construction."""
    if not max_ensemble or max_ensemble < 2:
        return
    groups: dict[str, dict[str, ExperimentConfig]] = {}  # ensemble key -> one config per member shape
    sizes: dict[str, int] = {}
    for cfg in configs:
        if can_vectorize(cfg):
            key = (pad_widths is not False and pad_key(cfg)) or shape_key(cfg)
            groups.setdefault(key, {}).setdefault(shape_key(cfg), cfg)
            sizes[key] = sizes.get(key, 0) + 1
    for key, shapes in groups.items():
        check_ensemble_fits(list(shapes.values()), min(max_ensemble, sizes[key]), field)


def _widths(cfg: ExperimentConfig) -> tuple[int, int]:
    d_model = getattr(cfg.model, "d_model", 0)
    return d_model, getattr(cfg.model, "d_mlp", 0) or 4 * d_model


# On a CPU a member step above this many FLOPs already keeps the cores busy; stacking members then
# gains nothing, while overhead-bound small models gain (benchmarks/ensembles.py prints both ends).
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
    per_member = max(per_member, estimate(cfg, prep.task, prep.spec, prep.dtype).total)  # never above what the check allows
    default = default_gpu if prep.device.type == "cuda" else default_cpu
    return max(1, min(default, int(0.5 * available_bytes(prep.device) // max(per_member, 1))))
