"""The input contract, fuzzed: whatever a user types (overrides, YAML files, grid specs, run ids, output
paths), groklab answers with success or one line `groklab: error: ...` and exit status 2; never another
exception, and a rejected command leaves the store as it was. GROKLAB_FUZZ_EXAMPLES raises the number of
examples per property (scripts/fuzz_cli.sh runs a long session)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
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
    code = main(argv)
    err = capsys.readouterr().err
    assert code in (0, 2), (argv, code, err)
    if code == 2:
        assert err.startswith("groklab: error: ") and err.count("\n") == 1, (argv, err)
    return code


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


@FUZZ
@given(command=commands, ref=refs, output=st.sampled_from(OUTPUTS))
def test_run_ids_and_output_paths_never_crash_and_a_refusal_changes_nothing(command, ref, output, store_dir, tmp_path_factory, capsys):
    out = tmp_path_factory.mktemp("out")
    (out / "f.csv").write_text("a file\n")
    before = snapshot(store_dir)
    argv = [command, ref, "--runs-dir", str(store_dir)]
    if command in ("export", "report", "plot", "compare-measures"):
        argv += ["-o", str(out / output.format(out=out))]
    if contract(argv, capsys) == 2:
        assert snapshot(store_dir) == before
        assert sorted(p.name for p in out.iterdir()) == ["f.csv"]  # nothing half-written
