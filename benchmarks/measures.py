"""Progress-measure costs and polygon-dataset generation time.

    python benchmarks/measures.py [--device cpu|cuda]

Printed:
  1. for the gu2025 model (p=97) and a ResNet-18 on 64-px polygon grids: each enabled measure's cost
     per evaluation, the cost of one training step, and the measures' share of a run at the preset's
     default cadences (their cost per evaluation, spread over the steps between evaluations);
  2. the time to build the 14,641-image polygon dataset at 64 px and at 224 px.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from common import sync
from groklab.config import resolve_config
from groklab.measures import MEASURES, EvalContext
from groklab.tasks import build_task
from groklab.training.allocator import tune_malloc
from groklab.training.lone import LoneBackend
from groklab.training.schedule import eval_steps
from groklab.training.setup import prepare


def timed(fn, device: torch.device, reps: int = 5) -> float:
    fn()
    times = []
    for _ in range(reps):
        sync(device)
        t = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def measure_costs(label: str, preset: str, overrides: list[str], device: torch.device, reps: int = 5) -> None:
    cfg = resolve_config(preset, [*overrides, f"run.device={device.type}"])
    trainer = LoneBackend(prepare(cfg))

    def step() -> None:
        trainer.train_step(record=False)
        trainer.apply_update()

    step_s = timed(step, device, reps)
    trainer.model.eval()
    costs = {}

    def fresh() -> EvalContext:  # nothing known: each measure pays for its own forward passes
        return EvalContext(0, trainer.model, trainer.data, trainer.preps[0].spec, cfg, {})

    for measure, every in trainer.preps[0].measures:
        costs[measure.name] = (timed(lambda m=measure: m.compute(fresh()), device, reps), every)
    evals = eval_steps(cfg.schedule)
    n_evals = len(evals)
    run_steps = cfg.schedule.steps
    print(f"[1] {label}: training step {step_s * 1e3:.1f} ms; {n_evals} evaluations over {run_steps} steps")
    extra = 0.0
    for name, (sec, every) in costs.items():
        share = sec * (n_evals / every) / (step_s * run_steps)
        if name != "loss_acc":
            extra += share
        print(f"    {name:14s} {sec * 1e3:9.2f} ms per evaluation, every {every} evaluation(s): {share:6.2%} of the run")
    print(f"    measures other than loss_acc together: {extra:.2%} of the run (target <= 10%)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    device = torch.device(args.device)
    tune_malloc()
    print(f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}; measures: {', '.join(MEASURES)}")
    measure_costs("gu2025 (p=97, 1-layer transformer)", "gu2025", [], device)
    circuit = ["measures.enabled=[loss_acc,weight_norm,fourier,fourier_circuit]"]
    measure_costs("nanda2023 (p=113) with the Fourier circuit measures", "nanda2023", circuit, device)
    poly = ["task.image_size=64", "schedule.eval_batch_size=500", "measures.enabled=[loss_acc,weight_norm]"]
    measure_costs("ResNet-18 on 64-px polygon grids", "gu2025-polygons", poly, device, reps=1)
    for size in (64, 224):
        task = build_task(resolve_config("gu2025-polygons", [f"task.image_size={size}"]).task)
        t = time.perf_counter()
        data = task.build()
        took = time.perf_counter() - t
        n = len(data.train_y) + len(data.test_y)
        mib = data.train_x[0].numel() * n / 2**20  # uint8 pixels
        print(f"[2] polygon grids at {size} px: {n} images in {took:.2f} s ({mib:.0f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
