"""Inputs a held-out trial found past the input contract (issue #29): each is now a one-line error with exit
status 2 and nothing written, or a damaged item named while the rest stays listed."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path

import pytest
import torch

import groklab
from groklab.cli.main import main
from groklab.config import resolve_config
from groklab.store import Store
from groklab.tasks import build_task
from helpers import TINY

SHORT = [*TINY, "schedule.steps=20"]


def refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("groklab: error: ") and err.count("\n") == 1, err
    return err


def listed(runs: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, dict]:
    capsys.readouterr()
    assert main(["runs", "--json", "--runs-dir", str(runs)]) == 0
    return {r["id"]: r for r in json.loads(capsys.readouterr().out)}


@pytest.fixture
def two_runs(tmp_path) -> tuple[Path, str, str]:
    runs = tmp_path / "runs"
    good, bad = groklab.run(None, SHORT, runs_dir=runs), groklab.run(None, SHORT, runs_dir=runs)
    return runs, good.id, bad.id


# ----- sweep files of the wrong shape ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ("grid: [optim.lr, 0.1]\n", "grid must be a mapping"),
        ("grid: 3\n", "grid must be a mapping"),
        ("grid: {optim.lr: [0.1]}\noverrides: 5\n", "overrides must be"),
        ("grid: {optim.lr: [0.1]}\noverrides: [1, 2]\n", "overrides must be"),
        ("grid: {optim.lr: {a: 1}}\n", "grid optim.lr: values must be"),
        ("grid: {optim.lr: [0.1]}\nname: [x]\n", "name must be a string"),
        ("grid: {optim.lr: [0.1]}\npreset: 3\n", "preset must be a string"),
        ("grid: {3: [0.1]}\n", "grid keys must be dotted config keys"),
    ],
)
def test_a_sweep_file_of_the_wrong_shape_is_one_line(body, named, tmp_path, capsys):
    path = tmp_path / "sweep.yaml"
    path.write_text(body)
    err = refused(["sweep", str(path), "--runs-dir", str(tmp_path / "runs")], capsys)
    assert named in err and str(path) in err
    assert not (tmp_path / "runs").exists()


# ----- a store whose rows or files were edited --------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [b"garbage: [unclosed\n", b"!!python/object/apply:os.system ['true']\n", b"- 1\n- 2\n", b"\xff\xfe not utf-8"],
    ids=["garbage", "python-tag", "list", "binary"],
)
def test_a_damaged_preset_file_lists_its_run_as_damaged(content, two_runs, capsys):
    runs, good, bad = two_runs
    (runs / "runs" / bad / "preset.yaml").write_bytes(content)
    rows = listed(runs, capsys)
    assert rows[good]["status"] == "finished" and "damaged" not in rows[good]
    assert rows[bad]["status"] == "damaged" and "preset.yaml is damaged" in rows[bad]["damaged"]
    assert main(["runs", "--runs-dir", str(runs)]) == 0  # the table too
    assert f"{bad}" in capsys.readouterr().out


METRICS = "UPDATE metrics SET"


@pytest.mark.parametrize(
    ("sql", "named"),
    [
        ("UPDATE metrics SET value = 'abc' WHERE run_id = ? AND name = 'test_acc'", "holds text 'abc', not a number"),
        ("UPDATE metrics SET step = 'x' WHERE run_id = ? AND step = 10", "at step text 'x'"),
        ("UPDATE metrics SET value = x'00ff' WHERE run_id = ? AND name = 'train_loss'", "a blob of 2 bytes"),
        ("UPDATE events SET value = 'fast' WHERE run_id = ? AND name = 't_fit'", "holds text 'fast'"),
        ("UPDATE runs SET step = 'ten' WHERE id = ?", "its step is text 'ten'"),
        ("UPDATE runs SET created = 'yesterday' WHERE id = ?", "its created is text 'yesterday'"),
        ("UPDATE runs SET created = 9223372036854775807 WHERE id = ?", "its created is 9.223372036854776e+18, not a time"),
        ("UPDATE runs SET status = 'gone' WHERE id = ?", "its status 'gone' is not one of"),
    ],
)
def test_a_value_of_the_wrong_kind_is_named_and_the_other_runs_stay_listed(sql, named, two_runs, capsys):
    """`runs` and `show` used to end in a traceback (a string where a metric value is stored)."""
    runs, good, bad = two_runs
    with sqlite3.connect(runs / "groklab.db") as conn:
        assert conn.execute(sql, (bad,)).rowcount >= 1
    rows = listed(runs, capsys)
    assert rows[good]["status"] == "finished"
    assert rows[bad]["status"] == "damaged" and named in rows[bad]["damaged"]
    assert main(["runs", "--runs-dir", str(runs)]) == 0
    capsys.readouterr()
    assert main(["show", bad, "--runs-dir", str(runs)]) == 0  # shown, with what is wrong
    out = capsys.readouterr().out
    assert "status damaged" in out and named in out
    assert main(["show", good, "--runs-dir", str(runs)]) == 0
    export = ["export", bad, "-o", str(runs.parent / "m.csv"), "--runs-dir", str(runs)]
    if sql.startswith(METRICS):  # the curves an export writes are damaged: named, nothing written
        assert named in refused(export, capsys) and not (runs.parent / "m.csv").exists()
    else:  # the curves are intact and export as they are
        assert main(export) == 0 and (runs.parent / "m.csv").exists()


def test_a_sweep_linking_a_run_that_is_gone_is_listed_as_damaged(tmp_path, capsys):
    runs = tmp_path / "runs"
    sweep = groklab.sweep(None, SHORT, seeds=2, runs_dir=runs)
    with sqlite3.connect(runs / "groklab.db") as conn:
        conn.execute("DELETE FROM runs WHERE id = (SELECT MIN(run_id) FROM sweep_runs)")
    capsys.readouterr()
    assert main(["sweeps", "--json", "--runs-dir", str(runs)]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["id"] == sweep.id and "which is not in the store" in row["damaged"]
    assert "is damaged" in refused(["show", sweep.id, "--runs-dir", str(runs)], capsys)
    with sqlite3.connect(runs / "groklab.db") as conn:
        conn.execute("UPDATE sweeps SET created = 9223372036854775807")  # past what a clock can show: a traceback once
    assert main(["sweeps", "--runs-dir", str(runs)]) == 0 and "damaged" in capsys.readouterr().out


def test_a_sweep_shows_a_damaged_member_and_summarizes_the_others(tmp_path, capsys):
    runs = tmp_path / "runs"
    sweep = groklab.sweep(None, SHORT, seeds=2, runs_dir=runs)
    bad, good = sorted(Store(runs).sweep_runs(sweep.id).items())
    with sqlite3.connect(runs / "groklab.db") as conn:
        conn.execute("UPDATE metrics SET value = 'abc' WHERE run_id = ? AND name = 'test_acc'", (bad[1],))
    capsys.readouterr()
    assert main(["show", sweep.id, "--json", "--runs-dir", str(runs)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [p["status"] for p in shown["points"]] == ["damaged", "finished"]
    (summary,) = shown["summary"]
    assert summary["runs"] == [good[1]] and summary["damaged"] == [bad[1]]  # left out of the statistics, named


# ----- outputs, integers, buffers, empty values, names -------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_an_output_where_no_file_can_be_made_is_refused_before_the_work(fmt, two_runs, capsys):
    runs, good, _ = two_runs
    err = refused(["export", good, "--format", fmt, "-o", f"/proc/x.{fmt}", "--runs-dir", str(runs)], capsys)
    assert "--output: cannot create files in /proc" in err and not Path(f"/proc/x.{fmt}").exists()
    assert main(["export", good, "--format", fmt, "-o", str(runs.parent / f"x.{fmt}"), "--runs-dir", str(runs)]) == 0  # a real folder


def test_a_seed_past_what_the_generators_take_is_refused_before_the_run_exists(tmp_path, capsys):
    runs = tmp_path / "runs"
    err = refused(["run", *SHORT, "run.seed=9223372036854775807", "schedule.batch_size=8", "--runs-dir", str(runs)], capsys)
    assert err.startswith("groklab: error: run.seed: must be between 0 and 4294967295")
    assert "task.seed" in refused(["run", *SHORT, "task.seed=-1", "--runs-dir", str(runs)], capsys)
    assert not runs.exists()
    top = groklab.run(None, [*SHORT, "run.seed=4294967295", "task.seed=4294967295", "schedule.batch_size=8"], runs_dir=runs)
    assert top.status == "finished"  # the largest seed trains, minibatches and all


def test_a_grokfast_window_that_cannot_fit_is_refused_with_its_memory(tmp_path, capsys):
    runs = tmp_path / "runs"
    start = time.monotonic()
    err = refused(["run", *SHORT, "optim.grokfast.kind=ma", "optim.grokfast.window=1000000000", "--runs-dir", str(runs)], capsys)
    assert time.monotonic() - start < 30  # it used to train on, holding one more gradient every step
    assert err.startswith("groklab: error: optim.grokfast.window: the run needs at least")
    assert "Grokfast's 1,000,000,000 stored gradients" in err
    assert not runs.exists()


def test_empty_paths_and_an_empty_measure_list_are_refused(two_runs, capsys):
    runs, good, _ = two_runs
    assert "--output: must name a path" in refused(["export", good, "-o", "", "--runs-dir", str(runs)], capsys)
    assert "--output: must name a path" in refused(["report", good, "-o", " ", "--runs-dir", str(runs)], capsys)
    assert "--runs-dir: must name a path" in refused(["runs", "--runs-dir", ""], capsys)
    err = refused(["compare-measures", good, "--measures", ",,,", "--runs-dir", str(runs)], capsys)
    assert "--measures: ',,,' names no measure" in err
    assert sorted(p.name for p in (runs / "runs" / good).iterdir() if p.suffix in (".png", ".csv", ".html")) == []


@pytest.mark.parametrize(("override", "typed"), [("no.such.key=1", "no.such.key"), ("optim.nope.x=1", "optim.nope.x")])
def test_an_unknown_key_is_named_as_typed(override, typed, tmp_path, capsys):
    err = refused(["run", override, "--runs-dir", str(tmp_path / "runs")], capsys)
    assert err.startswith(f"groklab: error: {typed}: unknown config key")


def test_a_resume_removes_what_a_killed_checkpoint_write_left(tmp_path):
    """A SIGKILL during a checkpoint's write leaves its temporary file; the resume that claims the run removes it
    (a kill trial found one left behind)."""
    runs = tmp_path / "runs"
    run = groklab.run(None, SHORT, runs_dir=runs)
    store = Store(runs)
    store.set_status(run.id, "interrupted", 20)
    folder = store.run_dir(run.id)
    left = [folder / ".checkpoint.pt.999999.tmp", folder / "weights" / ".step_000000020.pt.999999.tmp"]
    left[1].parent.mkdir(exist_ok=True)
    for f in left:
        f.write_bytes(b"half a checkpoint")
    mine = folder / "notes.tmp"  # not a name groklab writes: kept
    mine.write_text("x")
    assert groklab.resume(run.id, runs_dir=runs).status == "finished"
    assert not any(f.exists() for f in left) and mine.exists()
    assert os.listdir(folder).count("checkpoint.pt") == 1


# ----- what the extended fuzzer found --------------------------------------------------------------------------

MLP = ["model.name=mlp", "model.d_model=8", "task.p=13", "task.train_frac=0.5", "schedule.steps=2"]


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("task.b_offset=9223372036854775807", "task: makes a tensor too large to build"),
        ("model.d_mlp=9223372036854775807", "model.d_mlp: makes a tensor too large to build"),
        ("model.d_mlp=1000000", "measures.enabled: the run needs at least"),  # a 10^6 x 10^6 float64 covariance
        ("measures.probe_epochs=9223372036854775807", "measures.probe_epochs: must be between 1 and 10,000"),
    ],
)
def test_sizes_past_what_the_code_can_build_are_refused_before_the_run_exists(override, named, tmp_path, capsys):
    runs = tmp_path / "runs"
    err = refused(["run", *MLP, "measures.enabled=[loss_acc,feature_rank,probe]", override, "--runs-dir", str(runs)], capsys)
    assert err.startswith(f"groklab: error: {named}"), err
    assert not runs.exists()


def test_the_measures_buffers_are_counted_in_the_memory_check():
    from groklab.training.memory import estimate

    def need(measures: str, width: int):
        cfg = resolve_config(None, [*MLP, f"model.d_mlp={width}", f"measures.enabled={measures}"])
        task = build_task(cfg.task)
        return estimate(cfg, task, task.spec, torch.float32)

    plain, ranked = need("[loss_acc]", 4000), need("[loss_acc,feature_rank]", 4000)
    assert plain.measures == 0 and ranked.measures >= 8 * 4000**2  # at least the widest layer's float64 covariance
    assert ranked.total - plain.total == ranked.measures


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE runs SET config = '{}' WHERE id = ?",
        "UPDATE runs SET config = '[1]' WHERE id = ?",
        "UPDATE runs SET status = 'abc' WHERE id = ?",
    ],
)
def test_a_run_with_an_edited_row_still_plots_its_curves(sql, two_runs, capsys):
    """A plot's title read the config's weight decay and raised a KeyError for a config without it. An empty
    mapping is read as a partial config (synthetic and older runs have those); a list, or a bad status, is damage."""
    runs, _, bad = two_runs
    with sqlite3.connect(runs / "groklab.db") as conn:
        conn.execute(sql, (bad,))
    assert listed(runs, capsys)[bad]["status"] == ("finished" if "'{}'" in sql else "damaged")
    assert main(["plot", bad, "-o", str(runs.parent / "f.png"), "--runs-dir", str(runs)]) == 0  # a KeyError once
    assert (runs.parent / "f.png").stat().st_size > 0


def test_an_evaluation_pass_that_cannot_fit_names_eval_batch_size(tmp_path, capsys, monkeypatch):
    """schedule.eval_batch_size sizes the evaluation's forward pass: all 20,000 rows at once through a 20,000-wide
    layer hold 1.6 GB, more than the 1 GiB this test's device has; 1,000 rows at a time fit."""
    from groklab.training import memory

    monkeypatch.setattr(memory, "available_bytes", lambda device: 1 << 30)
    runs = tmp_path / "runs"
    wide = ["merrill2023-parity", "task.n_train=20000", "model.width=20000", "schedule.steps=1"]
    err = refused(["run", *wide, "schedule.eval_batch_size=1000000000", "--runs-dir", str(runs)], capsys)
    assert err.startswith("groklab: error: schedule.eval_batch_size: the run needs at least") and "20,000-row evaluation pass" in err
    assert not runs.exists()
    cfg = resolve_config("merrill2023-parity", [*wide[1:], "schedule.eval_batch_size=1000"])
    task = build_task(cfg.task)
    assert memory.estimate(cfg, task, task.spec, torch.float32).total < 1 << 30  # in chunks it fits


def test_a_negative_delay_is_an_event_not_damage(two_runs, capsys):
    """The event `delay` is t_grok - t_fit: negative when the test accuracy passes its threshold before the train
    accuracy passes its own (Omnigrok's fixed-norm arm). The row check had called such a run damaged, and the
    omnigrok reproduction stopped on it."""
    runs, good, _ = two_runs
    with Store(runs, create=False) as store:
        store.set_events(good, {"t_fit": (500, 0.99), "t_grok": (250, 0.9), "delay": (-250, None)})
        assert store.events(good)["delay"] == (-250, None)
        store.check_rows(good)
    assert listed(runs, capsys)[good]["status"] == "finished"
    with sqlite3.connect(runs / "groklab.db") as conn:  # a metric's step stays a count
        conn.execute("UPDATE metrics SET step = -10 WHERE run_id = ? AND step = 10", (good,))
    assert listed(runs, capsys)[good]["status"] == "damaged"
