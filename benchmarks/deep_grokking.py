"""Deep-grokking performance figures: the 12-layer MLP's training step, one feature-rank evaluation,
and (optionally) the wall-clock of `groklab reproduce deep-grokking --quick`.

    python benchmarks/deep_grokking.py [--device cpu|cuda] [--reps 8] [--rounds 24] [--reproduce]

Printed:
  1. the machine's float32 matmul throughput (best square size) and float64 throughput;
  2. for the 12-layer, width-400, batch-200 MLP (fan2024): ms per training step in float32 and float64,
     FLOPs per step (FlopCounterMode) and the achieved fraction of the matmul throughput of that dtype,
     measured in rounds that each time the step right after a burst of square matmuls: the median of
     those paired fractions, and their range;
  3. the time of one feature-rank evaluation of all 12 layers on the 10,000 test images (float64 model);
  4. with --reproduce: the wall-clock of the quick reproduction in a temporary runs directory.

Needs the MNIST files (task.data_dir, $GROKLAB_DATA, or `groklab data fetch mnist`).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time

import torch

from common import StepCost, best_square, step_cost, sync
from groklab.config import resolve_config
from groklab.measures import EvalContext, measure_all
from groklab.measures.feature_rank import FeatureRank
from groklab.measures.loss_acc import LossAccuracy
from groklab.training.allocator import tune_malloc
from groklab.training.setup import prepare


def fan_step_cost(dtype: str, device: torch.device, reps: int, rounds: int, peak_size: int) -> StepCost:
    cfg = resolve_config("fan2024", [f"run.dtype={dtype}", f"run.device={device.type}", "measures.enabled=[loss_acc]"])
    return step_cost(cfg, device, reps, rounds, peak_size)


def rank_cost(device: torch.device, reps: int = 3) -> tuple[float, float]:
    """(seconds of one feature-rank evaluation alone, its marginal cost in a run's evaluation): the
    measure's forward pass over the test set also gives loss_acc its test loss, so in a run it adds
    only the covariances and spectra to the evaluation loss_acc does anyway."""
    cfg = resolve_config("fan2024", [f"run.device={device.type}"])
    prep = prepare(cfg)
    model = prep.model.to(device=device, dtype=prep.dtype).eval()
    data = prep.data.to(device)
    rank, loss_acc = FeatureRank(), LossAccuracy()

    def timed(measures: list) -> float:
        best = float("inf")
        for _ in range(reps + 1):  # the first is a warm-up
            ctx = EvalContext(0, model, data, prep.spec, cfg, {})
            sync(device)
            t = time.perf_counter()
            measure_all(ctx, measures)  # one pass per split, shared by the measures
            sync(device)
            best = min(best, time.perf_counter() - t)
        return best

    return timed([rank]), timed([rank, loss_acc]) - timed([loss_acc])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--reps", type=int, default=8, help="timed steps per round")
    ap.add_argument("--rounds", type=int, default=24, help="rounds, each after its own matmul burst")
    ap.add_argument("--reproduce", action="store_true", help="also time `groklab reproduce deep-grokking --quick`")
    args = ap.parse_args()
    device = torch.device(args.device)
    tune_malloc()
    print(f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}")
    sizes = {}
    for name, dt in (("float32", torch.float32), ("float64", torch.float64)):
        sizes[name], peak = best_square(device, dt)
        print(f"[1] {name} matmul throughput: {peak / 1e9:.1f} GFLOP/s (at n={sizes[name]})")
    for name in ("float32", "float64"):
        cost = fan_step_cost(name, device, args.reps, args.rounds, sizes[name])
        fr = cost.fractions
        print(
            f"[2] fan2024 step (12 x 400, batch 200), {name}: {cost.seconds * 1e3:.2f} ms "
            f"({min(cost.step_s) * 1e3:.2f}-{max(cost.step_s) * 1e3:.2f} over {len(fr)} rounds), {cost.flops / 1e9:.3f} GFLOP, "
            f"{cost.flops / cost.seconds / 1e9:.1f} GFLOP/s; {cost.fraction:.0%} of the {name} matmul throughput "
            f"measured beside it (rounds {fr[0]:.0%}-{fr[-1]:.0%})"
        )
    alone, marginal = rank_cost(device)
    print(
        f"[3] feature rank of all 12 layers on 10,000 test images (float64 model): {alone:.3f} s alone; "
        f"{marginal:.3f} s on top of the evaluation loss_acc does anyway (they share the forward pass)"
    )
    if args.reproduce:
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            cmd = [sys.executable, "-m", "groklab", "reproduce", "deep-grokking", "--quick", "--quiet", "--runs-dir", tmp]
            done = subprocess.run(cmd, capture_output=True, text=True)
            took = time.perf_counter() - t
            print(done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr.strip())
            print(f"[4] groklab reproduce deep-grokking --quick: {took:.0f} s wall-clock (exit {done.returncode})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
