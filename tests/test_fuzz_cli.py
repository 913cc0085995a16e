"""The input contract, fuzzed: whatever a user types (overrides, YAML files, grid specs, run ids, output
paths), groklab answers with success or one line `groklab: error: ...` and exit status 2; never another
exception, and a rejected command leaves the store as it was. GROKLAB_FUZZ_EXAMPLES raises the number of
examples per property (scripts/fuzz_cli.sh runs a long session)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from groklab.cli.main import main
from groklab.config import resolve_config, to_dict
from groklab.config.presets import flatten
from groklab.errors import GroklabError
from groklab.store import Store
from groklab.sweeps import spec_from_cli
from groklab.training.lone import LoneBackend
from groklab.training.setup import prepare
from helpers import TINY

EXAMPLES = int(os.environ.get("GROKLAB_FUZZ_EXAMPLES", "40"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

KEYS = sorted(flatten(to_dict(resolve_config(None, []))))
NASTY = [
    "nan", "inf", "-inf", "1e400", "-1e400", "1e30", "2**63", "9223372036854775808", "-9223372036854775809", "0", "-1",
    "²", "١٢", "٣", "1_000", "0x10", "true", "null", "~", "", " ", "[]", "{}", "[1, [2, [3]]]", "{a: 1}", "*a", "&a 1",
    "[" * 40 + "]" * 40, "\x00", "é", "1e-400", "3.0", "97", "10007", "2305843009213693951", "square:²", "strip:1e9",
    "log:1e-4:nan:3", "1:²", "a,b", "x" * 300,
]  # fmt: skip
values = st.one_of(st.sampled_from(NASTY), st.text(max_size=20), st.integers().map(str), st.floats().map(repr))
keys = st.one_of(st.sampled_from(KEYS), st.sampled_from(["task", "model.", ".x", "a..b", "optim.lr.x", "nope.key", "run"]))


def contract(argv: list[str], capsys: pytest.CaptureFixture[str]) -> int:
    """Run the CLI in-process: only 0 or 2, and an error is one line."""
    return contract_output(argv, capsys)[0]


def contract_output(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """contract(), returning the exit status and what the command printed."""
    code = main(argv)
    out, err = capsys.readouterr()
    assert code in (0, 2), (argv, code, err)
    if code == 2:
        assert err.startswith("groklab: error: ") and err.count("\n") == 1, (argv, err)
    return code, out


@FUZZ
@given(overrides=st.lists(st.tuples(keys, values), min_size=1, max_size=4))
def test_overrides_get_a_config_or_one_line(overrides, capsys):
    contract(["config", *(f"{k}={v}" for k, v in overrides)], capsys)


# Values that resolve to small configs, so that building each one stays cheap: what `run` builds before it writes.
SETUP_VALUES = [
    "nan", "inf", "-1", "-5", "0", "-0.0", "1e-400", "1e-9", "0.5", "2", "3", "1e30", "²", "٣", "square:²", "strip:٣",
    "square:3", "strip:2", "cuda:²", "cuda:0", "true", "null", "", "[]", "{}", "[1, 2]", "x", "é", "[loss_acc]",
]  # fmt: skip


@FUZZ
@given(optimizer=st.sampled_from(["adamw", "adam", "sgd"]), key=st.sampled_from(KEYS), value=st.sampled_from(SETUP_VALUES))
def test_configs_that_resolve_build_their_run_or_refuse_in_one_error(optimizer, key, value):
    """Past the config: the data, model, measures and optimizer of a run (`prepare`, then the trainer) build, or
    raise groklab's own error; never torch's (SGD with momentum -5 reached torch.optim's ValueError)."""
    try:
        cfg = resolve_config(None, [*TINY, f"optim.name={optimizer}", f"{key}={value}"])
    except GroklabError:
        return
    try:
        LoneBackend(prepare(cfg))
    except GroklabError:
        pass


@FUZZ
@given(
    doc=st.one_of(
        st.binary(max_size=200),
        st.builds(lambda k, v: f"{k.split('.')[0]}:\n  {k.partition('.')[2] or 'x'}: {v}\n".encode(errors="surrogatepass"), keys, values),
        st.sampled_from([b"- 1\n- 2\n", b"5\n", b"extends: 5\n", b"task: [1]\n", b"a: &x [1]\nb: *x\n", b"\xff\xfe", b"optim: 3\n"]),
    )
)
def test_yaml_files_of_any_shape_get_a_config_or_one_line(doc, tmp_path_factory, capsys):
    path = tmp_path_factory.mktemp("yaml") / "c.yaml"
    path.write_bytes(doc)
    contract(["config", str(path)], capsys)


grid_values = st.one_of(
    values,
    st.builds(lambda a, b, c: f"{a}:{b}:{c}", values, values, values),
    st.builds(lambda a, b, c: f"log:{a}:{b}:{c}", values, values, values),
    st.lists(values, min_size=1, max_size=3).map(",".join),
)


@FUZZ
@given(key=keys, text=grid_values, seeds=st.integers(-2, 300))
def test_grid_specs_plan_or_raise_one_error(key, text, seeds):
    try:
        spec = spec_from_cli(None, TINY, [f"{key}={text}"], seeds)
        points = spec.plan()
    except GroklabError:
        return
    assert 1 <= len(points) <= 10_000


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fuzzstore") / "runs"
    assert main(["run", *TINY, "--quiet", "--runs-dir", str(root)]) == 0
    return root


def snapshot(root: Path) -> tuple:
    store = Store(root, create=False)
    state = ([(r.id, r.status, r.step) for r in store.runs()], [s.id for s in store.sweeps()])
    store.close()
    return state, sorted(str(p.relative_to(root)) for p in root.rglob("*") if "-wal" not in p.name and "-shm" not in p.name)


refs = st.one_of(st.sampled_from(["last", "s", "", "-", "../x", "a" * 80, "0", "%", "é"]), st.text(max_size=12))
commands = st.sampled_from(["show", "export", "report", "plot", "resume", "compare-measures"])


OUTPUTS = ["missing/x", "{out}", "{out}/f.csv/x", "x.txt", "é.html", "y.csv", "missing/m.png", "{out}/f.csv/m.png"]
SPECIAL = ["/proc/x.csv", "/proc/m.png", "/sys/x.html", "/dev/full", "", " "]  # no temporary file can be made there, or no path


@FUZZ
@given(command=commands, ref=refs, output=st.sampled_from(OUTPUTS + SPECIAL))
def test_run_ids_and_output_paths_never_crash_and_a_refusal_changes_nothing(command, ref, output, store_dir, tmp_path_factory, capsys):
    out = tmp_path_factory.mktemp("out")
    (out / "f.csv").write_text("a file\n")
    before = snapshot(store_dir)
    argv = [command, ref, "--runs-dir", str(store_dir)]
    if command in ("export", "report", "plot", "compare-measures"):
        argv += ["-o", output if output in SPECIAL else str(out / output.format(out=out))]
    if contract(argv, capsys) == 2:
        assert snapshot(store_dir) == before
        assert sorted(p.name for p in out.iterdir()) == ["f.csv"]  # nothing half-written


# ----- sweep files of any shape ----------------------------------------------------------------------------

SHAPES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from([2**63 - 1, 2**64, 1.5, float("nan")]), st.text(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=6,
)  # any YAML value: scalars, lists, mappings, nested
SWEEP_FIELDS = {
    "preset": st.one_of(st.sampled_from(["", "modular-addition", "nope", "../x.yaml"]), SHAPES),
    "overrides": st.one_of(st.just(TINY), st.just({"task.p": 13, "model.d_model": 8}), SHAPES),
    "grid": st.one_of(
        st.dictionaries(st.sampled_from(["optim.lr", "model.d_model", "run.seed", "nope.x", "task"]), SHAPES, max_size=2),
        st.just({"optim.weight_decay": [0.1, 1.0]}),
        st.just({"optim.weight_decay": "0.1,1"}),
        SHAPES,
    ),
    "seeds": st.one_of(st.integers(-1, 3), SHAPES),
    "name": SHAPES,
}


@FUZZ
@given(doc=st.fixed_dictionaries({}, optional={**SWEEP_FIELDS, "other": SHAPES}))
def test_sweep_files_of_any_shape_plan_or_refuse_in_one_error(doc, tmp_path_factory, capsys):
    """A sweep file whose fields have any shape (a grid that is a list, overrides that are a number: tracebacks
    once) plans its points or is refused in one line. The CLI is pointed at a runs directory that is a file, so a
    sweep that plans is refused only when it would make its store, and nothing trains."""
    import yaml

    from groklab.sweeps import spec_from_yaml

    path = tmp_path_factory.mktemp("sweepfile") / "s.yaml"
    path.write_text(yaml.safe_dump({**doc, "grid": doc.get("grid", {"optim.lr": [1e-3]})}, allow_unicode=True))
    not_a_folder = path.parent / "runs"
    not_a_folder.write_text("a file\n")
    assert contract(["sweep", str(path), "--runs-dir", str(not_a_folder)], capsys) == 2
    assert not_a_folder.read_text() == "a file\n"
    try:
        points = spec_from_yaml(path).plan()
    except GroklabError:
        return
    assert 1 <= len(points) <= 10_000


# ----- a store whose rows or files were edited ---------------------------------------------------------------

TABLES = {
    "runs": (
        ("id",),
        ["id", "name", "preset", "status", "created", "finished", "step", "config", "version", "device", "host", "pid", "message"],
    ),
    "metrics": (("run_id", "name", "step"), ["run_id", "step", "name", "value"]),
    "events": (("run_id", "name"), ["run_id", "name", "step", "value"]),
    "sweeps": (("id",), ["id", "name", "spec", "points", "created"]),
    "sweep_runs": (("sweep_id", "point"), ["sweep_id", "point", "run_id"]),
    "sweep_batches": (("sweep_id", "point"), ["sweep_id", "point", "batch", "member"]),
}
STORED = [
    "abc", "", "1.5", "-1", "{}", "[]", "null", "[{", "running", "interrupted", "finished", "\x00", "é", "nan",
    b"\x00\xff", None, 0, -1, 1, 2**63 - 1, -(2**63), 1.5, -1e308, 1e308,
]  # fmt: skip
FILES = ["config.yaml", "preset.yaml", "checkpoint.pt", "weights"]
CONTENTS = [
    b"", b"- 1\n- 2\n", b"7\n", b"just text\n", b"!!python/object/apply:os.system ['true']\n", b"a: &x 1\nb: *x\n",
    b"\xff\xfe\x00", b"task: [1]\n", b"{" * 50, b"PK\x03\x04 not a zip",
]  # fmt: skip
EDIT_COMMANDS = [
    ["runs"], ["runs", "--json"], ["sweeps"], ["sweeps", "--json"], ["show", "{run}"], ["show", "{run}", "--json"], ["show", "{sweep}"],
    ["export", "{run}", "-o", "{out}/m.csv"], ["export", "{run}", "--format", "parquet", "-o", "{out}/m.parquet"],
    ["plot", "{run}", "-o", "{out}/f.png"], ["report", "{run}", "-o", "{out}/r.html"], ["report", "{sweep}", "-o", "{out}/s.html"],
    ["compare-measures", "{run}", "-o", "{out}/c.png"], ["resume", "{run}", "--quiet"], ["plot", "{sweep}", "-o", "{out}/g.png"],
]  # fmt: skip
READ_ONLY = {"runs", "sweeps", "show", "export", "plot", "report", "compare-measures"}


@pytest.fixture(scope="module")
def edited_store_source(tmp_path_factory) -> Path:
    """A store of a two-run sweep (every table has rows), with weight snapshots, to copy and damage."""
    root = tmp_path_factory.mktemp("edits") / "runs"
    argv = ["sweep", *TINY, "schedule.steps=20", "schedule.snapshot_per_decade=1", "--seeds", "2", "--quiet", "--runs-dir", str(root)]
    assert main(argv) == 0
    return root


def table_rows(root: Path) -> dict[str, list[tuple]]:
    import sqlite3

    with contextlib.closing(sqlite3.connect(root / "groklab.db")) as conn:
        return {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in TABLES}


@FUZZ
@given(
    edit=st.one_of(
        st.tuples(st.just("set"), st.sampled_from(sorted(TABLES)), st.integers(0, 12), st.integers(0, 10_000), st.sampled_from(STORED)),
        st.tuples(st.just("delete"), st.sampled_from(sorted(TABLES)), st.just(0), st.integers(0, 10_000), st.none()),
        st.tuples(st.just("file"), st.sampled_from(FILES), st.integers(0, 1), st.integers(0, len(CONTENTS) - 1), st.none()),
    ),
    command=st.sampled_from(EDIT_COMMANDS),
)
def test_an_edited_store_names_the_damage_and_the_rest_stays_readable(edit, command, edited_store_source, tmp_path_factory, capsys):
    """Any one row of any table set to a value of another kind (text in a step, a blob in a metric), deleted, or a
    run's file replaced: every command answers or refuses in one line; `runs` and `sweeps` list every row, the
    edited run as damaged where it is, the others as they were; a read-only command changes nothing."""
    import sqlite3

    root = tmp_path_factory.mktemp("edited") / "runs"
    shutil.copytree(edited_store_source, root)
    out = root.parent / "out"
    out.mkdir()
    kind, where, which, index, value = edit
    run_ids = sorted(r for (r,) in sqlite3.connect(root / "groklab.db").execute("SELECT id FROM runs"))
    if kind == "file":
        target = root / "runs" / run_ids[which] / where
        if where == "weights":
            target = sorted(target.glob("step_*.pt"))[0]
        target.unlink()
        target.write_bytes(CONTENTS[index])
    else:
        keys, columns = TABLES[where]
        with contextlib.closing(sqlite3.connect(root / "groklab.db")) as conn:
            rows = conn.execute(f"SELECT {', '.join(keys)} FROM {where}").fetchall()
            row = rows[index % len(rows)]
            match = " AND ".join(f"{k} = ?" for k in keys)
            try:
                with conn:
                    if kind == "set":
                        conn.execute(f"UPDATE {where} SET {columns[which % len(columns)]} = ? WHERE {match}", (value, *row))
                    else:
                        conn.execute(f"DELETE FROM {where} WHERE {match}", row)
            except sqlite3.IntegrityError:
                reject()  # NOT NULL or a duplicate key: SQLite itself refuses this edit
    before = table_rows(root)
    sweep = before["sweeps"][0][0] if before["sweeps"] else "s0000000"
    argv = [a.format(run=run_ids[0], sweep=sweep, out=out) for a in command]
    code, printed = contract_output([*argv, "--runs-dir", str(root)], capsys)
    if command[0] in READ_ONLY:
        assert table_rows(root) == before
    if command[0] in ("runs", "sweeps"):
        assert code == 0  # a listing names the damage beside the readable rows; it never fails whole
    if command == ["runs", "--json"]:
        listed = {r["id"]: r["status"] for r in json.loads(printed)}
        assert len(listed) == len(before["runs"])
        edited = {"runs": row[0], "metrics": row[0], "events": row[0]}.get(where) if kind != "file" else run_ids[which]
        assert all(listed[r] == "finished" for r in run_ids if r != edited), listed  # the others as they were
    if command == ["sweeps", "--json"]:
        assert len(json.loads(printed)) == len(before["sweeps"])


# ----- integer extremes, trained ---------------------------------------------------------------------------

MLP_MEASURES = "measures.enabled=[loss_acc,feature_rank,probe]"
BASES = {
    "transformer": [*TINY, "measures.enabled=[loss_acc,weight_norm,med,fourier,uniformity]"],
    "mlp": ["model.name=mlp", "model.d_model=8", "model.d_mlp=24", "task.p=13", "task.train_frac=0.5", MLP_MEASURES],
    "parity": ["merrill2023-parity", "task.n=8", "task.n_train=40", "task.n_test=20", "model.width=16", "schedule.batch_size=8"],
    "s5": ["power2022-s5", "task.train_frac=0.05", "model.d_model=16", "model.n_heads=2", "model.d_mlp=32", "schedule.batch_size=64"],
}


def int_keys(argv: list[str]) -> list[str]:
    """The integer keys of a base's config but schedule.steps, which is how long a run is: a huge one is a long run."""
    cfg = resolve_config(None if "=" in argv[0] else argv[0], [a for a in argv if "=" in a])
    return sorted(k for k, v in flatten(to_dict(cfg)).items() if type(v) is int and k != "schedule.steps")


INT_KEYS = {base: int_keys(argv) for base, argv in BASES.items()}
EXTREMES = [2**63 - 1, -(2**63), 2**32, 2**32 - 1, 2**31, 10**9, 10**6, -1, 0]
LIMIT_S = 300  # a hang, not a slow run: a 10^6-wide embedding trains its two steps in ~20 s on 2 busy cores


class RanTooLong(BaseException):
    """Raised by the alarm: a BaseException, so that no handler of groklab's (an OSError's, say) takes it for its own."""


@FUZZ
@given(data=st.data())
def test_integer_extremes_train_or_are_refused_before_anything_is_written(data, tmp_path_factory, capsys):
    """Every integer key at the extremes its type allows (2^63 - 1 fits the schema; a generator, a buffer or a
    loop may not take it), trained two steps with an evaluation after each: the run finishes, or is refused in
    one line before its row or folder exists (a seed overflowed the minibatch generator after the run was
    written; a Grokfast window of 1e9 held a gradient more every step), within LIMIT_S."""
    import signal

    base = data.draw(st.sampled_from(sorted(BASES)))
    key, value = data.draw(st.sampled_from(INT_KEYS[base])), data.draw(st.sampled_from(EXTREMES))
    runs = tmp_path_factory.mktemp("extremes") / "runs"
    argv = ["run", *BASES[base], "schedule.steps=2", "schedule.eval_every=1", "run.device=cpu", f"{key}={value}"]

    def too_long(*_: object) -> None:
        raise RanTooLong(f"{argv} ran past {LIMIT_S} s")

    previous = signal.signal(signal.SIGALRM, too_long)
    signal.alarm(LIMIT_S)
    try:
        code = contract([*argv, "--quiet", "--runs-dir", str(runs)], capsys)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    if code == 2:
        assert not runs.exists(), argv  # refused before the store was made
