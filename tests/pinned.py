"""Pinned runs: small lone and ensemble trainings whose every metric was recorded by groklab 0.1.0's
training code (before the one-loop refactor of issue #17), so a change that moves the numbers shows. They are
compared at a tolerance that covers other CPUs' kernels (test_pinned.py says how it was set).

`python tests/pinned.py` re-records tests/data/pinned_metrics.json and the old-format checkpoints; only do
that for a change meant to alter the numbers, and say so in its commit.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import torch

from groklab.config import resolve_config
from groklab.store import Store
from groklab.training.runs import start_ensemble, start_run
from groklab.training.setup import prepare

DATA = Path(__file__).parent / "data"
PINNED = DATA / "pinned_metrics.json"

BASE = [
    "task.p=11",
    "task.train_frac=0.5",
    "schedule.steps=24",
    "schedule.eval_every=4",
    "schedule.eval_dense_until=24",
    "schedule.checkpoint_every=12",
    "schedule.keep_checkpoints=true",
    "run.device=cpu",
]
TRANSFORMER = ["model.d_model=16", "model.n_heads=2", "model.d_mlp=32"]  # unless a case names model.name=mlp
MLP = ["model.name=mlp", "model.d_model=8", "model.d_mlp=24"]

# name -> (kind, per-member overrides on BASE); kind "lone" trains each member alone, "ensemble" all together
CASES: dict[str, tuple[str, list[list[str]]]] = {
    "lone_transformer": ("lone", [["measures.enabled=[loss_acc,weight_norm,med,fourier]"]]),
    "lone_minibatch_grokfast_f64": (
        "lone",
        [["schedule.batch_size=8", "optim.grokfast.kind=ema", "run.dtype=float64", "model.n_layers=2", "model.norm=pre"]],
    ),
    "lone_mlp_rank_sgd": (
        "lone",
        [[*MLP, "measures.enabled=[loss_acc,feature_rank]", "optim.name=sgd", "optim.momentum=0.9", "optim.lr=0.05"]],
    ),
    "lone_div_subsets_dropout": (
        "lone",
        [["task.op=div", "measures.enabled=[loss_acc,division_subsets]", "model.dropout=0.1", "optim.loss=mse"]],
    ),
    "ensemble_transformer": (
        "ensemble",
        [["run.seed=0"], ["run.seed=1", "optim.lr=0.003", "optim.weight_decay=0.1"], ["run.seed=2", "task.seed=3", "model.init_scale=1.5"]],
    ),
    "ensemble_padded_prenorm": (
        "ensemble",
        [
            ["model.norm=pre", "model.d_model=16", "model.d_mlp=32"],
            ["model.norm=pre", "model.d_model=24", "model.d_mlp=48", "run.seed=1"],
            ["model.norm=pre", "model.d_model=8", "model.d_mlp=16", "run.seed=2"],
        ],
    ),
    "ensemble_mlp_minibatch_ma": (
        "ensemble",
        [[*MLP, "schedule.batch_size=8", "optim.grokfast.kind=ma", "optim.grokfast.window=3", f"run.seed={s}"] for s in range(3)],
    ),
    "ensemble_dropout_adam_f64": (
        "ensemble",
        [
            ["model.dropout=0.2", "optim.name=adam", "run.dtype=float64", f"run.seed={s}", "measures.enabled=[loss_acc,feature_rank]"]
            for s in (0, 1)
        ],
    ),
}
CASES["ensemble_padded_sinusoidal"] = (
    "ensemble",
    [[*m, "model.pos=sinusoidal", "model.norm=post"] for m in CASES["ensemble_padded_prenorm"][1]],
)


def configs(case: str) -> list:
    return [resolve_config(None, [*BASE, *([] if "model.name=mlp" in m else TRANSFORMER), *m]) for m in CASES[case][1]]


def train(case: str, store: Store) -> list[str]:
    """Train a case; returns the run ids, one per member."""
    kind, _ = CASES[case]
    cfgs = configs(case)
    if kind == "lone":
        return [start_run(prepare(c), store)[0] for c in cfgs]
    return start_ensemble([prepare(c) for c in cfgs], store)[0]


def record(store: Store, run_id: str) -> dict:
    """Every metric as exact float text (repr round-trips), the events and the status."""
    rec = store.get(run_id)
    metrics = {name: [steps, [repr(float(v)) for v in values]] for name, (steps, values) in sorted(store.metrics(run_id).items())}
    events = {k: [v[0], None if v[1] is None else repr(float(v[1]))] for k, v in sorted((store.events(run_id) or {}).items())}
    return {"status": rec.status, "metrics": metrics, "events": events}


def main(workdir: Path) -> None:
    out: dict = {"cpu_capability": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__, "cases": {}}
    store = Store(workdir)
    for case in CASES:
        ids = train(case, store)
        out["cases"][case] = [record(store, rid) for rid in ids]
        src = store.run_dir(ids[0]) / "checkpoints" / "step_000000012.pt"
        shutil.copyfile(src, DATA / f"checkpoint_v0_{case}.pt")
    PINNED.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("/tmp/pinned-runs"))
