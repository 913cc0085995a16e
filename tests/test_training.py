"""The trainer end to end: a tiny run groks, resume is exact, divergence is recorded."""

from __future__ import annotations

import itertools
import math
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
import torch

import groklab
from groklab.api import resume
from groklab.config import resolve_config
from groklab.training.schedule import eval_steps, warmup_factor
from helpers import InterruptAt

GROKS = [
    "task.p=23",
    "task.train_frac=0.6",
    "model.d_model=64",
    "model.d_mlp=128",
    "optim.lr=0.01",
    "optim.weight_decay=2",
    "run.device=cpu",
]


def test_tiny_run_fits_then_generalizes(runs_dir):
    # p=23 addition, 60% train: fits within ~50 steps, generalizes a few hundred steps later under weight decay.
    run = groklab.run(None, [*GROKS, "schedule.steps=800"], runs_dir=runs_dir)
    assert run.status == "finished"
    ev = run.events()
    assert ev["t_fit"][0] is not None and ev["t_grok"][0] is not None
    assert ev["t_fit"][0] < ev["t_grok"][0]
    assert run.final()["train_acc"] == 1.0
    assert max(run.metrics(["test_acc"])["test_acc"][1]) >= 0.99
    assert ev["test_acc_at_fit"][1] < 0.5  # memorized first, generalized later
    assert ev["delay"][0] == ev["t_grok"][0] - ev["t_fit"][0]


def test_metrics_logged_on_schedule(tiny, runs_dir):
    run = groklab.run(None, tiny, runs_dir=runs_dir)
    steps, _ = run.metrics(["test_acc"])["test_acc"]
    cfg = run.config
    assert steps == eval_steps(cfg.schedule)
    assert (runs_dir / "runs" / run.id / "config.yaml").exists()


def test_measure_cadence_counts_evaluations(tiny, runs_dir):
    run = groklab.run(None, [*tiny, "measures.every.med=3"], runs_dir=runs_dir)
    m = run.metrics()
    all_steps = m["test_acc"][0]
    assert m["med"][0] == all_steps[::3]


def test_eval_schedule_dense_then_log_spaced():
    cfg = resolve_config(
        None,
        [
            "schedule.steps=100000",
            "schedule.eval_every=10",
            "schedule.eval_dense_until=100",
            "schedule.eval_per_decade=10",
            "schedule.eval_max_gap=50000",
        ],
    )
    steps = eval_steps(cfg.schedule)
    assert steps[:11] == list(range(0, 101, 10))
    assert steps[-1] == 100000
    late = [s for s in steps if s > 1000]
    ratios = [b / a for a, b in itertools.pairwise(late)]
    assert all(1.2 < r < 1.33 for r in ratios)  # 10 per decade: ×1.26
    cfg.schedule.eval_max_gap = 5000
    capped = eval_steps(cfg.schedule)
    assert set(steps) <= set(capped)
    assert max(b - a for a, b in itertools.pairwise(capped)) == 5000


def test_warmup_is_linear():
    assert [warmup_factor(s, 4) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert warmup_factor(0, 0) == 1.0


def test_nonfinite_loss_is_recorded_as_diverged(tiny, runs_dir):
    run = groklab.run(None, [*tiny, "model.init_scale=1e30"], runs_dir=runs_dir)
    assert run.status == "diverged"
    assert "loss" in run.record.message


def test_early_stop_on_test_accuracy(runs_dir):
    run = groklab.run(None, [*GROKS, "schedule.steps=2000", "schedule.stop_test_acc=0.9", "schedule.stop_patience=2"], runs_dir=runs_dir)
    assert run.status == "stopped"
    _, acc = run.metrics(["test_acc"])["test_acc"]
    assert acc[-1] >= 0.9 and acc[-2] >= 0.9
    assert run.record.step < 2000


def test_minibatch_dropout_grokfast_float64_run(tiny, runs_dir):
    run = groklab.run(
        None,
        [
            *tiny,
            "schedule.batch_size=16",
            "model.dropout=0.1",
            "optim.grokfast.kind=ema",
            "run.dtype=float64",
            "model.n_layers=2",
            "model.norm=pre",
        ],
        runs_dir=runs_dir,
    )
    assert run.status == "finished"
    state = torch.load(runs_dir / "runs" / run.id / "checkpoint.pt", weights_only=True)
    assert state["model"]["tok_emb.weight"].dtype == torch.float64
    assert len(state["grokfast"]["ema"]) > 0


@pytest.mark.parametrize(
    "extra", [[], ["schedule.batch_size=16", "model.dropout=0.1", "optim.grokfast.kind=ma", "optim.grokfast.window=5"]]
)
def test_resume_after_interrupt_equals_uninterrupted(tiny, tmp_path, extra):
    """Stop a run at a step boundary, resume it: the metric rows equal an uninterrupted run's, bit for bit."""
    overrides = [*tiny, "schedule.steps=100", "schedule.checkpoint_every=30", *extra]
    whole = groklab.run(None, overrides, runs_dir=tmp_path / "a")

    part = groklab.run(None, overrides, runs_dir=tmp_path / "b", reporter=InterruptAt(47))  # between checkpoints
    assert part.status == "interrupted"
    assert part.record.step < 100
    resumed = resume(part.id, tmp_path / "b")
    assert resumed.status == "finished"
    rows_a = whole.store.metric_rows(whole.id)
    rows_b = resumed.store.metric_rows(resumed.id)
    assert rows_a == rows_b
    assert whole.events() == resumed.events()


def _wait_for_step(db, run_min_step: int, timeout: float = 60.0) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with sqlite3.connect(db) as conn:
                row = conn.execute("SELECT id, step FROM runs").fetchone()
            if row and row[1] >= run_min_step:
                return row[0]
        except sqlite3.Error:
            pass
        time.sleep(0.05)
    raise AssertionError("run did not reach the step in time")


def test_resume_after_sigkill_equals_uninterrupted(tiny, tmp_path):
    overrides = [*tiny, "schedule.steps=1500", "schedule.checkpoint_every=100", "schedule.eval_every=10", "schedule.eval_dense_until=1500"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "groklab", "run", *overrides, "--quiet", "--runs-dir", str(tmp_path / "b")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        run_id = _wait_for_step(tmp_path / "b" / "groklab.db", 250)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    resumed = resume(run_id, tmp_path / "b")
    assert resumed.status == "finished"
    whole = groklab.run(None, overrides, runs_dir=tmp_path / "a")
    rows_a = whole.store.metric_rows(whole.id)
    rows_b = resumed.store.metric_rows(resumed.id)
    assert len(rows_a) == len(rows_b)
    assert rows_a == rows_b
    assert all(math.isfinite(v) for _, _, v in rows_b)


def test_keep_checkpoints_writes_one_file_per_checkpoint(tiny, runs_dir):
    run = groklab.run(None, [*tiny, "schedule.keep_checkpoints=true"], runs_dir=runs_dir)
    kept = sorted(p.name for p in (runs_dir / "runs" / run.id / "checkpoints").iterdir())
    assert kept == ["step_000000020.pt", "step_000000040.pt", "step_000000060.pt"]
    state = torch.load(runs_dir / "runs" / run.id / "checkpoints" / kept[0], weights_only=True)
    assert state["step"] == 20


def test_resume_without_any_checkpoint_starts_over_identically(tiny, tmp_path):
    whole = groklab.run(None, tiny, runs_dir=tmp_path / "a")
    part = groklab.run(None, tiny, runs_dir=tmp_path / "b")
    # Pretend the process died before its first checkpoint: no checkpoint, status still running.
    (tmp_path / "b" / "runs" / part.id / "checkpoint.pt").unlink()
    part.store.set_status(part.id, "running", 15)
    part.store.conn.execute("UPDATE runs SET pid = -1 WHERE id = ?", (part.id,))
    resumed = resume(part.id, tmp_path / "b")
    assert resumed.status == "finished"
    assert whole.store.metric_rows(whole.id) == resumed.store.metric_rows(resumed.id)


def test_train_mode_differs_for_dropout_and_batchnorm_only():
    from torch import nn

    from groklab.models import train_mode_differs

    assert not train_mode_differs(nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.Dropout(0.0)))
    assert train_mode_differs(nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.1)))
    assert train_mode_differs(nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2)))  # batch statistics in train mode


def test_step_cost_is_measured_without_writing_to_the_store(tiny, runs_dir):
    from groklab.config import resolve_config
    from groklab.store import Store
    from groklab.training.step_cost import step_seconds

    store = Store(runs_dir)
    before = sorted(p.name for p in runs_dir.rglob("*"))
    seconds = step_seconds(resolve_config(None, tiny), seconds=0.05)
    assert 0 < seconds < 1
    assert store.runs() == [] and sorted(p.name for p in runs_dir.rglob("*")) == before
