"""The run store: round-trips, run references, and a reader during a write."""

from __future__ import annotations

import math
import sqlite3
import threading

import pytest

from groklab.errors import GroklabError
from groklab.store import Store


def make(store: Store, name: str = "") -> str:
    return store.create_run({"task": {"p": 5}}, name, "test", "0", "cpu")


def test_round_trip(tmp_path):
    with Store(tmp_path) as s:
        rid = make(s, "first")
        s.log_metrics(rid, 0, {"a": 1.0, "b": 2.0})
        s.log_metrics(rid, 10, {"a": 0.5, "b": float("nan")})
        s.set_events(rid, {"t_fit": (10, 0.99), "t_grok": (None, 0.99)})
        s.set_status(rid, "finished", 10, "done")
    with Store(tmp_path, create=False) as s:
        rec = s.get(rid)
        assert (rec.name, rec.status, rec.step, rec.message, rec.config) == ("first", "finished", 10, "done", {"task": {"p": 5}})
        m = s.metrics(rid)
        assert m["a"] == ([0, 10], [1.0, 0.5])
        assert m["b"][0] == [0, 10] and math.isnan(m["b"][1][1])
        assert s.events(rid) == {"t_fit": (10, 0.99), "t_grok": (None, 0.99)}


def test_duplicate_metric_rows_are_refused(tmp_path):
    with Store(tmp_path) as s:
        rid = make(s)
        s.log_metrics(rid, 0, {"a": 1.0})
        with pytest.raises(sqlite3.IntegrityError):
            s.log_metrics(rid, 0, {"a": 1.0})
        assert s.metrics(rid)["a"] == ([0], [1.0])  # the failed evaluation left nothing half-written


def test_truncate_for_resume(tmp_path):
    with Store(tmp_path) as s:
        rid = make(s)
        for step in (0, 10, 20, 30):
            s.log_metrics(rid, step, {"a": float(step)})
        assert s.truncate_metrics(rid, 20) == 2
        assert s.metrics(rid)["a"] == ([0, 10], [0.0, 10.0])


def test_run_references(tmp_path):
    with Store(tmp_path) as s:
        a, b = make(s, "alpha"), make(s, "beta")
        assert s.get(a).id == a
        assert s.get(a[:5]).id == a if not b.startswith(a[:5]) else True
        assert s.get("beta").id == b
        assert s.get("last").id == b
        with pytest.raises(GroklabError, match="no such run"):
            s.get("zzzz-none")


def test_ambiguous_prefix(tmp_path):
    with Store(tmp_path) as s:
        ids = [make(s) for _ in range(40)]  # 40 random hex ids: some share a first character
        first = {}
        for i in ids:
            first.setdefault(i[0], []).append(i)
        prefix = next(k for k, v in first.items() if len(v) > 1)
        with pytest.raises(GroklabError, match="ambiguous"):
            s.get(prefix)


def test_missing_store_is_an_error(tmp_path):
    with pytest.raises(GroklabError, match="holds no runs"):
        Store(tmp_path / "nothing", create=False)
    assert not (tmp_path / "nothing").exists()


def test_unwritable_runs_dir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(GroklabError, match="not writable"):
        Store(blocker / "runs")


def test_reader_during_a_write(tmp_path):
    """WAL mode: a reader sees committed evaluations while the writer holds an open transaction."""
    writer = Store(tmp_path)
    rid = make(writer)
    writer.log_metrics(rid, 0, {"a": 0.0})
    writer.conn.execute("BEGIN IMMEDIATE")
    writer.conn.execute("INSERT INTO metrics VALUES (?, 10, 'a', 1.0)", (rid,))
    reader = Store(tmp_path, create=False)
    assert reader.metrics(rid)["a"] == ([0], [0.0])  # not blocked, and no uncommitted row
    writer.conn.execute("COMMIT")
    assert reader.metrics(rid)["a"] == ([0, 10], [0.0, 1.0])

    errors: list[Exception] = []

    def write() -> None:
        try:
            with Store(tmp_path) as w:
                for step in range(20, 420, 10):
                    w.log_metrics(rid, step, {"a": float(step), "b": 1.0})
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    t = threading.Thread(target=write)
    t.start()
    seen = 0
    while t.is_alive() or seen < 42:
        seen = len(reader.metrics(rid).get("a", ([], []))[0])
        if not t.is_alive():
            break
    t.join()
    assert not errors
    assert len(reader.metrics(rid)["a"][0]) == 42
