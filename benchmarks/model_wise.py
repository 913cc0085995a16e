"""The model-wise sweep of Davies et al. (d_model 1..80 x 3 seeds x 400K steps, preset davies2023): its cost
per (dimension, seed, step) trained sequentially, as per-width seed ensembles, and as padded ensembles
that mix widths, and the wall-clock of the full reproduction each way.

    python benchmarks/model_wise.py [--device cpu|cuda] [--dims 1:80] [--seeds 3] [--bucket K] [--sample 8]

Step times are measured at `--sample` evenly spaced widths (and for the padded ensembles at the widest
member of each bucket) and interpolated linearly in between, so the CPU run takes minutes, not hours.
Padded buckets hold `--bucket` members of neighbouring widths (default: every member on a GPU, 24 on a CPU).
"""

from __future__ import annotations

import argparse
import itertools
import tempfile

import torch

from common import timed
from groklab.config import resolve_config
from groklab.config.schema import ExperimentConfig
from groklab.store import Store
from groklab.sweeps.spec import parse_values
from groklab.training.allocator import tune_malloc
from groklab.training.ensemble import EnsembleTrainer
from groklab.training.setup import prepare
from groklab.training.trainer import Trainer

FULL_STEPS = 400_000


def config(d: int, seed: int, device: str) -> ExperimentConfig:
    return resolve_config("davies2023", [f"model.d_model={d}", f"run.seed={seed}", f"run.device={device}", "measures.enabled=[loss_acc]"])


def lone_step(store: Store, d: int, device: str, reps: int) -> float:
    trainer = Trainer(prepare(config(d, 0, device)), store, "lone")

    def step() -> None:
        trainer.train_step(record=False)
        trainer.apply_update()

    return timed(step, reps, device)


def ensemble_step(store: Store, widths: list[tuple[int, int]], device: str, reps: int) -> float:
    """Seconds per step of one ensemble of (d_model, seed) members (padded when the widths differ)."""
    ens = EnsembleTrainer([prepare(config(d, s, device)) for d, s in widths], store, [f"m{i}" for i in range(len(widths))])

    def step() -> None:
        ens.train_step(record=False)
        ens.apply_update()

    return timed(step, reps, device)


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
    ap.add_argument("--bucket", type=int, default=0, help="members per padded ensemble (0: all on a GPU, 24 on a CPU)")
    ap.add_argument("--sample", type=int, default=8, help="widths at which step times are measured")
    ap.add_argument("--reps", type=int, default=0, help="timed steps per measurement (0: 5 on a CPU, 50 on a GPU)")
    args = ap.parse_args()
    tune_malloc()
    cuda = args.device.startswith("cuda")
    reps = args.reps or (50 if cuda else 5)
    dims = sorted({int(str(v)) for v in parse_values("--dims", args.dims)})
    members = [(d, s) for d in dims for s in range(args.seeds)]
    bucket = args.bucket or (len(members) if cuda else 24)
    n = max(2, min(args.sample, len(dims)))
    sample = sorted({dims[round(i * (len(dims) - 1) / (n - 1))] for i in range(n)})
    buckets = [members[i : i + bucket] for i in range(0, len(members), bucket)]
    name = torch.cuda.get_device_name() if cuda else f"CPU, {torch.get_num_threads()} threads"
    setting = f"davies2023 (batch 512, 2 layers, 1 head, MLP 4d), d_model {dims[0]}..{dims[-1]} x {args.seeds} seeds"
    print(f"torch {torch.__version__}, {name}; {setting}")
    print(f"measured at widths {sample}; padded buckets of {bucket} members; {reps} timed steps each")

    with tempfile.TemporaryDirectory() as tmp, Store(tmp) as store:
        lone = {d: lone_step(store, d, args.device, reps) for d in sample}
        seeds = {d: ensemble_step(store, [(d, s) for s in range(args.seeds)], args.device, reps) for d in sample}
        pad_at = sorted({b[-1][0] for b in buckets})
        pad_sample = sorted({pad_at[round(i * (len(pad_at) - 1) / max(1, min(n, len(pad_at)) - 1))] for i in range(min(n, len(pad_at)))})
        padded = {}
        for top in pad_sample:
            like = next(b for b in buckets if b[-1][0] == top)  # a real bucket with this widest member
            padded[top] = ensemble_step(store, like, args.device, max(1, reps // 2))
            print(f"  padded bucket of {len(like)} (d {like[0][0]}..{top}): {padded[top] * 1e3:.1f} ms/step", flush=True)

    per_step = {
        "sequential": args.seeds * sum(interp(lone, d) for d in dims),
        "seed ensembles": sum(interp(seeds, d) for d in dims),
        "padded ensembles": sum(interp(padded, b[-1][0]) * len(b) / bucket for b in buckets),  # a short last bucket costs less
    }
    print(f"{'strategy':18s} {'us per (dim, seed, step)':>26s} {'sweep step':>12s} {'full sweep (400K steps)':>25s} {'vs sequential':>14s}")
    for strategy, seconds in per_step.items():
        hours, gain = seconds * FULL_STEPS / 3600, per_step["sequential"] / seconds
        print(f"{strategy:18s} {seconds / len(members) * 1e6:26.1f} {seconds * 1e3:10.1f}ms {hours:22.1f} h {gain:13.2f}x")


if __name__ == "__main__":
    main()
