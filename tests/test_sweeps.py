"""Sweeps: grid parsing, planning, the local executor, resume, and bad input through the CLI."""

from __future__ import annotations

import itertools
import json
import math
import os
import signal
import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from groklab.cli.main import main
from groklab.errors import ConfigError
from groklab.store import Store, is_live
from groklab.sweeps import SweepSpec, parse_values, run_sweep, spec_from_cli, spec_from_yaml
from groklab.sweeps.planning import plan_batches
from helpers import TINY, InterruptAt


def test_list_values_are_parsed_by_the_field_type():
    spec = spec_from_cli(None, ["task.p=13"], ["optim.weight_decay=0.1,0.3,1", "run.name=a,b"], 1)
    cfgs = spec.configs()
    assert [c.optim.weight_decay for c in cfgs] == [0.1, 0.1, 0.3, 0.3, 1.0, 1.0]
    assert [c.run.name for c in cfgs[:2]] == ["a", "b"]


@settings(max_examples=50, deadline=None)
@given(start=st.integers(-50, 50), n=st.integers(0, 40), step=st.integers(1, 7))
def test_integer_ranges_are_inclusive(start, n, step):
    stop = start + n * step
    assert parse_values("k", f"{start}:{stop}:{step}") == list(range(start, stop + 1, step))
    assert parse_values("k", f"{start}:{stop}") == list(range(start, stop + 1))


@settings(max_examples=50, deadline=None)
@given(lo=st.integers(-6, 2), span=st.integers(1, 4), count=st.integers(2, 12))
def test_log_ranges_are_inclusive_and_geometric(lo, span, count):
    start, stop = 10.0**lo, 10.0 ** (lo + span)
    values = parse_values("k", f"log:{start:g}:{stop:g}:{count}")
    assert len(values) == count
    assert values[0] == pytest.approx(start) and values[-1] == pytest.approx(stop)
    ratios = [b / a for a, b in itertools.pairwise(values)]
    assert all(r == pytest.approx(ratios[0], rel=1e-4) for r in ratios)


def test_paper_style_ranges():
    assert parse_values("model.d_model", "1:149:2")[:3] == [1, 3, 5] and parse_values("model.d_model", "1:149:2")[-1] == 149
    assert parse_values("w", "log:1e-4:1:5") == [1e-4, 1e-3, 1e-2, 1e-1, 1.0]


@pytest.mark.parametrize("text", ["1:x", "5:1:1", "1:10:0", "log:1:2", "log:0:1:3", "log:a:b:c", "0.1,,3", "", "1.5:3"])
def test_malformed_values(text):
    with pytest.raises(ConfigError, match="--grid k"):
        parse_values("k", text)


def test_points_are_grid_times_seeds():
    spec = SweepSpec(grid={"a.x": [1, 2], "b.y": [3]}, seeds=3)
    pts = spec.points()
    assert len(pts) == 6
    assert pts[0] == {"a.x": 1, "b.y": 3, "run.seed": 0} and pts[-1] == {"a.x": 2, "b.y": 3, "run.seed": 2}


def test_yaml_sweep_file(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(
        "preset: gu2025\nname: wd\noverrides: {task.p: 13, schedule.steps: 10}\ngrid:\n  optim.weight_decay: [0.1, 1.0]\n"
        "  model.d_model: '32:64:32'\nseeds: 2\n"
    )
    spec = spec_from_yaml(path)
    cfgs = spec.configs()
    assert len(cfgs) == 2 * 2 * 2
    assert {(c.optim.weight_decay, c.model.d_model, c.run.seed) for c in cfgs} == {
        (w, d, s) for w in (0.1, 1.0) for d in (32, 64) for s in (0, 1)
    }
    assert all(c.task.p == 13 and c.preset == "gu2025" for c in cfgs)


def cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_sweep_end_to_end(capsys, tmp_path):
    runs = str(tmp_path / "runs")
    code, out, err = cli(capsys, "sweep", *TINY, "--grid", "optim.weight_decay=0.1,1", "--seeds", "2", "--quiet", "--runs-dir", runs)
    assert code == 0, err
    sweep_id = out.strip()
    code, out, _ = cli(capsys, "show", sweep_id, "--json", "--runs-dir", runs)
    info = json.loads(out)
    assert [(p["optim.weight_decay"], p["run.seed"], p["status"]) for p in info["points"]] == [
        (0.1, 0, "finished"),
        (0.1, 1, "finished"),
        (1.0, 0, "finished"),
        (1.0, 1, "finished"),
    ]
    assert len({p["run"] for p in info["points"]}) == 4
    code, out, _ = cli(capsys, "sweeps", "--json", "--runs-dir", runs)
    assert json.loads(out)[0]["status"] == {"finished": 4}
    # each point is an ordinary run too
    code, out, _ = cli(capsys, "runs", "--json", "--runs-dir", runs)
    assert len(json.loads(out)) == 4


def test_sweep_resume_after_interrupt_runs_nothing_twice(tmp_path):
    store = Store(tmp_path)
    spec = spec_from_cli(None, [*TINY, "schedule.steps=60"], ["optim.weight_decay=0.5,1"], 2)
    sweep_id = store.create_sweep("", spec.as_dict(), spec.plan())

    starts = [0]
    counts = run_sweep(store, sweep_id, reporter=lambda points, label: InterruptAt(33, nth=2, starts=starts), max_ensemble=1)
    assert counts == {"finished": 1, "interrupted": 1, "pending": 2}
    first_run = store.sweep_runs(sweep_id)[0]
    first_rows = store.metric_rows(first_run)
    counts = run_sweep(store, sweep_id, max_ensemble=1)
    assert counts == {"finished": 4}
    linked = store.sweep_runs(sweep_id)
    assert linked[0] == first_run and store.metric_rows(first_run) == first_rows  # kept, not rerun
    with sqlite3.connect(tmp_path / "groklab.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 4
    # the interrupted point resumed to the same rows as a point trained in one go
    alone = Store(tmp_path / "alone")
    solo = alone.create_sweep("", spec.as_dict(), spec.plan())
    run_sweep(alone, solo, max_ensemble=1)
    assert alone.metric_rows(alone.sweep_runs(solo)[1]) == store.metric_rows(linked[1])
    assert all(math.isfinite(v) for _, _, v in store.metric_rows(linked[1]))


BAD = [
    (["--grid", "optim.nope=1,2"], "optim.nope"),
    (["--grid", "model.d_model=1:x"], "--grid model.d_model"),
    (["--grid", "optim.lr=log:1:2"], "--grid optim.lr"),
    ([], "--grid"),
    (["--grid", "model.d_model=a,b"], "model.d_model"),
    (["--grid", "optim.lr=0.1", "--seeds", "0"], "--seeds"),
    (["--grid", "optim.lr=-1,1"], "optim.lr"),
    (["--grid", "optim.lr"], "--grid"),
]


@pytest.mark.parametrize("args,field", BAD)
def test_bad_sweep_input(capsys, tmp_path, args, field):
    runs = tmp_path / "runs"
    code, _, err = cli(capsys, "sweep", *TINY, *args, "--runs-dir", str(runs))
    assert code == 2
    assert err.count("\n") == 1 and err.startswith(f"groklab: error: {field}"), err
    assert not runs.exists()


def test_unknown_sweep_id(capsys, tmp_path):
    runs = str(tmp_path / "runs")
    assert cli(capsys, "sweep", *TINY, "--seeds", "2", "--quiet", "--runs-dir", runs)[0] == 0
    code, _, err = cli(capsys, "sweep", "--resume", "snothere", "--runs-dir", runs)
    assert code == 2 and "no such sweep" in err and err.count("\n") == 1


def test_sweep_resume_after_sigkill(tmp_path):
    import subprocess
    import sys
    import time

    runs = tmp_path / "runs"
    args = [
        *TINY,
        "schedule.steps=500",
        "schedule.checkpoint_every=100",
        "--grid",
        "optim.weight_decay=0.5,1",
        "--seeds",
        "2",
        "--quiet",
        "--max-ensemble",
        "1",
    ]
    proc = subprocess.Popen([sys.executable, "-m", "groklab", "sweep", *args, "--runs-dir", str(runs)], stdout=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:  # wait until the second point has a checkpoint or two
            try:
                with sqlite3.connect(runs / "groklab.db") as conn:
                    rows = conn.execute("SELECT r.step FROM sweep_runs s JOIN runs r ON r.id = s.run_id WHERE s.point = 1").fetchall()
            except sqlite3.Error:
                rows = []
            if rows and rows[0][0] >= 250:
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the sweep did not reach its second point in time")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    store = Store(runs, create=False)
    (sweep,) = store.sweeps()
    assert store.get(store.sweep_runs(sweep.id)[1]).status == "running"  # killed: never marked
    # Asked to group differently than it started, the resume refuses; asked nothing, it keeps --max-ensemble 1, so the
    # points not started yet train alone, not as the ensemble the default would make of them.
    assert main(["sweep", "--resume", sweep.id[:4], "--quiet", "--max-ensemble", "2", "--runs-dir", str(runs)]) == 2
    assert store.get(store.sweep_runs(sweep.id)[1]).status == "running" and len(store.sweep_runs(sweep.id)) == 2
    assert main(["sweep", "--resume", sweep.id[:4], "--quiet", "--runs-dir", str(runs)]) == 0
    linked = store.sweep_runs(sweep.id)
    assert len(linked) == 4 and all(store.get(r).status == "finished" for r in linked.values())
    with sqlite3.connect(runs / "groklab.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 4
    alone = Store(tmp_path / "alone")
    spec = spec_from_cli(None, [*TINY, "schedule.steps=500", "schedule.checkpoint_every=100"], ["optim.weight_decay=0.5,1"], 2)
    solo = alone.create_sweep("", spec.as_dict(), spec.plan())
    run_sweep(alone, solo, max_ensemble=1)
    for point in range(4):  # bit-identical to the uninterrupted sweep, whatever was running when the kill came
        assert alone.metric_rows(alone.sweep_runs(solo)[point]) == store.metric_rows(linked[point])


def test_workers_train_every_point_once(capsys, tmp_path):
    runs = str(tmp_path / "runs")
    args = [*TINY, "--grid", "optim.weight_decay=0.1,1", "--seeds", "2", "--quiet"]
    assert main(["sweep", *args, "--workers", "2", "--max-ensemble", "2", "--runs-dir", runs]) == 0
    sweep_id = capsys.readouterr().out.strip()
    assert main(["sweep", *args, "--max-ensemble", "1", "--runs-dir", str(tmp_path / "seq")]) == 0
    seq_id = capsys.readouterr().out.strip()
    par, seq = Store(runs, create=False), Store(tmp_path / "seq", create=False)
    assert sorted(par.sweep_runs(sweep_id)) == [0, 1, 2, 3]
    with sqlite3.connect(tmp_path / "runs" / "groklab.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM runs WHERE status = 'finished'").fetchone()[0] == 4
    for point in range(4):  # one thread per worker vs two in-process: equal up to float reassociation
        a = par.metrics(par.sweep_runs(sweep_id)[point], ["train_loss"])["train_loss"]
        b = seq.metrics(seq.sweep_runs(seq_id)[point], ["train_loss"])["train_loss"]
        assert a[0] == b[0] and a[1] == pytest.approx(b[1], rel=1e-3, abs=1e-5)


def test_bad_workers(capsys, tmp_path):
    code, _, err = cli(capsys, "sweep", *TINY, "--seeds", "2", "--workers", "0", "--runs-dir", str(tmp_path / "r"))
    assert code == 2 and err.startswith("groklab: error: --workers")
    assert not (tmp_path / "r").exists()


def test_compatible_points_train_as_one_ensemble_and_resume_as_it(tmp_path):
    store = Store(tmp_path)
    spec = spec_from_cli(None, [*TINY, "schedule.steps=60"], ["optim.weight_decay=0.5,1", "model.d_mlp=32,64"], 2)
    sweep_id = store.create_sweep("", spec.as_dict(), spec.plan())
    sweep = store.get_sweep(sweep_id)
    # without padding (test_width_padding covers it), the widths train apart
    assert plan_batches(store, sweep, list(range(8)), None, pad_widths=False) == [[0, 1, 4, 5], [2, 3, 6, 7]]  # by d_mlp
    assert plan_batches(store, sweep, list(range(8)), 3, pad_widths=False) == [[0, 1, 4], [2, 3, 6], [5], [7]]

    counts = run_sweep(store, sweep_id, reporter=lambda points, label: InterruptAt(33), pad_widths=False)
    assert counts == {"interrupted": 4, "pending": 4}  # the first ensemble stopped together
    assert store.sweep_plan(sweep_id) == [[0, 1, 4, 5], [2, 3, 6, 7]]  # planned once, stored
    # the resume keeps the stored grouping, whatever it is asked now, and resumes the stopped ensemble as one
    assert run_sweep(store, sweep_id, max_ensemble=3) == {"finished": 8}
    with sqlite3.connect(tmp_path / "groklab.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 8
    whole = Store(tmp_path / "whole")
    ref = whole.create_sweep("", spec.as_dict(), spec.plan())
    run_sweep(whole, ref, pad_widths=False)
    for point in range(8):  # bit for bit the uninterrupted sweep's
        assert store.metric_rows(store.sweep_runs(sweep_id)[point]) == whole.metric_rows(whole.sweep_runs(ref)[point])


def test_ensemble_cap_on_cpu():
    from groklab.config import resolve_config
    from groklab.sweeps.planning import ensemble_cap

    assert ensemble_cap(resolve_config("gu2025", ["run.device=cpu"])) == 1  # ~3 GFLOP a step: lone runs are as fast
    assert 1 < ensemble_cap(resolve_config(None, TINY)) <= 32


def test_padded_widths_too_big_to_gain_train_alone_and_do_not_cap_the_rest(tmp_path):
    """On a CPU a d_model=1024 member (~2 GFLOP a step) trains alone; the narrow ones still share one padded ensemble."""
    store = Store(tmp_path)
    spec = spec_from_cli(None, TINY, ["model.d_model=8,16,1024"], 2)
    sweep = store.get_sweep(store.create_sweep("", spec.as_dict(), spec.plan()))
    assert plan_batches(store, sweep, list(range(6)), None) == [[0, 1, 2, 3], [4], [5]]
    assert plan_batches(store, sweep, list(range(6)), 6) == [[0, 1, 2, 3, 4, 5]]  # an explicit cap is obeyed as given


def test_on_a_cpu_a_padded_ensemble_spans_widths_of_similar_cost(tmp_path):
    """d_model 288 costs ~1.25x 256 a step and shares its ensemble; 512 (~3.8x) would make them pay its arithmetic."""
    store = Store(tmp_path)
    spec = spec_from_cli(None, TINY, ["model.d_model=256,288,512"], 2)
    sweep = store.get_sweep(store.create_sweep("", spec.as_dict(), spec.plan()))
    assert plan_batches(store, sweep, list(range(6)), None) == [[0, 1, 2, 3], [4, 5]]


def test_a_run_seed_override_moves_the_seeds_instead_of_being_overwritten():
    spec = spec_from_cli(None, ["run.seed=5", *TINY], ["optim.weight_decay=0.1,1"], 2)
    assert [c.run.seed for c in spec.configs()] == [5, 6, 5, 6]
    with pytest.raises(ConfigError, match=r"--grid run\.seed"):
        spec_from_cli(None, TINY, ["run.seed=0,1"], 1).configs()
    with pytest.raises(ConfigError, match=r"run\.seed: must be an integer"):
        spec_from_cli(None, ["run.seed=x"], ["optim.weight_decay=0.1,1"], 1).configs()


def test_workers_die_with_a_killed_driver_stopping_their_runs_cleanly(tmp_path):
    """SIGKILL the driver of a --workers 2 sweep: its workers get SIGTERM from the kernel and end within seconds,
    stopping their runs as on Ctrl-C (a checkpoint, `interrupted`), where they used to train on beside a resume."""
    import subprocess
    import sys
    import time

    runs = tmp_path / "runs"
    args = [*TINY, "schedule.steps=50000", "schedule.checkpoint_every=100", "--grid", "optim.weight_decay=0.5,1", "--seeds", "2"]
    extra = ["--workers", "2", "--max-ensemble", "1", "--quiet"]  # four lone points, two at a time, each a minute long
    proc = subprocess.Popen([sys.executable, "-m", "groklab", "sweep", *args, *extra, "--runs-dir", str(runs)])
    pids: list[int] = []

    def alive(pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().split()[2] != "Z"  # a zombie has ended
        except FileNotFoundError:
            return False

    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                with sqlite3.connect(runs / "groklab.db") as conn:
                    rows = conn.execute("SELECT pid, step FROM runs WHERE status = 'running'").fetchall()
            except sqlite3.Error:
                rows = []
            if len(rows) == 2 and all(step >= 150 for _, step in rows):
                pids = [pid for pid, _ in rows]
                break
            time.sleep(0.05)
        assert len(pids) == 2, "the workers did not start in time"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        deadline = time.time() + 10
        while any(alive(p) for p in pids) and time.time() < deadline:
            time.sleep(0.1)
        assert not any(alive(p) for p in pids), "a worker outlived its killed driver"
    finally:
        proc.kill()
        for pid in pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
    store = Store(runs, create=False)
    records = [store.get(r) for r in store.sweep_runs(store.sweeps()[0].id).values()]
    assert len(records) == 2 and not any(is_live(r) for r in records)  # no writer left: `sweep --resume` may take them
    assert [r.status for r in records] == ["interrupted", "interrupted"]  # stopped as on Ctrl-C: a checkpoint, then the status


def test_two_sweep_resumes_at_once_train_every_point_once(tmp_path):
    """Two drivers resume one sweep at the same instant: each point is started by one of them (the other skips
    it), where one used to crash with an IntegrityError; the results equal a single driver's."""
    import subprocess
    import sys

    runs = tmp_path / "runs"
    spec = spec_from_cli(None, [*TINY, "schedule.steps=100"], ["optim.weight_decay=0.3,1"], 2)
    store = Store(runs)
    sweep_id = store.create_sweep("", spec.as_dict(), spec.plan())  # planned, nothing trained yet
    argv = [sys.executable, "-m", "groklab", "sweep", "--resume", sweep_id, "--max-ensemble", "1", "--quiet", "--runs-dir", str(runs)]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    assert [code for code, _ in results] == [0, 0], results
    linked = store.sweep_runs(sweep_id)
    assert sorted(linked) == list(range(4)) and all(store.get(r).status == "finished" for r in linked.values())
    with sqlite3.connect(runs / "groklab.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 4  # no point trained twice
    alone = Store(tmp_path / "alone")
    solo = alone.create_sweep("", spec.as_dict(), spec.plan())
    run_sweep(alone, solo, max_ensemble=1)
    for point in range(4):
        assert alone.metric_rows(alone.sweep_runs(solo)[point]) == store.metric_rows(linked[point])
