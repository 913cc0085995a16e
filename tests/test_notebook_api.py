"""The notebook API: groklab.sweep / open_sweep / reproduce mirror the CLI, tables come back as DataFrames,
figures as matplotlib Figures that nothing else holds, and bad input is one GroklabError."""

from __future__ import annotations

import csv
import sys

import pytest

import groklab
from groklab.cli.main import main
from groklab.errors import ConfigError, GroklabError
from helpers import TINY

GRID = "optim.weight_decay=0.1,1"


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    """The same sweep made from the CLI and from Python, in two stores."""
    root = tmp_path_factory.mktemp("api")
    assert main(["sweep", *TINY, "--grid", GRID, "--seeds", "2", "--quiet", "--runs-dir", str(root / "cli")]) == 0
    py = groklab.sweep(overrides=TINY, grid={"optim.weight_decay": [0.1, 1.0]}, seeds=2, runs_dir=root / "py", progress=False)
    cli = groklab.open_sweep("s", runs_dir=root / "cli")
    return root, cli, py


def test_the_package_exports_the_notebook_api():
    for name in ("run", "resume", "open_run", "sweep", "open_sweep", "resume_sweep", "reproduce", "Run", "Sweep", "Reproduction"):
        assert name in groklab.__all__ and hasattr(groklab, name)


def test_a_sweep_from_python_equals_the_same_sweep_from_the_cli(both):
    _, cli, py = both
    assert py.points == cli.points and len(py.points) == 4
    assert [p.config for p in py.record.points] == [p.config for p in cli.record.points]
    for a, b in zip(cli.runs(), py.runs(), strict=True):
        assert a is not None and b is not None and a.status == b.status == "finished"
        assert a.metrics() == b.metrics()  # bit-identical on the CPU
    assert py.status() == {"finished": 4}
    before = [r.metrics() for r in py.runs()]
    again = groklab.resume_sweep(py.id, runs_dir=py.store.root, progress=False)  # a finished sweep: nothing runs again
    assert again.id == py.id and [r.metrics() for r in again.runs()] == before and len(again.store.runs()) == 4
    assert [row["values"] for row in py.summary()] == [{"optim.weight_decay": 0.1}, {"optim.weight_decay": 1.0}]


def test_the_sweep_frame_is_long_with_the_varied_keys_seed_and_events(both):
    _, _, sweep = both
    df = sweep.to_frame()
    runs = [r for r in sweep.runs() if r is not None]
    expected_rows = sum(len(r.store.metric_rows(r.id)) for r in runs)
    assert len(df) == expected_rows
    assert list(df.columns[:9]) == ["sweep", "point", "run", "status", "optim.weight_decay", "seed", "t_fit", "t_grok", "delay"]
    assert list(df.columns[-3:]) == ["step", "metric", "value"]
    for run in runs:  # every value is the store's, under its run's grid values and seed
        steps, values = run.metrics(["test_acc"])["test_acc"]
        mine = df[(df.run == run.id) & (df.metric == "test_acc")].sort_values("step")
        assert mine.step.tolist() == steps and mine.value.tolist() == values
        assert set(mine.seed) == {run.config.run.seed} and set(mine["optim.weight_decay"]) == {run.config.optim.weight_decay}
        assert set(mine.t_fit.dropna()) <= {run.events()["t_fit"][0]}
    wide = sweep.to_frame("wide")
    assert len(wide) == sum(len(r.metrics(["test_acc"])["test_acc"][0]) for r in runs)
    assert {"train_acc", "test_acc", "train_loss", "test_loss"} <= set(wide.columns)
    assert "model.d_model" in sweep.to_frame(all_config=True).columns


def test_the_cli_export_writes_the_same_table(both, tmp_path):
    root, cli, _ = both
    out = tmp_path / "sweep.csv"
    assert main(["export", cli.id, "--runs-dir", str(root / "cli"), "-o", str(out)]) == 0
    with out.open() as f:
        rows = list(csv.reader(f))
    df = cli.to_frame()
    assert rows[0] == list(df.columns) and len(rows) - 1 == len(df)
    parquet = tmp_path / "sweep.parquet"
    assert main(["export", cli.id, "--runs-dir", str(root / "cli"), "--format", "parquet", "-o", str(parquet)]) == 0
    import pandas

    back = pandas.read_parquet(parquet)
    assert list(back.columns) == list(df.columns) and len(back) == len(df)
    assert back.value.tolist() == df.value.tolist()


def test_a_run_frame_has_every_config_key_and_its_metrics(both):
    _, _, sweep = both
    run = sweep.runs()[0]
    df = run.to_frame()
    assert len(df) == len(run.store.metric_rows(run.id))
    assert {"run", "status", "optim.weight_decay", "model.d_model", "t_fit", "step", "metric", "value"} <= set(df.columns)
    assert set(df["model.d_model"]) == {32}
    wide = run.to_frame("wide")
    assert wide.step.tolist() == run.metrics(["test_acc"])["test_acc"][0]
    with pytest.raises(GroklabError, match="layout"):
        run.to_frame("tall")


def test_to_frame_without_pandas_says_how_to_install_it(both, monkeypatch):
    _, _, sweep = both
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now raises ImportError
    with pytest.raises(GroklabError, match=r"pip install 'groklab\[pandas\]'"):
        sweep.to_frame()


def test_figures_come_back_unsaved_and_outside_pyplot(both, tmp_path):
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    _, _, sweep = both
    run = sweep.runs()[0]
    before = sorted(p.name for p in run.store.run_dir(run.id).iterdir())
    fig = run.plot()
    assert isinstance(fig, Figure) and len(fig.axes) >= 2
    assert sorted(p.name for p in run.store.run_dir(run.id).iterdir()) == before  # nothing written
    assert plt.get_fignums() == []  # pyplot holds none of ours: a notebook shows what it is handed, once
    target = tmp_path / "sweep.svg"
    assert isinstance(sweep.plot(path=target), Figure) and target.read_text().startswith("<?xml")
    with pytest.raises(GroklabError, match="format"):
        run.plot(tmp_path / "run.gif")


def test_progress_bars_are_tqdm_auto():
    import tqdm.auto

    from groklab.training import progress

    assert progress.tqdm is tqdm.auto.tqdm  # a widget in Jupyter, text in a terminal


def test_bad_input_raises_one_error_and_writes_nothing(tmp_path):
    where = tmp_path / "nothing"
    with pytest.raises(ConfigError, match=r"grid optim.weight_decay"):
        groklab.sweep(overrides=TINY, grid={"optim.weight_decay": []}, runs_dir=where)
    with pytest.raises(ConfigError, match=r"--grid optim.lr"):
        groklab.sweep(overrides=TINY, grid={"optim.lr": "log:1:x:3"}, runs_dir=where)
    with pytest.raises(GroklabError, match="unknown paper 'nope'; choose one of deep-grokking"):
        groklab.reproduce("nope", runs_dir=where)
    with pytest.raises(GroklabError, match="workers"):
        groklab.sweep(overrides=TINY, grid={"optim.weight_decay": [0.1]}, workers=0, runs_dir=where)
    with pytest.raises(GroklabError):
        groklab.open_sweep("s", runs_dir=where)
    assert not where.exists()


def test_reproduce_returns_the_claim_table_and_writes_its_report(tmp_path):
    tiny = [o for o in TINY if not o.startswith(("schedule.steps", "run.device"))]
    done = groklab.reproduce(
        "grokfast", quick=True, seeds=2, overrides=[*tiny, "schedule.steps=20", "schedule.batch_size=32"],
        runs_dir=tmp_path / "runs", out=tmp_path / "out", progress=False,
    )  # fmt: skip
    assert [c["claim"][:3] for c in done.claims] == ["(a)", "(b)"]
    assert all(c["result"] in ("PASS", "FAIL", "n/a") for c in done.claims)
    assert sum(done.counts().values()) == 2
    frame = done.to_frame()
    assert list(frame.columns) == ["claim", "paper", "measured", "result"] and len(frame) == 2
    assert len(done.sweeps()) == 3 and all(s.status() == {"finished": 2} for s in done.sweeps())
    page = done.report_path.read_text()
    assert done.report_path.parent == tmp_path / "out" and "(b) Grokfast-EMA generalizes sooner" in page


def test_export_refuses_a_bad_output_path_before_writing(both, tmp_path, capsys):
    root, cli, _ = both
    cases = [
        ([cli.id, "-o", str(tmp_path / "missing" / "x.csv")], "the folder"),
        ([cli.id, "-o", str(tmp_path)], "is a folder"),
        ([cli.id, "--format", "parquet", "-o", str(tmp_path / "x.csv" / "y.parquet")], "does not exist"),
        ([cli.runs()[0].id, "--all-config", "-o", str(tmp_path / "x.csv")], "--all-config: only for a sweep"),
    ]
    for argv, message in cases:
        assert main(["export", *argv, "--runs-dir", str(root / "cli")]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_dict_overrides_are_the_cli_strings():
    from groklab.api import _override_list

    given = {"optim.weight_decay": 0.3, "measures.enabled": ["loss_acc", "med"], "task.split": "square:30", "run.name": "a b"}
    assert _override_list(given) == ["optim.weight_decay=0.3", "measures.enabled=[loss_acc, med]", "task.split=square:30", "run.name=a b"]
    from groklab.config import resolve_config

    assert resolve_config(None, _override_list(given)) == resolve_config(None, given)
