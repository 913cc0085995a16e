"""Inputs that used to crash, hang or pass silently (issue #21): each is now a one-line error naming the field,
exit status 2, with nothing written; and a damaged checkpoint is named, leaves its run as it was, and the run
restarts from scratch on request."""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import groklab
from groklab.cli.main import main
from groklab.config import resolve_config
from groklab.schema import ScheduleConfig
from groklab.store import Store
from groklab.sweeps import planning
from groklab.sweeps.planning import ensemble_cap
from groklab.tasks import build_task
from groklab.tasks.modular import is_prime
from groklab.training import memory
from groklab.training.memory import BUILD_COPIES, data_bytes, estimate
from groklab.training.schedule import eval_steps
from helpers import TINY, InterruptAt

REPO = Path(__file__).resolve().parents[1]


def refused(argv: list[str], capsys: pytest.CaptureFixture[str], runs) -> str:
    assert main([*argv, "--runs-dir", str(runs)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("groklab: error: ") and err.count("\n") == 1
    assert not runs.exists()
    return err


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optim.lr=nan", "optim.lr: must be a finite number"),
        ("optim.weight_decay=inf", "optim.weight_decay: must be a finite number"),
        ("optim.lr=1e400", "optim.lr: must be a finite number"),
        ("model.init_scale=-inf", "model.init_scale: must be a finite number"),
        ("optim.grokfast.lamb=nan", "optim.grokfast.lamb: must be a finite number"),
        ("run.seed=1e30", "run.seed: '1e30' does not fit in 64 bits"),
        ("run.seed=9223372036854775808", "does not fit in 64 bits"),
        ("task.p=١٣", "task.p: expected an integer"),
        ("run.name=a\udcff", "run.name: 'a\\udcff' is not valid text"),
        ("measures.enabled=" + "[" * 30 + "a" + "]" * 30, "measures.enabled: nested more than 16 levels deep"),
        ("schedule.steps=1e15", "schedule.eval_max_gap: plans about 2e+12 evaluations"),
        ("schedule.eval_per_decade=1e9", "schedule.eval_per_decade: plans about"),
        ("model.n_layers=1e9", "model.n_layers: 1000000000 layers is more than groklab builds"),
        ("optim.momentum=-5", "optim.momentum: must be >= 0"),  # torch.optim's own ValueError, mid-setup
        ("task.split=square:²", "task.split: unknown split 'square:²'"),  # '²'.isdigit(), but int('²') fails
        ("run.device=cuda:²", "run.device: unknown device 'cuda:²'"),
    ],
)
def test_values_the_validators_let_through_are_refused(override, message, capsys, tmp_path):
    assert message in refused(["run", *TINY, override], capsys, tmp_path / "runs")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"- 1\n- 2\n", "must contain a mapping of sections, not list"),
        (b"5\n", "must contain a mapping of sections, not int"),
        (b"task: 5\n", "task: expected a mapping of keys"),
        (b"optim: [1]\n", "optim: expected a mapping of keys"),
        (b"extends: 5\n", "extends: must name a preset or YAML file, got 5"),
        (b"\xff\xfe\x00", "not UTF-8 text"),
        (b"a: &a [1, 2]\nb: [*a, *a]\n", "YAML aliases (*a) are not supported"),
        (b"task: " + b"[" * 60 + b"]" * 60 + b"\n", "nested more than 16 levels deep"),
    ],
)
def test_yaml_files_of_any_shape_are_one_line(content, message, capsys, tmp_path):
    path = tmp_path / "c.yaml"
    path.write_bytes(content)
    assert message in refused(["run", str(path)], capsys, tmp_path / "runs")


def test_an_endless_file_is_refused_without_reading_it_all(capsys, tmp_path):
    assert "larger than 1 MiB" in refused(["run", "/dev/zero", *TINY], capsys, tmp_path / "runs")


@settings(max_examples=300, deadline=None)
@given(st.integers(-10, 200_000))
def test_primality_agrees_with_trial_division(n):
    trial = n >= 2 and all(n % d for d in range(2, int(n**0.5) + 1))
    assert is_prime(n) == trial


def test_primality_of_a_19_digit_p_is_instant_and_the_task_is_refused_for_its_size(capsys, tmp_path):
    assert is_prime(2305843009213693951) and not is_prime(2305843009213693953)  # 2^61 - 1 is a Mersenne prime
    err = refused(["run", *TINY, "task.p=2305843009213693951"], capsys, tmp_path / "runs")
    assert "task: the run needs at least" in err and "examples" in err


@settings(max_examples=200, deadline=None)
@given(
    steps=st.integers(1, 300_000),
    every=st.integers(1, 60),
    dense=st.integers(0, 6_000),
    per_decade=st.integers(1, 300),
    gap=st.integers(1, 5_000),
)
def test_the_evaluation_bound_bounds_the_real_schedule(steps, every, dense, per_decade, gap):
    s = ScheduleConfig(steps=steps, eval_every=every, eval_dense_until=dense, eval_per_decade=per_decade, eval_max_gap=gap)
    assert len(eval_steps(s)) <= sum(s.evaluation_terms().values())


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        (["task.p=10007"], "schedule.batch_size: the run needs at least"),  # 30M examples in one full batch
        (["model.d_model=100000", "model.n_heads=1"], "model: the run needs at least"),
    ],
)
def test_a_run_that_cannot_fit_in_memory_is_refused_with_the_estimate(overrides, field, capsys, tmp_path):
    err = refused(
        ["run", *[o for o in TINY if not o.startswith(("task.p", "model.d_model", "model.n_heads"))], *overrides], capsys, tmp_path / "runs"
    )
    assert field in err and "GiB free" in err


MNIST_FILES = next(
    (
        p
        for p in (os.environ.get("GROKLAB_DATA"), REPO.parent / "shared" / "data" / "mnist")
        if p and Path(p, "train-images-idx3-ubyte.gz").exists()
    ),
    None,
)


@pytest.mark.parametrize(
    "overrides",
    [
        ["task.p=13"],
        ["task.p=13", "task.format=onehot", "model.name=deep_mlp"],
        ["task.name=parity", "model.name=deep_mlp"],
        ["task.name=s5"],
        ["task.name=polygons", "model.name=resnet18", "task.image_size=16", "task.max_sides=4"],
        pytest.param(
            ["task.name=mnist", "model.name=deep_mlp", "task.n_train=300"],
            marks=pytest.mark.skipif(MNIST_FILES is None, reason="the MNIST files are not here"),
        ),
    ],
)
def test_the_memory_check_counts_every_tasks_data_before_building_it(overrides, monkeypatch):
    """The estimate, made from the config alone, equals the tensors `build` then makes (times the build's two copies)."""
    if MNIST_FILES is not None:
        monkeypatch.setenv("GROKLAB_DATA", str(MNIST_FILES))
    cfg = resolve_config(None, overrides)
    task = build_task(cfg.task)
    built = task.build()
    assert data_bytes(task, task.spec) == BUILD_COPIES * sum(t.nbytes for t in (built.train_x, built.train_y, built.test_x, built.test_y))


def test_an_ensemble_that_cannot_fit_is_refused_before_the_sweep_is_stored(capsys, tmp_path, monkeypatch):
    """Each member fits alone, four of them stacked do not: --max-ensemble 4 is refused with the estimate, nothing
    is written; without the flag the automatic grouping stays within the memory and the sweep runs."""
    cfg = resolve_config(None, TINY)
    one = estimate(cfg, build_task(cfg.task), build_task(cfg.task).spec, torch.float32).total
    for module in (memory, planning):
        monkeypatch.setattr(module, "available_bytes", lambda device: int(2.5 * one))
    runs = tmp_path / "runs"
    argv = ["sweep", *TINY, "schedule.steps=20", "--seeds", "4", "--quiet", "--runs-dir", str(runs)]
    err = refused([*argv, "--max-ensemble", "4"], capsys, runs)
    assert err.startswith("groklab: error: --max-ensemble: an ensemble of 4 members needs at least") and "GiB free" in err
    assert ensemble_cap(cfg) == 1  # half of 2.5 members' memory: one member at a time
    assert main(argv) == 0
    store = Store(runs, create=False)
    assert store.sweep_plan(store.sweeps()[0].id) == [[0], [1], [2], [3]]


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        (["--seeds", "100000000"], "--seeds: the sweep has 100,000,000 runs"),
        (["--grid", "model.d_model=1:100000000"], "has 100,000,000 values; at most 10,000 per key"),
        (["--grid", "optim.lr=log:1e-4:1:100000000"], "has 100,000,000 values"),
        (["--grid", "optim.lr=log:1e-4:nan:3"], "needs finite START and STOP"),
        (["--grid", "model.d_model=1:²"], "malformed range '1:²'"),
        (
            ["--grid", "optim.lr=0.1,0.2", "--grid", "optim.weight_decay=log:1e-3:1:200", "--seeds", "30"],
            "at most 10,000 without --allow-large",
        ),
    ],
)
def test_sweeps_beyond_the_caps_are_refused_before_planning(grid, message, capsys, tmp_path):
    assert message in refused(["sweep", *TINY, *grid], capsys, tmp_path / "runs")


def _interrupted(tmp_path):
    overrides = [*TINY, "schedule.steps=100", "schedule.checkpoint_every=30"]
    run = groklab.run(None, overrides, runs_dir=tmp_path / "runs", reporter=InterruptAt(47))
    assert run.status == "interrupted"
    return run, overrides


def flip_a_tensor_byte(path: Path) -> None:
    """Change one byte in the middle of the largest tensor of a torch.save file."""
    blob = path.read_bytes()
    with zipfile.ZipFile(path) as archive:
        entry = max((e for e in archive.infolist() if "/data/" in e.filename), key=lambda e: e.file_size)
    head = entry.header_offset  # the local header's name and extra lengths (torch pads the extra to align data)
    name_len, extra_len = int.from_bytes(blob[head + 26 : head + 28], "little"), int.from_bytes(blob[head + 28 : head + 30], "little")
    at = head + 30 + name_len + extra_len + entry.file_size // 2
    path.write_bytes(blob[:at] + bytes([blob[at] ^ 0xFF]) + blob[at + 1 :])


@pytest.mark.parametrize("damage", ["truncated", "zeros", "not a zip", "a folder", "foreign", "one byte changed"])
def test_a_damaged_checkpoint_is_named_leaves_the_run_and_restarts_from_scratch(damage, tmp_path, capsys):
    run, overrides = _interrupted(tmp_path)
    ckpt = run.store.run_dir(run.id) / "checkpoint.pt"
    blob = ckpt.read_bytes()
    if damage == "truncated":
        ckpt.write_bytes(blob[: len(blob) // 2])
    elif damage == "zeros":
        ckpt.write_bytes(bytes(len(blob)))
    elif damage == "not a zip":
        ckpt.write_text("hello")
    elif damage == "a folder":
        ckpt.unlink()
        ckpt.mkdir()
    elif damage == "one byte changed":  # inside a tensor's data: torch.load alone takes it, silently wrong
        flip_a_tensor_byte(ckpt)
    else:  # another model's checkpoint: a wider transformer's
        other = groklab.run(None, [*overrides, "model.d_model=64"], runs_dir=tmp_path / "other", reporter=InterruptAt(47))
        shutil.copy(other.store.run_dir(other.id) / "checkpoint.pt", ckpt)
    rows = run.store.metric_rows(run.id)
    assert main(["resume", run.id, "--quiet", "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"checkpoint {ckpt}" in err and f"groklab resume {run.id} --from-scratch" in err
    assert Store(tmp_path / "runs").get(run.id).status == "interrupted"  # not claimed: nothing changed
    assert run.store.metric_rows(run.id) == rows
    if damage == "a folder":
        ckpt.rmdir()
    assert main(["resume", run.id, "--quiet", "--from-scratch", "--runs-dir", str(tmp_path / "runs")]) == 0
    whole = groklab.run(None, overrides, runs_dir=tmp_path / "whole")
    assert Store(tmp_path / "runs").metric_rows(run.id) == whole.store.metric_rows(whole.id)  # from step 0, bit for bit


def test_a_damaged_row_is_flagged_and_a_damaged_database_is_one_line(tmp_path, capsys):
    import sqlite3

    runs = tmp_path / "runs"
    good = groklab.run(None, TINY, runs_dir=runs)
    bad = groklab.run(None, TINY, runs_dir=runs)
    with sqlite3.connect(runs / "groklab.db") as conn:
        conn.execute("UPDATE runs SET config = '{garbled' WHERE id = ?", (bad.id,))
    capsys.readouterr()
    assert main(["runs", "--runs-dir", str(runs)]) == 0
    listed = {line.split()[0]: line.split()[2] for line in capsys.readouterr().out.splitlines()[1:]}
    assert listed == {good.id: "finished", bad.id: "damaged"}  # the other runs stay readable
    assert main(["resume", bad.id, "--runs-dir", str(runs)]) == 2
    assert "its config is damaged" in capsys.readouterr().err
    with sqlite3.connect(runs / "groklab.db") as conn:
        conn.execute("ALTER TABLE runs DROP COLUMN message")
    assert main(["runs", "--runs-dir", str(runs)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot be read: no such column: message" in err


def test_a_damaged_sweep_is_flagged_and_the_others_stay_readable(tmp_path, capsys):
    import sqlite3

    runs = tmp_path / "runs"
    bad = groklab.sweep(None, [*TINY, "schedule.steps=20"], seeds=2, runs_dir=runs)
    good = groklab.sweep(None, [*TINY, "schedule.steps=20"], seeds=2, runs_dir=runs)
    with sqlite3.connect(runs / "groklab.db") as conn:
        conn.execute("UPDATE sweeps SET points = '[{' WHERE id = ?", (bad.id,))
    capsys.readouterr()
    assert main(["sweeps", "--runs-dir", str(runs)]) == 0
    listed = {line.split()[0]: line.split()[3] for line in capsys.readouterr().out.splitlines()[1:]}
    assert listed == {bad.id: "damaged", good.id: "2"}  # one listing used to fail for every sweep
    assert main(["show", good.id, "--runs-dir", str(runs)]) == 0
    capsys.readouterr()
    assert main(["show", bad.id, "--runs-dir", str(runs)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"sweep {bad.id} in" in err and "is damaged (JSONDecodeError" in err


@pytest.mark.parametrize("kind", ["foreign", "empty"])
def test_a_database_that_is_not_groklabs_is_never_written(kind, tmp_path, capsys):
    """Another program's SQLite file, or an empty one, named groklab.db: every command refuses in one line and
    the file stays byte for byte as it was, not switched to WAL, no tables added (they used to be)."""
    import hashlib
    import sqlite3

    runs = tmp_path / "runs"
    runs.mkdir()
    db = runs / "groklab.db"
    if kind == "foreign":
        with sqlite3.connect(db) as conn:
            conn.execute("CREATE TABLE notes (text TEXT)")
    else:
        db.write_bytes(b"")
    digest = hashlib.sha256(db.read_bytes()).hexdigest()
    commands = [["runs"], ["sweeps"], ["show", "last"], ["export", "last"], ["resume", "last"], ["sweep", "--resume", "s1"]]
    if kind == "foreign":
        commands.append(["run", *TINY])  # an empty file is a new store to a command that creates one
    for argv in commands:
        assert main([*argv, "--runs-dir", str(runs)]) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and ("another program's" if kind == "foreign" else "groklab.db is empty") in err, err
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest and sorted(p.name for p in runs.iterdir()) == ["groklab.db"]


@pytest.mark.parametrize(("run_id", "name"), [("../../x", "config.yaml"), ("abcdef12", "../x"), ("abcdef12", ".hidden"), ("ABCDEF12", "a")])
def test_run_ids_and_file_names_cannot_leave_the_run_folder(run_id, name, tmp_path):
    from groklab.errors import GroklabError

    store = Store(tmp_path / "runs")
    with pytest.raises(GroklabError):
        store.write_file(run_id, name, "x")
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "groklab.db" and "-wal" not in p.name and "-shm" not in p.name]
    assert written == []  # nothing written, inside the runs directory or outside it


def test_two_resumes_at_the_same_instant_train_the_run_once(tmp_path):
    """Both pass the liveness check before either claims the run; the claim is one transaction, so one trains and
    the other is refused with one line (it used to crash with an IntegrityError)."""
    import subprocess
    import sys

    run, _ = _interrupted(tmp_path)
    argv = [sys.executable, "-m", "groklab", "resume", run.id, "--quiet", "--runs-dir", str(tmp_path / "runs")]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    refusal = next(err for code, err in results if code == 2)
    assert refusal.count("\n") == 1 and ("is being trained by process" in refusal or "nothing to resume" in refusal)
    store = Store(tmp_path / "runs")
    assert store.get(run.id).status == "finished" and store.get(run.id).step == 100
    steps = [s for s, n, _ in store.metric_rows(run.id) if n == "test_acc"]
    assert steps == sorted(set(steps))  # every evaluation once


def test_a_task_of_unknown_size_is_still_checked_for_its_model(monkeypatch, capsys, tmp_path):
    """MNIST and the polygons give no example count: the check then covers the parameters and activations."""
    from groklab.tasks.modular import ModularArithmetic

    monkeypatch.setattr(ModularArithmetic, "n_examples", lambda self: None)
    base = [o for o in TINY if not o.startswith(("model.d_model", "model.n_heads"))]
    err = refused(["run", *base, "model.d_model=100000", "model.n_heads=1"], capsys, tmp_path / "runs")
    assert "model: the run needs at least" in err and "data" not in err


def test_export_weights_checks_its_path_before_rebuilding_the_model(tmp_path, capsys):
    import torch

    runs = tmp_path / "runs"
    run = groklab.run(None, [*TINY, "schedule.snapshot_per_decade=1"], runs_dir=runs)
    out = tmp_path / "out"
    out.mkdir()
    for target, message in ((out / "missing" / "w.pt", "does not exist"), (out, "is a folder")):
        assert main(["export", run.id, "--weights", "60", "-o", str(target), "--runs-dir", str(runs)]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
    assert list(out.iterdir()) == []
    assert main(["export", run.id, "--weights", "60", "-o", str(out / "w.pt"), "--runs-dir", str(runs)]) == 0
    state = torch.load(out / "w.pt", weights_only=True)
    assert set(state) == set(run.model(60).state_dict()) and [p.name for p in out.iterdir()] == ["w.pt"]  # no temporary left


def test_every_figure_command_checks_its_output_before_the_work(tmp_path, capsys):
    """compare-measures, patterns and phase-diagram treat a missing folder, a folder given as the file and a
    path under a file as the other commands do: one line, exit 2, nothing written (they used to create the
    folders, or fail at the end of the work)."""
    runs = tmp_path / "runs"
    run = groklab.run(None, TINY, runs_dir=runs)
    out = tmp_path / "out"
    out.mkdir()
    (out / "f.txt").write_text("a file\n")
    (out / "d.png").mkdir()
    before = sorted(p.relative_to(runs) for p in runs.rglob("*") if "-wal" not in p.name and "-shm" not in p.name)
    cases = [
        (["compare-measures", run.id, "--runs-dir", str(runs), "-o"], "m.png"),
        (["patterns", "--steps", "100", "-o"], "p.png"),
    ]
    for argv, name in cases:
        for target, message in (
            (out / "missing" / name, "does not exist"),
            (out / "f.txt" / name, "not a folder"),
            (out / "d.png", "is a folder"),
        ):
            assert main([*argv, str(target)]) == 2
            err = capsys.readouterr().err
            assert message in err and err.count("\n") == 1, err
        assert main([*argv, str(out / name)]) == 0
    fresh = tmp_path / "fresh"
    argv = ["phase-diagram", "modular-addition", *TINY, "--x", "optim.lr=0.001,0.01", "--y", "optim.weight_decay=0.1,1", "--quiet"]
    err = refused([*argv, "--out", str(out / "f.txt" / "pd")], capsys, fresh)
    assert "--out" in err
    assert sorted(p.name for p in out.iterdir()) == ["d.png", "f.txt", "m.png", "p.png"]
    assert sorted(p.relative_to(runs) for p in runs.rglob("*") if "-wal" not in p.name and "-shm" not in p.name) == before
    sweep = groklab.sweep(None, [*TINY, "schedule.steps=20"], seeds=2, runs_dir=runs)
    assert main(["compare-measures", sweep.id, "--runs-dir", str(runs), "-o", str(out / "s.png")]) == 2
    assert "one figure per run" in capsys.readouterr().err


def test_a_changed_weight_snapshot_is_named_not_loaded(tmp_path, capsys):
    runs = tmp_path / "runs"
    run = groklab.run(None, [*TINY, "schedule.snapshot_per_decade=1"], runs_dir=runs)
    snapshot = run.store.run_dir(run.id) / "weights" / f"step_{60:09d}.pt"
    flip_a_tensor_byte(snapshot)
    assert main(["export", run.id, "--weights", "60", "-o", str(tmp_path / "w.pt"), "--runs-dir", str(runs)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"weight snapshot {snapshot}" in err and "does not match its checksum" in err
    assert not (tmp_path / "w.pt").exists()


def test_many_runs_writing_one_new_store_at_once_all_land(tmp_path):
    """Four `groklab run` processes start on one runs directory that does not exist yet: none fails with
    'database is locked', and every run is stored, finished, with all its evaluations."""
    import subprocess
    import sys

    runs = tmp_path / "runs"
    argv = [sys.executable, "-m", "groklab", "run", *TINY, "--quiet", "--runs-dir", str(runs)]
    procs = [subprocess.Popen([*argv, f"run.seed={k}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for k in range(4)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    assert [code for code, _ in results] == [0, 0, 0, 0], results
    store = Store(runs)
    assert sorted(r.config["run"]["seed"] for r in store.runs()) == [0, 1, 2, 3]
    for rec in store.runs():
        assert rec.status == "finished" and store.metrics(rec.id, ["test_acc"])["test_acc"][0] == [0, 10, 20, 30, 40, 50, 60]


def test_a_failed_write_leaves_what_was_there(tmp_path):
    """A disk that fills mid-write (simulated with a file-size limit) and /dev/full: one line, exit 2, the old
    file unchanged, no temporary left, and a device never replaced or removed (pyarrow removes the path it
    failed to write: a Parquet export to /dev/full, run as root, used to delete the device node)."""
    import resource
    import signal
    import stat
    import subprocess
    import sys

    runs = tmp_path / "runs"
    run = groklab.run(None, [*TINY, "schedule.steps=400", "schedule.eval_every=1"], runs_dir=runs)
    out = tmp_path / "out"
    out.mkdir()
    old = out / "m.csv"
    old.write_text("the previous export\n")

    def small_files() -> None:  # writes past 64 KiB fail with EFBIG, as on a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    argv = [sys.executable, "-m", "groklab", "export", run.id, "--format", "csv", "--runs-dir", str(runs)]
    done = subprocess.run([*argv, "-o", str(old)], preexec_fn=small_files, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"groklab: error: cannot write {old}") and done.stderr.count("\n") == 1
    assert old.read_text() == "the previous export\n" and [p.name for p in out.iterdir()] == ["m.csv"]
    assert subprocess.run([*argv, "-o", str(old)], capture_output=True, timeout=120).returncode == 0  # without the limit it fits
    assert old.stat().st_size > 64 * 1024
    full = Path("/dev/full")
    if not (full.exists() and stat.S_ISCHR(full.stat().st_mode)):
        pytest.skip("no /dev/full here")
    for fmt in ("csv", "parquet"):
        assert main(["export", run.id, "--format", fmt, "-o", str(full), "--runs-dir", str(runs)]) == 2
        assert stat.S_ISCHR(full.stat().st_mode), "the device was replaced or removed"


def test_a_run_whose_disk_fills_fails_in_one_line_and_resumes(tmp_path):
    """The first checkpoint does not fit (a 1 MiB file-size limit stands in for a full disk): one line, the run
    stored as failed with no temporary file left, and `groklab resume` then ends where an uninterrupted run does."""
    import resource
    import signal
    import subprocess
    import sys

    def small_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))

    wide = [*(o for o in TINY if not o.startswith(("model.d_model", "model.d_mlp"))), "model.d_model=128", "model.d_mlp=512"]
    runs = tmp_path / "runs"
    argv = [sys.executable, "-m", "groklab", "run", *wide, "--quiet", "--runs-dir", str(runs)]
    done = subprocess.run(argv, preexec_fn=small_files, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "checkpoint.pt: cannot write it" in done.stderr and "is the disk full?" in done.stderr
    store = Store(runs, create=False)
    (rec,) = store.runs()
    assert rec.status == "failed" and not list(store.run_dir(rec.id).glob(".*tmp"))
    assert main(["resume", rec.id, "--quiet", "--runs-dir", str(runs)]) == 0
    whole = groklab.run(None, wide, runs_dir=tmp_path / "whole")
    assert store.metric_rows(rec.id) == whole.store.metric_rows(whole.id)
