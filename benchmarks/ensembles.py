"""Vectorized ensembles against sequential runs: training throughput for K members of one small config.

    python benchmarks/ensembles.py [--device cpu|cuda] [--ks 1,8,32] [--steps 50] [KEY=VALUE ...]

For each K, K members of the MLP-on-embeddings model at p=31 (different seeds, learning rates and
weight decays) take `--steps` training steps, once as one vectorized ensemble and once as K lone
trainers one after another; the script prints member-steps per second of each and their ratio.
KEY=VALUE arguments change the model (e.g. `model.d_model=8 model.d_mlp=32`): the ratio depends on how
much of a lone step is overhead, so this shows where on the size axis vectorizing pays most.
"""

from __future__ import annotations

import argparse

import torch

from common import timed
from groklab.config import resolve_config
from groklab.training.allocator import tune_malloc
from groklab.training.lone import LoneBackend
from groklab.training.setup import prepare
from groklab.training.stacked import StackedBackend

CONFIG = ["task.p=31", "task.train_frac=0.5", "model.name=mlp", "model.d_model=16", "model.d_mlp=64", "model.n_layers=1"]


def member_configs(k: int, device: str, config: list[str]) -> list:
    return [
        resolve_config(
            None,
            [*config, f"run.seed={i}", f"optim.lr={1e-3 * (1 + i % 4)}", f"optim.weight_decay={0.1 * (1 + i % 3)}", f"run.device={device}"],
        )
        for i in range(k)
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--ks", default="1,8,32" + (",256" if torch.cuda.is_available() else ""))
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="changes to the benchmark's model config")
    args = ap.parse_args()
    config = [*CONFIG, *args.overrides]
    tune_malloc()
    print(f"torch {torch.__version__}, device {args.device}, threads {torch.get_num_threads()}; model: {' '.join(config)}")
    for k in (int(x) for x in args.ks.split(",")):
        cfgs = member_configs(k, args.device, config)
        ens = StackedBackend([prepare(c) for c in cfgs])

        def ens_step(ens: StackedBackend = ens) -> None:
            ens.train_step(record=False)
            ens.apply_update()

        t_vec = args.steps * timed(ens_step, args.steps, args.device, warmup=5)
        t_seq = 0.0
        for c in cfgs:
            lone = LoneBackend(prepare(c))

            def lone_step(lone: LoneBackend = lone) -> None:
                lone.train_step(record=False)
                lone.apply_update()

            t_seq += args.steps * timed(lone_step, args.steps, args.device, warmup=5)
        vec, seq = k * args.steps / t_vec, k * args.steps / t_seq
        print(f"K={k:4d}: vectorized {vec:9.0f} member-steps/s, sequential {seq:9.0f} member-steps/s -> {vec / seq:6.2f}x")


if __name__ == "__main__":
    main()
