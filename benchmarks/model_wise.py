"""The model-wise sweep of Davies et al. (d_model 1..80 x 3 seeds x 400K steps, preset davies2023): its cost
per (dimension, seed, step) trained sequentially, as per-width seed ensembles, and as padded ensembles
that mix widths, and the wall-clock of the full reproduction each way.

    python benchmarks/model_wise.py [--device cpu|cuda] [--dims 1:80] [--seeds 3] [--bucket K] [--sample 8]

Sequential and seed-ensemble step times are measured at `--sample` evenly spaced widths and interpolated
linearly in between, so the CPU run takes minutes, not hours; every padded ensemble is timed. The padded
ensembles are the ones `groklab sweep` plans for this grid on this device (sweeps/planning.py: plan_batches),
or, with `--bucket K`, runs of K members of neighbouring widths.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile

import torch

from common import timed
from groklab.config import resolve_config
from groklab.schema import ExperimentConfig
from groklab.store import Store
from groklab.sweeps.planning import plan_batches
from groklab.sweeps.spec import parse_values, spec_from_cli
from groklab.training.allocator import tune_malloc
from groklab.training.lone import LoneBackend
from groklab.training.setup import prepare
from groklab.training.stacked import StackedBackend

FULL_STEPS = 400_000


def config(d: int, seed: int, device: str) -> ExperimentConfig:
    return resolve_config("davies2023", [f"model.d_model={d}", f"run.seed={seed}", f"run.device={device}", "measures.enabled=[loss_acc]"])


def lone_step(d: int, device: str, reps: int) -> float:
    trainer = LoneBackend(prepare(config(d, 0, device)))

    def step() -> None:
        trainer.train_step(record=False)
        trainer.apply_update()

    return timed(step, reps, device)


def ensemble_step(widths: list[tuple[int, int]], device: str, reps: int) -> float:
    """Seconds per step of one ensemble of (d_model, seed) members (padded when the widths differ)."""
    ens = StackedBackend([prepare(config(d, s, device)) for d, s in widths])

    def step() -> None:
        ens.train_step(record=False)
        ens.apply_update()

    return timed(step, reps, device)


def sweep_plan(dims: list[int], args: argparse.Namespace) -> list[list[tuple[int, int]]]:
    """The (d_model, seed) members of each ensemble `groklab sweep` would train for this grid."""
    grid = [f"model.d_model={','.join(map(str, dims))}"]
    spec = spec_from_cli("davies2023", [f"run.device={args.device}", "measures.enabled=[loss_acc]"], grid, args.seeds)
    with tempfile.TemporaryDirectory() as tmp, Store(tmp) as store:
        sweep = store.get_sweep(store.create_sweep("", spec.as_dict(), spec.plan()))
        plan = plan_batches(store, sweep, list(range(len(sweep.points))), None)
    member = lambda i: (sweep.points[i].config["model"]["d_model"], sweep.points[i].config["run"]["seed"])  # noqa: E731
    return [[member(i) for i in batch] for batch in plan]


def interp(table: dict[int, float], x: int) -> float:
    """Linear interpolation of measured costs (flat beyond the ends)."""
    xs = sorted(table)
    if x <= xs[0]:
        return table[xs[0]]
    for lo, hi in itertools.pairwise(xs):
        if x <= hi:
            return table[lo] + (table[hi] - table[lo]) * (x - lo) / (hi - lo)
    return table[xs[-1]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dims", default="1:80", help="the sweep's embedding dimensions (a range or a list)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--bucket", type=int, default=0, help="members per padded ensemble (0: as `groklab sweep` plans them)")
    ap.add_argument("--sample", type=int, default=8, help="widths at which step times are measured")
    ap.add_argument("--reps", type=int, default=0, help="timed steps per measurement (0: 5 on a CPU, 50 on a GPU)")
    args = ap.parse_args()
    tune_malloc()
    cuda = args.device.startswith("cuda")
    reps = args.reps or (50 if cuda else 5)
    dims = sorted({int(str(v)) for v in parse_values("--dims", args.dims)})
    members = [(d, s) for d in dims for s in range(args.seeds)]
    n = max(2, min(args.sample, len(dims)))
    sample = sorted({dims[round(i * (len(dims) - 1) / (n - 1))] for i in range(n)})
    buckets = [members[i : i + args.bucket] for i in range(0, len(members), args.bucket)] if args.bucket else sweep_plan(dims, args)
    name = torch.cuda.get_device_name() if cuda else f"CPU, {torch.get_num_threads()} threads"
    setting = f"davies2023 (batch 512, 2 layers, 1 head, MLP 4d), d_model {dims[0]}..{dims[-1]} x {args.seeds} seeds"
    print(f"torch {torch.__version__}, {name}; {setting}")
    sizes = f"of {args.bucket} members" if args.bucket else f"as groklab sweep plans them: {[len(b) for b in buckets]} members"
    print(f"measured at widths {sample}; padded ensembles {sizes}; {reps} timed steps each")

    lone = {d: lone_step(d, args.device, reps) for d in sample}
    seeds = {d: ensemble_step([(d, s) for s in range(args.seeds)], args.device, reps) for d in sample}
    padded = []
    for b in buckets:
        padded.append(ensemble_step(b, args.device, max(1, reps // 2)) if len(b) > 1 else interp(lone, b[0][0]))
        print(f"  {len(b)} member(s), d {b[0][0]}..{b[-1][0]}: {padded[-1] * 1e3:.1f} ms/step", flush=True)

    per_step = {
        "sequential": args.seeds * sum(interp(lone, d) for d in dims),
        "seed ensembles": sum(interp(seeds, d) for d in dims),
        "padded ensembles": sum(padded),
    }
    print(f"{'strategy':18s} {'us per (dim, seed, step)':>26s} {'sweep step':>12s} {'full sweep (400K steps)':>25s} {'vs sequential':>14s}")
    for strategy, seconds in per_step.items():
        hours, gain = seconds * FULL_STEPS / 3600, per_step["sequential"] / seconds
        print(f"{strategy:18s} {seconds / len(members) * 1e6:26.1f} {seconds * 1e3:10.1f}ms {hours:22.1f} h {gain:13.2f}x")


if __name__ == "__main__":
    main()
