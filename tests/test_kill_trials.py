"""Kill trials: `groklab run` and `groklab sweep` (lone points, one vectorized ensemble, two worker processes)
SIGKILLed at a random moment, with every process of the command, then resumed as a user would. Each run ends
bit for bit as in an uninterrupted command, with no metric row lost or duplicated and no temporary file left.

The moment is a random count of metric rows written (so the kill falls anywhere: before the sweep exists,
mid-ensemble, between two members' checkpoint writes, in a worker's status write). GROKLAB_KILL_TRIALS sets
the trials per mode (1 in CI), GROKLAB_KILL_SEED the seed; a failure prints both.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import TINY

BASE = [*(o for o in TINY if not o.startswith("schedule.steps")), "schedule.steps=300", "schedule.checkpoint_every=40"]
GRID = ["--grid", "model.d_mlp=32,64", "--seeds", "2", "--quiet"]
MODES = {
    "run": ["run", *BASE, "--quiet"],
    "lone points": ["sweep", *BASE, *GRID, "--max-ensemble", "1"],
    "ensemble": ["sweep", *BASE, *GRID],  # automatic grouping: the four points as one width-padded ensemble
    "workers": ["sweep", *BASE, *GRID, "--workers", "2", "--max-ensemble", "2"],  # two ensembles of two, one per worker
}
TRIALS = int(os.environ.get("GROKLAB_KILL_TRIALS", "1"))
SEED = int(os.environ.get("GROKLAB_KILL_SEED", time.time_ns() % 2**32))


def groklab(argv: list[str], runs: Path, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "groklab", *argv, "--runs-dir", str(runs)], **kwargs)


def query(runs: Path, sql: str) -> list[tuple]:
    try:
        with sqlite3.connect(runs / "groklab.db") as conn:
            return conn.execute(sql).fetchall()
    except sqlite3.Error:  # not created yet
        return []


def results(runs: Path) -> dict[str, list[tuple]]:
    """Each run's metric rows, keyed by its sweep point (or 'run'), and every run's status."""
    points = dict(query(runs, "SELECT run_id, point FROM sweep_runs"))
    out: dict[str, list[tuple]] = {}
    for run_id, status in query(runs, "SELECT id, status FROM runs"):
        rows = query(runs, f"SELECT step, name, value FROM metrics WHERE run_id = '{run_id}' ORDER BY step, name")
        out[str(points.get(run_id, "run"))] = [status, *rows]
    return out


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    cache: dict[str, dict[str, list[tuple]]] = {}

    def get(mode: str) -> dict[str, list[tuple]]:
        if mode not in cache:
            runs = tmp_path_factory.mktemp("whole")
            assert groklab(MODES[mode], runs).wait(timeout=600) == 0
            cache[mode] = results(runs)
        return cache[mode]

    return get


@pytest.mark.parametrize("mode", list(MODES))
def test_a_killed_command_resumes_to_the_uninterrupted_result(tmp_path, mode, uninterrupted):
    whole = uninterrupted(mode)
    total = sum(len(rows) - 1 for rows in whole.values())
    rng = random.Random(f"{SEED}-{mode}")
    for trial in range(TRIALS):
        runs = tmp_path / f"trial{trial}"
        target = rng.randrange(0, total)
        proc = groklab(MODES[mode], runs, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while proc.poll() is None and (query(runs, "SELECT COUNT(*) FROM metrics") or [(0,)])[0][0] < target:
                time.sleep(0.002)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)  # the driver and its workers, wherever they are
            proc.wait(timeout=30)
        why = f"mode {mode!r}, trial {trial}, killed after {target} of {total} metric rows (GROKLAB_KILL_SEED={SEED})"
        if mode == "run":
            resume = [["resume", r, "--quiet"] for (r, s) in query(runs, "SELECT id, status FROM runs") if s != "finished"]
            done = bool(query(runs, "SELECT id FROM runs WHERE status = 'finished'"))
        else:
            resume = [["sweep", "--resume", s, "--quiet"] for (s,) in query(runs, "SELECT id FROM sweeps")]
            done = False
        for argv in resume or ([] if done else [MODES[mode]]):  # killed before anything was stored: start again
            assert groklab(argv, runs).wait(timeout=600) == 0, why
        assert results(runs) == whole, why
        assert not [p for p in runs.rglob("*") if p.name.endswith(".tmp")], why
