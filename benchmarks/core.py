"""Core performance figures: matmul throughput, the cost of a training step against its arithmetic
floor, and the wall-clock time for the default preset to grok.

    python benchmarks/core.py [--device cpu|cuda] [--skip-grok] [--steps N]

Printed, in one run:
  1. the machine's float32 matmul throughput (best of a few square sizes);
  2. for the gu2025 model (p=97, 30% train, full batch) and the default preset: ms per training
     step, FLOPs per step (counted by torch's FlopCounterMode: matmuls, forward + backward),
     achieved FLOP/s, and the step's cost as a multiple of its arithmetic floor (FLOPs at the
     measured matmul throughput); also the floor at the rate the model's own MLP matmul reaches;
  3. for the modular-addition preset: t_fit, test accuracy at t_fit, and the step and wall-clock
     seconds at which test accuracy first reaches 99%.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

import torch

import groklab
from common import matmul_throughput, step_cost, sync
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


def preset_step_cost(preset: str, overrides: list[str], device: torch.device, reps: int) -> tuple[float, float, tuple[int, int, int]]:
    """(seconds per training step, FLOPs per step, the MLP's matmul shape) of the real trainer's step on a preset's model."""
    cfg = resolve_config(preset, [*overrides, f"run.device={device.type}"])
    sec, flops, batch = step_cost(cfg, device, reps)
    return sec, flops, (batch, cfg.model.d_model, cfg.model.d_mlp)


class Clock:
    """A reporter that notes the wall-clock time of every evaluation."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.at: dict[int, float] = {}

    def start(self, *a: object) -> None:
        self.t0 = time.perf_counter()

    def step(self, step: int) -> None: ...

    def evaluated(self, step: int, metrics: dict[str, float]) -> None:
        self.at[step] = time.perf_counter() - self.t0

    def close(self) -> None: ...


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--reps", type=int, default=30, help="timed steps for the step cost")
    ap.add_argument("--skip-grok", action="store_true", help="skip the time-to-grok run")
    args = ap.parse_args()
    device = torch.device(args.device)
    tune_malloc()
    print(f"groklab {groklab.__version__}, torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}")

    peak = matmul_throughput(device)
    print(f"[1] float32 matmul throughput: {peak / 1e9:.1f} GFLOP/s")

    for preset, ov in (("gu2025", []), ("modular-addition", [])):
        sec, flops, (m, k, n) = preset_step_cost(preset, ov, device, args.reps)
        floor = flops / peak
        print(
            f"[2] {preset} training step: {sec * 1e3:.2f} ms, {flops / 1e9:.3f} GFLOP/step, "
            f"{flops / sec / 1e9:.1f} GFLOP/s achieved; floor {floor * 1e3:.2f} ms -> {sec / floor:.2f}x the arithmetic floor"
        )
        local = shape_throughput(m, k, n, device)
        print(
            f"    its MLP matmul alone ({m}x{k} @ {k}x{n}) runs at {local / 1e9:.1f} GFLOP/s; "
            f"at that rate the floor is {flops / local * 1e3:.2f} ms -> {sec * local / flops:.2f}x"
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
