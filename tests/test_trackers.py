"""Tracker sinks and TensorBoard export: what a run logs to the store reaches TensorBoard's event files and
W&B's offline run, read back with TensorBoard's own reader and an independent reader of W&B's files."""

from __future__ import annotations

import pytest

from groklab.cli.main import main
from groklab.store import Store
from helpers import TINY


def scalars(folder) -> dict[str, tuple[list[int], list[float]]]:
    """Every scalar tag in a TensorBoard log folder, read with TensorBoard's EventAccumulator."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: ([e.step for e in acc.Scalars(tag)], [e.value for e in acc.Scalars(tag)]) for tag in acc.Tags()["scalars"]}


def same_curves(tb: dict, store_metrics: dict) -> None:
    assert set(tb) == set(store_metrics)
    for name, (steps, values) in store_metrics.items():
        assert tb[name][0] == steps
        assert tb[name][1] == pytest.approx(values, rel=1e-6, abs=1e-30)  # TensorBoard keeps float32


def test_an_unknown_sink_is_one_line_naming_the_key_and_writes_nothing(runs_dir, capsys):
    assert main(["run", *TINY, "run.log_to=[tensorbored]", "--runs-dir", str(runs_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "groklab: error: run.log_to: unknown sink 'tensorbored'; choose from tensorboard, wandb"
    assert not runs_dir.exists()


def test_a_sink_whose_package_is_missing_names_the_extra(runs_dir, capsys, monkeypatch):
    from groklab.training import trackers

    monkeypatch.setitem(trackers.EXTRAS, "tensorboard", ("groklab_no_such_module", "tensorboard"))
    assert main(["run", *TINY, "run.log_to=[tensorboard]", "--runs-dir", str(runs_dir)]) == 2
    assert "pip install 'groklab[tensorboard]'" in capsys.readouterr().err
    assert not runs_dir.exists()


def test_the_live_tensorboard_sink_writes_every_metric_under_the_run(runs_dir):
    assert main(["run", *TINY, "run.log_to=[tensorboard]", "--quiet", "--runs-dir", str(runs_dir)]) == 0
    store = Store(runs_dir)
    rec = store.runs()[0]
    same_curves(scalars(store.run_dir(rec.id) / "tensorboard"), store.metrics(rec.id))


def test_an_ensemble_sweep_gives_each_member_its_own_events(runs_dir):
    args = ["sweep", *TINY, "run.log_to=[tensorboard]", "--grid", "optim.weight_decay=0.1,1", "--seeds", "2", "--quiet"]
    assert main([*args, "--runs-dir", str(runs_dir)]) == 0
    store = Store(runs_dir)
    runs = store.runs()
    assert len(runs) == 4
    for rec in runs:
        same_curves(scalars(store.run_dir(rec.id) / "tensorboard"), store.metrics(rec.id))
    finals = {store.metrics(r.id)["test_loss"][1][-1] for r in runs}
    assert len(finals) == 4  # the members differ, and each folder holds its own member's curve


def test_export_to_tensorboard_after_the_fact_for_a_run_and_a_sweep(runs_dir, tmp_path, capsys):
    args = ["sweep", *TINY, "--grid", "optim.weight_decay=0.1,1", "--quiet", "--runs-dir", str(runs_dir)]
    assert main(args) == 0
    store = Store(runs_dir)
    sweep = store.sweeps()[0]
    linked = store.sweep_runs(sweep.id)
    out = tmp_path / "tb"
    assert main(["export", sweep.id, "--format", "tensorboard", "-o", str(out), "--runs-dir", str(runs_dir)]) == 0
    folders = sorted(p for p in out.iterdir() if p.is_dir())
    assert [f.name.split("_")[-1] for f in folders] == [linked[0], linked[1]]
    assert folders[0].name.startswith("000_optim.weight_decay=0.1")
    for folder in folders:
        same_curves(scalars(folder), store.metrics(folder.name.split("_")[-1]))
    one = tmp_path / "one"
    assert main(["export", linked[1], "--format", "tensorboard", "-o", str(one), "--runs-dir", str(runs_dir)]) == 0
    same_curves(scalars(one), store.metrics(linked[1]))
    capsys.readouterr()
    assert main(["export", linked[1], "--format", "tensorboard", "-o", str(one), "--runs-dir", str(runs_dir)]) == 2
    assert "already holds TensorBoard events" in capsys.readouterr().err  # a second export would double every point


def test_the_wandb_sink_in_offline_mode_logs_every_evaluation(runs_dir, monkeypatch):
    pytest.importorskip("wandb")
    from wandb_log import read_run

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    args = ["run", *TINY, "run.log_to=[wandb]", "run.wandb_project=groklab-test", "run.name=wb", "--quiet"]
    assert main([*args, "--runs-dir", str(runs_dir)]) == 0
    store = Store(runs_dir)
    rec = store.runs()[0]
    files = list((store.run_dir(rec.id) / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 1  # W&B's files live in the run's folder, not the working directory
    run, history = read_run(files[0])
    assert run["id"] == rec.id and run["project"] == "groklab-test" and run["name"] == "wb"
    assert run["config"]["optim"]["weight_decay"] == rec.config["optim"]["weight_decay"]
    steps, values = store.metrics(rec.id, ["test_acc"])["test_acc"]
    assert [h["_step"] for h in history] == steps
    assert [h["test_acc"] for h in history] == pytest.approx(values)


def test_a_killed_and_resumed_run_shows_each_step_once_in_tensorboard(tmp_path):
    """SIGKILL between checkpoints: what the killed process logged after its last checkpoint is recomputed on
    resume, and TensorBoard shows every step once, with the resumed run's values (the store's)."""
    import subprocess
    import sys
    import time

    import groklab

    runs = tmp_path / "runs"
    args = [*TINY, "schedule.steps=1500", "schedule.checkpoint_every=100", "schedule.eval_every=10", "schedule.eval_dense_until=1500"]
    proc = subprocess.Popen([sys.executable, "-m", "groklab", "run", *args, "run.log_to=[tensorboard]", "--quiet", "--runs-dir", str(runs)])
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            recs = Store(runs).runs() if (runs / "groklab.db").exists() else []
            if recs and recs[0].step >= 250:
                break
            time.sleep(0.05)
        proc.kill()
        proc.wait(timeout=30)
    finally:
        proc.kill()
    run_id = Store(runs).runs()[0].id
    killed_at = Store(runs).get(run_id).step
    assert 250 <= killed_at < 1500
    resumed = groklab.resume(run_id, runs)
    assert resumed.status == "finished"
    same_curves(scalars(resumed.store.run_dir(run_id) / "tensorboard"), resumed.metrics())
