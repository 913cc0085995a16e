"""The CLI end to end, and every bad input: one line, exit status 2, store unchanged."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import pytest

from groklab.cli.main import main


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def snapshot(path):
    """The store's files (the database by content: WAL checkpoints change its size) or None if absent."""
    if not path.exists():
        return None
    files = sorted((str(p.relative_to(path)), p.stat().st_size) for p in path.rglob("*") if p.is_file() and "groklab.db" not in p.name)
    with sqlite3.connect(path / "groklab.db") as conn:
        rows = list(conn.iterdump())
    return files, rows


def assert_changes_survive_a_preset_edit(capsys, runs_dir, run_id, changes):
    """The run saved its preset as it resolved then: an edit to the preset since is not one of its changes,
    while a run from before that file existed falls back to the preset as it resolves today."""
    from groklab.config import presets

    real = presets.preset_data

    def edited(name, *args):
        data = real(name, *args)
        return {**data, "optim": {**data.get("optim", {}), "lr": 0.123}} if name == "modular-addition" else data

    presets._resolved_flat.cache_clear()
    try:
        presets.preset_data = edited
        (row,) = json.loads(run_cli(capsys, "runs", "--json", "--runs-dir", str(runs_dir))[1])
        assert row["changes"] == changes
        (runs_dir / "runs" / run_id / "preset.yaml").unlink()
        (row,) = json.loads(run_cli(capsys, "runs", "--json", "--runs-dir", str(runs_dir))[1])
        assert row["changes"] == {**changes, "optim.lr": 0.003}  # against today's (edited) preset
    finally:
        presets.preset_data = real
        presets._resolved_flat.cache_clear()


def test_run_show_plot_export(capsys, tiny, runs_dir, tmp_path):
    code, out, err = run_cli(capsys, "run", *tiny, "--quiet", "--runs-dir", str(runs_dir))
    assert code == 0, err
    run_id = out.strip()
    assert len(run_id) == 8

    code, out, _ = run_cli(capsys, "show", run_id[:6], "--json", "--runs-dir", str(runs_dir))
    info = json.loads(out)
    assert info["run"]["status"] == "finished" and info["run"]["id"] == run_id
    assert set(info["events"]) >= {"t_fit", "t_grok", "delay"}
    assert {"train_acc", "test_acc", "weight_norm", "med"} <= set(info["final"])
    assert info["config"]["task"]["p"] == 13

    code, out, _ = run_cli(capsys, "show", "last", "--runs-dir", str(runs_dir))
    assert code == 0 and "t_grok" in out and "config:" in out

    code, out, _ = run_cli(capsys, "runs", "--json", "--runs-dir", str(runs_dir))
    (row,) = json.loads(out)
    assert row["id"] == run_id and row["preset"] == "modular-addition"
    assert row["changes"]["task.p"] == 13  # what the overrides changed, so runs of one preset can be told apart
    assert "run.name" not in row["changes"] and "task.op" not in row["changes"]
    code, out, _ = run_cli(capsys, "runs", "--runs-dir", str(runs_dir))
    assert code == 0 and "task.p=13" in out.splitlines()[1]
    assert_changes_survive_a_preset_edit(capsys, runs_dir, run_id, row["changes"])

    for ext in ("png", "svg", "pdf"):
        target = tmp_path / f"fig.{ext}"
        code, out, _ = run_cli(capsys, "plot", run_id, "-o", str(target), "--runs-dir", str(runs_dir))
        assert code == 0 and target.stat().st_size > 1000
    assert run_cli(capsys, "plot", run_id, "--runs-dir", str(runs_dir))[0] == 0
    assert (runs_dir / "runs" / run_id / "figure.png").exists()

    csv_path = tmp_path / "m.csv"
    assert run_cli(capsys, "export", run_id, "-o", str(csv_path), "--runs-dir", str(runs_dir))[0] == 0
    header, *rows = csv_path.read_text().splitlines()
    assert header.startswith("step,") and "test_acc" in header and len(rows) == 7

    pq = pytest.importorskip("pyarrow.parquet")
    pq_path = tmp_path / "m.parquet"
    assert (
        run_cli(capsys, "export", run_id, "--format", "parquet", "--layout", "long", "-o", str(pq_path), "--runs-dir", str(runs_dir))[0]
        == 0
    )
    table = pq.read_table(pq_path)
    assert table.column_names == ["step", "name", "value"] and table.num_rows > 7 * 6


def test_presets_and_config_commands(capsys):
    code, out, _ = run_cli(capsys, "presets")
    assert code == 0
    lines = out.splitlines()
    assert any(line.startswith("* modular-addition") for line in lines)
    assert {"nanda2023", "gu2025", "power2022", "davies2023", "grokfast"} <= {line[2:].split()[0] for line in lines}
    code, out, _ = run_cli(capsys, "config", "nanda2023", "model.d_model=64")
    assert code == 0 and "d_model: 64" in out


BAD_RUNS = [
    (["task.p=91"], "task.p"),
    (["task.p=2"], "task.p"),
    (["task.train_frac=1.5"], "task.train_frac"),
    (["task.train_frac=0"], "task.train_frac"),
    (["task.op=pow"], "task.op"),
    (["model.name=lstm"], "model.name"),
    (["model.act=swish"], "model.act"),
    (["model.d_modle=8"], "model.d_modle"),
    (["model.d_model=eight"], "model.d_model"),
    (["optim.lr=-0.1"], "optim.lr"),
    (["optim.lr=0"], "optim.lr"),
    (["model.d_model=30", "model.n_heads=4"], "model.n_heads"),
    (["task.split=square:12"], "task.split"),
    (["task.split=strip:-1"], "task.split"),
    (["task.split=strip:40"], "task.split"),
    (["nanda2024"], "preset"),
    (["measures.enabled=loss_acc,unknown"], "measures.enabled"),
    (["model.dropout_at=[mlp,ffn]"], "model.dropout_at"),
    (["task.format=openai"], "task.format"),
    (["task.format=power", "task.op=x3xyy3"], "task.op"),  # not in Power et al.'s task list
    (["task.format=power", "task.n_tokens=15"], "task.n_tokens"),  # p = 13 needs 16 tokens in this format
    (["task.b_offset=-1"], "task.b_offset"),
    (["task.format=power", "task.b_offset=60"], "task.b_offset"),  # str.py's layout is of the [a, b, =] format
    (["task.op=x3+y3"], "task.op"),
    (["measures.probe_select=median"], "measures.probe_select"),
]


@pytest.mark.parametrize("args,field", BAD_RUNS)
def test_bad_run_input(capsys, tiny, runs_dir, args, field):
    before = snapshot(runs_dir)
    argv = [*tiny, *args] if "=" in args[0] else [args[0], *tiny, *args[1:]]  # a preset name goes first
    code, _out, err = run_cli(capsys, "run", *argv, "--runs-dir", str(runs_dir))
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"groklab: error: {field}")
    assert snapshot(runs_dir) == before  # nothing written, not even the directory


def test_bad_run_ids(capsys, tiny, runs_dir):
    assert run_cli(capsys, "run", *tiny, "--quiet", "--runs-dir", str(runs_dir))[0] == 0
    assert run_cli(capsys, "run", *tiny, "--quiet", "--runs-dir", str(runs_dir))[0] == 0
    before = snapshot(runs_dir)
    for cmd in ("show", "plot", "export", "resume"):
        code, _, err = run_cli(capsys, cmd, "nonexistent", "--runs-dir", str(runs_dir))
        assert code == 2 and err.count("\n") == 1 and "no such run" in err
        code, _, err = run_cli(capsys, cmd, "", "--runs-dir", str(runs_dir))  # matches every id: ambiguous
        assert code == 2 and "ambiguous" in err
    assert snapshot(runs_dir) == before


def test_unwritable_runs_dir(capsys, tiny, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _, err = run_cli(capsys, "run", *tiny, "--runs-dir", str(blocker / "runs"))
    assert code == 2 and "not writable" in err and err.count("\n") == 1


def test_wrong_type_and_usage_errors(capsys, runs_dir):
    for argv in (["run", "schedule.steps=ten", "--runs-dir", str(runs_dir)], ["frobnicate"], ["run", "a", "b"]):
        code, _, err = run_cli(capsys, *argv)
        assert code == 2 and err.count("\n") == 1 and err.startswith("groklab: error:")
    assert not runs_dir.exists()


def test_resume_refuses_finished_runs(capsys, tiny, runs_dir):
    code, out, _ = run_cli(capsys, "run", *tiny, "--quiet", "--runs-dir", str(runs_dir))
    code, _, err = run_cli(capsys, "resume", out.strip(), "--runs-dir", str(runs_dir))
    assert code == 2 and "already finished" in err


def test_real_process_bad_input_has_no_traceback(tmp_path):
    env = {**os.environ, "GROKLAB_HOME": str(tmp_path / "home")}
    proc = subprocess.run([sys.executable, "-m", "groklab", "run", "task.p=100"], capture_output=True, text=True, env=env)
    assert proc.returncode == 2
    assert proc.stderr == "groklab: error: task.p: must be a prime >= 3, got 100\n"
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "home").exists()


def test_show_json_is_strict_json_with_non_finite_values(capsys, tiny, runs_dir):
    from groklab.store import Store

    code, out, _ = run_cli(capsys, "run", *tiny, "--quiet", "--runs-dir", str(runs_dir))
    run_id = out.strip()
    with Store(runs_dir) as store:  # a diverging run's last evaluation: non-finite values
        store.log_metrics(run_id, 10_000, {"train_loss": float("nan"), "test_loss": float("inf")})
    code, out, _ = run_cli(capsys, "show", run_id, "--json", "--runs-dir", str(runs_dir))
    assert code == 0

    def refuse(constant):
        raise AssertionError(f"non-standard JSON constant {constant}")

    info = json.loads(out, parse_constant=refuse)
    assert info["final"]["train_loss"] is None and info["final"]["test_loss"] is None


def test_show_lines_up_long_metric_names(capsys, tiny, runs_dir):
    """Division's subset accuracies (test_acc/zero_div, ...) are longer than the usual names."""
    args = [*tiny, "task.op=div", "measures.enabled=[loss_acc,division_subsets]", "schedule.steps=5"]
    assert run_cli(capsys, "run", *args, "--quiet", "--runs-dir", str(runs_dir))[0] == 0
    code, out, _ = run_cli(capsys, "show", "last", "--runs-dir", str(runs_dir))
    assert code == 0
    lines = out.splitlines()
    rows = lines[lines.index("final metrics:") + 1 : lines.index("config:")]
    named = [line.split() for line in rows]
    assert max(len(name) for name, _ in named) > 16
    starts = {line.index(value, len(name) + 2) for (name, value), line in zip(named, rows, strict=True)}
    assert len(starts) == 1, "metric values start in one column however long the names"
