"""Many writers, one store, at length: TRIALS times, WRITERS `groklab run` processes start at the same instant on
one runs directory that does not exist yet. Prints how many processes failed (target: none) and whether every
run landed finished with all of its evaluations.

    python scripts/concurrent_writers.py [TRIALS=30] [WRITERS=6]
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TINY = ["task.p=13", "model.d_model=16", "model.n_heads=2", "model.d_mlp=32", "schedule.steps=30", "schedule.eval_every=10"]


def trial(root: Path, writers: int) -> tuple[int, list[str], bool]:
    runs = root / "runs"
    argv = [sys.executable, "-m", "groklab", "run", *TINY, "run.device=cpu", "--quiet", "--runs-dir", str(runs)]
    procs = [subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(writers)]
    results = [(p.wait(timeout=600), p.stderr.read()) for p in procs]
    failed = [err.strip().splitlines()[-1] if err.strip() else f"exit {code}" for code, err in results if code != 0]
    with sqlite3.connect(runs / "groklab.db") as conn:
        statuses = [s for (s,) in conn.execute("SELECT status FROM runs")]
        counts = {n for (n,) in conn.execute("SELECT COUNT(*) FROM metrics GROUP BY run_id")}
    landed = statuses == ["finished"] * writers and len(counts) == 1
    return len(failed), failed, landed


def main() -> None:
    trials = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    writers = int(sys.argv[2]) if len(sys.argv) > 2 else 6
    failures, lost, t0 = 0, 0, time.perf_counter()
    for i in range(trials):
        with tempfile.TemporaryDirectory() as tmp:
            n, messages, landed = trial(Path(tmp), writers)
        failures += n
        lost += not landed
        for m in messages:
            print(f"trial {i + 1}: {m}")
    print(
        f"{trials} trials x {writers} writers on a new store: {failures} process(es) failed, {lost} trial(s) lost a run "
        f"or an evaluation ({time.perf_counter() - t0:.0f} s)"
    )
    sys.exit(1 if failures or lost else 0)


if __name__ == "__main__":
    main()
