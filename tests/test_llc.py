"""`groklab llc`: devinterp's LLC estimate on a run's snapshots, stored as a curve compare-measures reads."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import groklab
from groklab.analysis.llc import last_position_loss
from groklab.cli.main import main
from groklab.store import Store
from groklab.tasks import build_task
from helpers import TINY

pytest.importorskip("devinterp")  # the llc extra (in dev): CI has it

SNAP = [*TINY, "schedule.steps=30", "schedule.snapshot_per_decade=2"]  # snapshots at 0, 1, 3, 10, 30


def test_the_loss_handed_to_devinterp_is_the_runs_cross_entropy():
    run_model = groklab.models.Transformer(groklab.models.TransformerShape(vocab_size=14, n_classes=13, seq_len=3, d_model=16, n_heads=2))
    data = build_task(groklab.config.resolve_config(None, TINY).task).build()
    ids = torch.cat([data.train_x, data.train_y[:, None]], 1)
    per_token = last_position_loss(run_model, ids)
    assert per_token.shape == (len(ids), 3)
    expected = F.cross_entropy(run_model(data.train_x), data.train_y)
    torch.testing.assert_close(per_token.mean(), expected)  # devinterp's mean over positions: the run's loss


def test_llc_is_stored_at_each_snapshot(tmp_path, capsys):
    runs = str(tmp_path)
    run = groklab.run(None, SNAP, runs_dir=runs)
    assert main(["llc", run.id, "--chains", "2", "--draws", "20", "--runs-dir", runs]) == 0
    out = capsys.readouterr().out
    assert "LLC at 5 snapshot(s)" in out
    steps, values = Store(runs, create=False).metrics(run.id)["llc"]
    assert steps == [0, 1, 3, 10, 30] and all(math.isfinite(v) for v in values)
    assert Store(runs, create=False).get(run.id).step == 30  # the run's own step is untouched
    assert main(["llc", run.id, "--steps", "3,30", "--chains", "1", "--draws", "10", "--seed", "1", "--runs-dir", runs]) == 0
    again = dict(zip(*Store(runs, create=False).metrics(run.id)["llc"], strict=True))
    assert len(again) == 5 and again[3] != dict(zip(steps, values, strict=True))[3]  # re-estimated in place, not appended


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--steps", "7"], "nearest snapshot is step 10"),
        (["--lr", "0"], "--lr"),
        (["--chains", "0"], "--chains"),
        (["--steps", "x"], "--steps"),
    ],
)
def test_bad_llc_input_is_one_line(tmp_path, capsys, extra, message):
    runs = str(tmp_path)
    run = groklab.run(None, SNAP, runs_dir=runs)
    capsys.readouterr()
    assert main(["llc", run.id, *extra, "--runs-dir", runs]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert "llc" not in Store(runs, create=False).metrics(run.id)


def test_a_run_without_snapshots_says_how_to_keep_them(tmp_path, capsys):
    run = groklab.run(None, TINY, runs_dir=str(tmp_path))
    assert main(["llc", run.id, "--runs-dir", str(tmp_path)]) == 2
    assert "schedule.snapshot_per_decade" in capsys.readouterr().err


def test_without_devinterp_the_error_says_what_to_install(tmp_path, capsys, monkeypatch):
    import sys

    run = groklab.run(None, SNAP, runs_dir=str(tmp_path))
    monkeypatch.setitem(sys.modules, "devinterp.slt.llc", None)  # as if the llc extra were not installed
    assert main(["llc", run.id, "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'groklab[llc]'" in err[0]
