"""A seeds x weight-decay sweep of the default preset as one `groklab sweep`, against one `groklab run` per point.

    python benchmarks/sweep.py [--seeds 3] [--values 0.3,1,2,3] [--steps N] [--ensemble-too]

Each way runs through the installed CLI in a fresh runs directory, as a user would, with --quiet;
the script prints the wall-clock of each and their ratio. `groklab sweep` runs the points with its
defaults (on a CPU, models this size train one after another in one process: see --max-ensemble);
--ensemble-too also times the sweep with every point in one vectorized ensemble. --steps shortens
every run (default: the preset's own schedule).
"""

from __future__ import annotations

import argparse
import itertools
import subprocess
import sys
import tempfile
import time


def groklab(*args: str) -> float:
    """Seconds one CLI call takes; a failed call stops the benchmark with its output."""
    t = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "groklab", *args, "--quiet"], capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"groklab {' '.join(args)} failed:\n{done.stderr}")
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--values", default="0.3,1,2,3", help="the weight decays")
    ap.add_argument("--steps", type=int, default=0, help="schedule.steps of every run (default: the preset's)")
    ap.add_argument("--ensemble-too", action="store_true", help="also time the sweep as one vectorized ensemble")
    args = ap.parse_args()
    values = args.values.split(",")
    common = ["run.device=cpu", *([f"schedule.steps={args.steps}"] if args.steps else [])]
    points = list(itertools.product(values, range(args.seeds)))
    print(f"modular-addition, weight decay {args.values} x {args.seeds} seeds = {len(points)} runs; {' '.join(common)}")
    with tempfile.TemporaryDirectory() as tmp:
        t_runs = sum(
            groklab("run", "modular-addition", *common, f"optim.weight_decay={wd}", f"run.seed={s}", "--runs-dir", f"{tmp}/runs")
            for wd, s in points
        )
        print(f"{len(points)} x groklab run: {t_runs:8.1f} s")
        sweep = ["sweep", "modular-addition", *common, "--grid", f"optim.weight_decay={args.values}", "--seeds", str(args.seeds)]
        t_sweep = groklab(*sweep, "--runs-dir", f"{tmp}/sweep")
        print(f"groklab sweep:        {t_sweep:8.1f} s  -> {t_runs / t_sweep:.2f}x")
        if args.ensemble_too:
            t_ens = groklab(*sweep, "--max-ensemble", str(len(points)), "--runs-dir", f"{tmp}/ensemble")
            print(f"groklab sweep, one ensemble of {len(points)}: {t_ens:8.1f} s  -> {t_runs / t_ens:.2f}x")


if __name__ == "__main__":
    main()
