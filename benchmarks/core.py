"""Core performance figures: matmul throughput, the cost of a training step against its arithmetic
floor, and the wall-clock time for the default preset to grok.

    python benchmarks/core.py [--device cpu|cuda] [--skip-grok] [--reps N] [--rounds N]

Printed, in one run:
  1. the machine's float32 matmul throughput (best of a few square sizes);
  2. for the gu2025 model (p=97, 30% train, full batch) and the default preset: ms per training
     step, FLOPs per step (counted by torch's FlopCounterMode: matmuls, forward + backward),
     achieved FLOP/s, and the step's cost as a multiple of its arithmetic floor (FLOPs at the
     measured matmul throughput), timed in rounds that each follow a burst of square matmuls, so
     that each round's multiple compares the step with the rate of the same moment; also the
     floor at the rate the model's own MLP matmul reaches;
  3. for the modular-addition preset: t_fit, test accuracy at t_fit, and the step and wall-clock
     seconds at which test accuracy first reaches 99%.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time

import torch

import groklab
from common import StepCost, best_square, step_cost, sync
from groklab.config import resolve_config
from groklab.training.allocator import tune_malloc


def shape_throughput(m: int, k: int, n: int, device: torch.device) -> float:
    """FLOP/s of one (m, k) @ (k, n) float32 matmul: what the model's own layer shapes can reach."""
    a, b = torch.randn(m, k, device=device), torch.randn(k, n, device=device)
    for _ in range(5):
        a @ b
    sync(device)
    reps = max(10, int(5e9 / (2 * m * k * n)))
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync(device)
    return 2 * m * k * n * reps / (time.perf_counter() - t)


def preset_step_cost(preset: str, device: torch.device, reps: int, rounds: int, peak_size: int) -> tuple[StepCost, tuple[int, int, int]]:
    """The real trainer's step on a preset's model (timed in rounds beside matmul bursts), and its MLP's matmul shape."""
    cfg = resolve_config(preset, [f"run.device={device.type}"])
    cost = step_cost(cfg, device, reps, rounds, peak_size)
    return cost, (cost.batch, cfg.model.d_model, cfg.model.d_mlp)


class Clock:
    """A reporter that notes the wall-clock time of every evaluation."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.at: dict[int, float] = {}

    def start(self, *a: object) -> None:
        self.t0 = time.perf_counter()

    def step(self, step: int) -> None: ...

    def evaluated(self, step: int, metrics: dict[str, dict[str, float]]) -> None:
        self.at[step] = time.perf_counter() - self.t0

    def close(self) -> None: ...


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--reps", type=int, default=5, help="timed steps per round of the step cost")
    ap.add_argument("--rounds", type=int, default=24, help="rounds, each after its own matmul burst")
    ap.add_argument("--skip-grok", action="store_true", help="skip the time-to-grok run")
    args = ap.parse_args()
    device = torch.device(args.device)
    tune_malloc()
    print(f"groklab {groklab.__version__}, torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}")

    size, peak = best_square(device)
    print(f"[1] float32 matmul throughput: {peak / 1e9:.1f} GFLOP/s (at n={size})")

    for preset in ("gu2025", "modular-addition"):
        cost, (m, k, n) = preset_step_cost(preset, device, args.reps, args.rounds, size)
        multiples = sorted(1 / f for f in cost.fractions)  # step time over its floor at the rate measured beside it
        floor = cost.flops / statistics.median(cost.peak)
        print(
            f"[2] {preset} training step: {cost.seconds * 1e3:.2f} ms ({min(cost.step_s) * 1e3:.2f}-{max(cost.step_s) * 1e3:.2f} "
            f"over {len(multiples)} rounds), {cost.flops / 1e9:.3f} GFLOP/step, {cost.flops / cost.seconds / 1e9:.1f} GFLOP/s achieved; "
            f"floor ~{floor * 1e3:.2f} ms -> {statistics.median(multiples):.2f}x the arithmetic floor "
            f"(rounds {multiples[0]:.2f}-{multiples[-1]:.2f}x, each against the matmul rate measured beside it)"
        )
        local = shape_throughput(m, k, n, device)
        print(
            f"    its MLP matmul alone ({m}x{k} @ {k}x{n}) runs at {local / 1e9:.1f} GFLOP/s; "
            f"at that rate the floor is {cost.flops / local * 1e3:.2f} ms -> {cost.seconds * local / cost.flops:.2f}x"
        )

    if not args.skip_grok:
        clock = Clock()
        with tempfile.TemporaryDirectory() as tmp:
            run = groklab.run(
                "modular-addition",
                [f"run.device={device.type}", "schedule.stop_test_acc=0.99", "schedule.stop_patience=1"],
                runs_dir=tmp,
                reporter=clock,
            )
            ev = run.events()
            t_fit, t_grok = ev["t_fit"][0], ev["t_grok"][0]
            acc_at_fit = ev.get("test_acc_at_fit", (None, None))[1]
            if t_grok is None:
                print(f"[3] modular-addition: did not reach 99% test accuracy in {run.record.step} steps")
                return 1
            print(
                f"[3] modular-addition: t_fit {t_fit} (test accuracy there {acc_at_fit:.3f}); "
                f"99% test accuracy at step {t_grok} after {clock.at[t_grok]:.1f} s wall-clock"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
