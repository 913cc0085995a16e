"""The run store: one SQLite database (WAL mode) under a runs directory, plus a folder per run.

Tables: runs (one row per run, with its resolved config), metrics in long
format (run, step, name, value), and grokking events. Metrics are committed
at every evaluation, so a killed run loses at most one evaluation interval,
and WAL lets readers (`groklab show`, plots) read while a trainer writes.
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import socket
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from groklab.config.loading import MAX_FILE_BYTES, short_repr
from groklab.errors import GroklabError
from groklab.store.checkpoints import (
    load_checkpoint,
    load_weights,
    remove_temporaries,
    save_checkpoint,
    save_weights_bytes,
    serialize,
    weight_steps,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    preset TEXT NOT NULL,
    status TEXT NOT NULL,
    created REAL NOT NULL,
    finished REAL,
    step INTEGER NOT NULL DEFAULT 0,
    config TEXT NOT NULL,
    version TEXT NOT NULL,
    device TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    message TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL REFERENCES runs(id),
    step INTEGER NOT NULL,
    name TEXT NOT NULL,
    value REAL,
    PRIMARY KEY (run_id, name, step)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sweeps (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    spec TEXT NOT NULL,
    points TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sweep_runs (
    sweep_id TEXT NOT NULL REFERENCES sweeps(id),
    point INTEGER NOT NULL,
    run_id TEXT NOT NULL UNIQUE REFERENCES runs(id),
    PRIMARY KEY (sweep_id, point)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sweep_batches (
    sweep_id TEXT NOT NULL REFERENCES sweeps(id),
    point INTEGER NOT NULL,
    batch INTEGER NOT NULL,
    member INTEGER NOT NULL,
    PRIMARY KEY (sweep_id, point)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    run_id TEXT NOT NULL REFERENCES runs(id),
    name TEXT NOT NULL,
    step INTEGER,
    value REAL,
    PRIMARY KEY (run_id, name)
) WITHOUT ROWID;
"""

STATUSES = ("running", "finished", "stopped", "diverged", "interrupted", "failed")
COMPLETED = ("finished", "stopped")  # trained to their end (or their early stop): their curves are whole
ENDED = (*COMPLETED, "diverged")  # nothing is left to train or resume
DAMAGED = "damaged"  # not stored: what a run whose row cannot be read is listed as


@dataclass(frozen=True)
class RunRecord:
    id: str
    name: str
    preset: str
    status: str
    created: float
    finished: float | None
    step: int
    config: dict[str, Any]
    version: str
    device: str
    host: str
    pid: int
    message: str

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class SweepPoint:
    """One planned point of a sweep: its grid values (dotted key -> value) and its resolved config."""

    values: dict[str, Any]
    config: dict[str, Any]

    @property
    def label(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.values.items())


@dataclass(frozen=True)
class SweepRecord:
    """A stored sweep: its spec as given and its planned points (runs link to them as they start)."""

    id: str
    name: str
    spec: dict[str, Any]
    points: list[SweepPoint]
    created: float


@dataclass(frozen=True)
class DamagedSweep:
    """A sweep whose stored row cannot be read: listed as damaged, the others stay readable."""

    id: str
    name: str
    created: float
    why: str


def is_live(rec: RunRecord) -> bool:
    """Is this `running` run being trained right now by another process on this host?"""
    if rec.status != "running" or rec.host != socket.gethostname() or rec.pid <= 0 or rec.pid == os.getpid():
        return False  # os.kill(0 or -1, ...) would address a whole process group
    try:
        os.kill(rec.pid, 0)
    except (ProcessLookupError, OverflowError):  # no such process; a pid past what the OS has (an edited row)
        return False
    except PermissionError:
        return True
    return not _zombie(rec.pid)


def _zombie(pid: int) -> bool:
    """Has `pid` ended without being reaped? An orphaned worker stays a zombie where PID 1 does not reap (a
    container's shell), and signal 0 still reaches it."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] == "Z"  # the state follows the command name's ')'
    except (OSError, IndexError):
        return False


def default_runs_dir() -> Path:
    """--runs-dir, else $GROKLAB_HOME, else ./groklab-runs."""
    return Path(os.environ.get("GROKLAB_HOME") or "groklab-runs")


RUN_ID = re.compile(r"[0-9a-f]{8}")  # secrets.token_hex(4)
FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")  # a file in a run's folder: no separators, no '..', not hidden


def _file_name(name: str) -> str:
    if not isinstance(name, str) or not FILE_NAME.fullmatch(name) or ".." in name:
        raise GroklabError(f"{name!r} is not a file name a run's folder holds")
    return name


class DamagedError(GroklabError):
    """A run whose stored rows cannot be read as groklab wrote them: named in one line; listings show the run as
    damaged beside the others."""

    def __init__(self, run_id: str, message: str) -> None:
        self.run_id = run_id
        super().__init__(message)


class TakenError(GroklabError):
    """Another process started this sweep point or is training this run: leave it to that process."""


BUSY_SECONDS = 30.0  # how long a writer waits for another


def _while_locked(call: Callable[[], Any]) -> Any:
    """`call`, retried with back-off while another process holds the database: switching a new database to WAL
    and creating its tables take locks that SQLite's busy timeout does not wait for."""
    deadline, pause = time.monotonic() + BUSY_SECONDS, 0.005
    while True:
        try:
            return call()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.25)


class Store:
    """Access to one runs directory. Cheap to open; safe to use from several processes."""

    def __init__(self, root: str | Path | None = None, create: bool = True) -> None:
        self.root = Path(root) if root is not None else default_runs_dir()
        self.db_path = self.root / "groklab.db"
        if not self.db_path.exists():
            if not create:
                raise GroklabError(f"runs directory {str(self.root)!r} holds no runs (no groklab.db)")
            self._make_root()
        try:
            self.conn = sqlite3.connect(self.db_path, timeout=BUSY_SECONDS, isolation_level=None)
            self._check_ours(create)
            _while_locked(lambda: self.conn.execute("PRAGMA journal_mode=WAL"))
            self.conn.execute("PRAGMA synchronous=NORMAL")
            _while_locked(lambda: self.conn.executescript(SCHEMA))
        except sqlite3.Error as exc:
            raise GroklabError(f"runs directory {str(self.root)!r}: cannot open the run database ({exc})") from None

    def _check_ours(self, create: bool) -> None:
        """Touch only groklab's own database: one without a runs table is another program's (refused), or an empty
        file (groklab's tables are made in it only by a command that creates a store). Nothing is written first."""
        tables = {n for (n,) in _while_locked(lambda: self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall())}
        if "runs" in tables or (create and not tables):
            return
        self.conn.close()
        if tables:
            listed = ", ".join(sorted(tables)[:5])
            why = f"groklab.db is another program's (its tables: {listed})"
            raise GroklabError(f"runs directory {str(self.root)!r}: {why}; use another folder")
        raise GroklabError(f"runs directory {str(self.root)!r} holds no runs (groklab.db is empty)")

    def _make_root(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".write-test-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise GroklabError(
                f"runs directory {str(self.root)!r} is not writable ({exc.strerror or exc}); pass --runs-dir or set GROKLAB_HOME"
            ) from None

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----- runs --------------------------------------------------------------------------------
    def run_dir(self, run_id: str) -> Path:
        """The run's folder. The id is checked, since it becomes a path (a Ray task's store calls arrive as data)."""
        if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id):
            raise GroklabError(f"run id {run_id!r} is not a run id (8 hex digits)")
        return self.root / "runs" / run_id

    def write_file(self, run_id: str, name: str, text: str) -> None:
        """A small text file beside the run's checkpoints (its resolved config.yaml)."""
        (self.run_dir(run_id) / _file_name(name)).write_text(text)

    def read_file(self, run_id: str, name: str) -> str | None:
        """A file write_file wrote, or None if the run has none of that name; one that is not the small UTF-8
        text groklab wrote is a DamagedError naming it."""
        path = self.run_dir(run_id) / _file_name(name)
        if not path.is_file():
            return None
        try:
            with path.open("rb") as f:
                raw = f.read(MAX_FILE_BYTES + 1)
            if len(raw) > MAX_FILE_BYTES:
                raise ValueError(f"larger than {MAX_FILE_BYTES >> 20} MiB")
            return raw.decode("utf-8")
        except (OSError, ValueError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text" if isinstance(exc, UnicodeError) else exc
            raise DamagedError(run_id, f"run {run_id}: {path} is damaged ({why})") from None

    def save_weights(self, run_id: str, state: dict[str, Any], step: int) -> None:
        """A snapshot of the model's weights at `step` (schedule.snapshot_per_decade)."""
        save_weights_bytes(self.run_dir(run_id), serialize(state), step)

    def weight_steps(self, run_id: str) -> list[int]:
        return weight_steps(self.run_dir(run_id))

    def load_weights(self, run_id: str, step: int, map_location: str | torch.device = "cpu") -> dict[str, Any] | None:
        return load_weights(self.run_dir(run_id), step, map_location)

    def save_checkpoint(self, run_id: str, state: dict[str, Any], step: int, keep: bool = False, previous: bool = False) -> None:
        save_checkpoint(self.run_dir(run_id), state, step, keep, previous)

    def load_checkpoint(self, run_id: str, map_location: str | torch.device = "cpu", previous: bool = False) -> dict[str, Any] | None:
        return load_checkpoint(self.run_dir(run_id), map_location, previous)

    def create_run(
        self, config: dict[str, Any], name: str, preset: str, version: str, device: str, sweep: tuple[str, int] | None = None
    ) -> str:
        """A new run row (and, for a sweep's point, its link to the sweep in the same transaction)."""
        run_id = secrets.token_hex(4)
        while self.conn.execute("SELECT 1 FROM runs WHERE id=?", (run_id,)).fetchone():
            run_id = secrets.token_hex(4)
        row = (
            run_id,
            name or run_id,
            preset,
            "running",
            time.time(),
            json.dumps(config),
            version,
            device,
            socket.gethostname(),
            os.getpid(),
        )
        try:
            with self.conn:
                self.conn.execute("BEGIN")
                self.conn.execute(
                    "INSERT INTO runs (id, name, preset, status, created, config, version, device, host, pid) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    row,
                )
                if sweep is not None:
                    self.conn.execute("INSERT INTO sweep_runs (sweep_id, point, run_id) VALUES (?,?,?)", (*sweep, run_id))
        except sqlite3.IntegrityError:
            if sweep is None:
                raise
            raise TakenError(f"point {sweep[1] + 1} of sweep {sweep[0]} was started by another process") from None
        self.run_dir(run_id).mkdir(parents=True, exist_ok=True)
        return run_id

    def claim(self, run_id: str, device: str) -> None:
        """Mark a run as running in this process (resume). Check and claim are one write transaction, so of two
        processes resuming one run at the same instant one trains it and the other is refused."""
        _while_locked(lambda: self.conn.execute("BEGIN IMMEDIATE"))
        try:
            row = self.conn.execute(f"SELECT {self._COLS} FROM runs WHERE id=?", (run_id,)).fetchone()
            if row is None:
                raise GroklabError(f"run {run_id}: no such run in {str(self.root)!r}")
            rec = self._record(row)
            if is_live(rec):
                raise TakenError(f"run {run_id} is being trained by process {rec.pid} on {rec.host}; nothing to resume")
            if rec.status in (*ENDED, DAMAGED):
                raise TakenError(f"run {run_id} is {rec.status}; nothing to resume")
            self.conn.execute(
                "UPDATE runs SET status='running', finished=NULL, message='', device=?, host=?, pid=? WHERE id=?",
                (device, socket.gethostname(), os.getpid(), run_id),
            )
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")
        remove_temporaries(self.run_dir(run_id))  # ours now: what a killed writer left half-written goes

    def set_status(self, run_id: str, status: str, step: int, message: str = "") -> None:
        assert status in STATUSES, status
        finished = None if status == "running" else time.time()
        self.conn.execute("UPDATE runs SET status=?, step=?, finished=?, message=? WHERE id=?", (status, step, finished, message, run_id))

    def _record(self, row: tuple) -> RunRecord:
        """A run's row as a record; a row whose values are not of their columns' kinds (SQLite stores whatever it
        is given) is a record with status `damaged` and what is wrong, so the other runs stay readable."""
        (id_, name, preset, status, created, finished, step, config, version, device, host, pid, message) = row
        texts = {"id": id_, "name": name, "preset": preset, "status": status, "config": config, "version": version}
        texts |= {"device": device, "host": host, "message": message}
        problem = next((f"its {col} is {_kind(v)}, not text" for col, v in texts.items() if not _is_text(v)), None)
        if problem is None and not RUN_ID.fullmatch(id_):
            problem = f"its id {short_repr(id_)} is not a run id (8 hex digits)"
        if problem is None and status not in STATUSES:
            problem = f"its status {short_repr(status)} is not one of {', '.join(STATUSES)}"
        times = {"created": created, "finished": finished}
        bad_time = next((c for c, v in times.items() if not _is_time(v, c == "finished")), None)
        problem = problem or (bad_time and f"its {bad_time} is {_kind(times[bad_time])}, not a time")
        if problem is None and not _is_count(step):
            problem = f"its step is {_kind(step)}, not a whole number >= 0"
        if problem is None and not (isinstance(pid, int) and not isinstance(pid, bool)):
            problem = f"its pid is {_kind(pid)}, not a process id"
        cfg: Any = {}
        if problem is None:
            try:
                cfg = json.loads(config)
                if not isinstance(cfg, dict):
                    raise ValueError(f"a {type(cfg).__name__}, not a mapping")
            except (TypeError, ValueError) as exc:
                problem = f"its config is damaged ({exc})"
        if problem is None:
            return RunRecord(id_, name, preset, status, created, finished, step, cfg, version, device, host, pid, message)
        why = f"its row in {self.db_path} is damaged: {problem}; the run cannot be shown in full or resumed"
        return RunRecord(
            _as_text(id_), _as_text(name), _as_text(preset), DAMAGED, created if _is_time(created) else 0.0,
            finished if _is_time(finished, True) else None, step if _is_count(step) else 0, {},
            _as_text(version), _as_text(device), _as_text(host), pid if isinstance(pid, int) else 0, why,
        )  # fmt: skip

    _COLS = "id, name, preset, status, created, finished, step, config, version, device, host, pid, message"

    def runs(self) -> list[RunRecord]:
        rows = self.conn.execute(f"SELECT {self._COLS} FROM runs ORDER BY created").fetchall()
        return [self._record(r) for r in rows]

    def get(self, ref: str) -> RunRecord:
        """A run by id, unique id prefix, exact name, or `last` (the newest)."""
        if ref == "last":
            row = self.conn.execute(f"SELECT {self._COLS} FROM runs ORDER BY created DESC LIMIT 1").fetchone()
            if row is None:
                raise GroklabError(f"run 'last': no runs in {str(self.root)!r}")
            return self._record(row)
        rows = self.conn.execute(f"SELECT {self._COLS} FROM runs WHERE id=?", (ref,)).fetchall()
        if not rows:
            pattern = ref.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            rows = self.conn.execute(f"SELECT {self._COLS} FROM runs WHERE id LIKE ? ESCAPE '\\'", (pattern,)).fetchall()
        if not rows:
            rows = self.conn.execute(f"SELECT {self._COLS} FROM runs WHERE name=?", (ref,)).fetchall()
        if not rows:
            raise GroklabError(f"run {ref!r}: no such run id or name in {str(self.root)!r}; see `groklab runs`")
        if len(rows) > 1:
            ids = ", ".join(r[0] for r in rows[:5])
            raise GroklabError(f"run {ref!r} is ambiguous: it matches {len(rows)} runs ({ids}); give more of the id")
        return self._record(rows[0])

    # ----- metrics -----------------------------------------------------------------------------
    def log_metrics(self, run_id: str, step: int, values: dict[str, float]) -> None:
        """Append one evaluation's values and commit (a crash loses at most this evaluation)."""
        with self.conn:
            self.conn.execute("BEGIN")
            self.conn.executemany(
                "INSERT INTO metrics (run_id, step, name, value) VALUES (?,?,?,?)",
                [(run_id, step, k, _finite_or_none(v)) for k, v in values.items()],
            )
            self.conn.execute("UPDATE runs SET step=? WHERE id=?", (step, run_id))

    def set_metric_points(self, run_id: str, name: str, points: dict[int, float]) -> None:
        """Write metric `name` at the given steps, replacing what it had there, after training (an estimate
        made on the run's snapshots): the run's own step is left as it is."""
        with self.conn:
            self.conn.execute("BEGIN")
            self.conn.executemany("DELETE FROM metrics WHERE run_id=? AND name=? AND step=?", [(run_id, name, s) for s in points])
            self.conn.executemany(
                "INSERT INTO metrics (run_id, step, name, value) VALUES (?,?,?,?)",
                [(run_id, s, name, _finite_or_none(v)) for s, v in points.items()],
            )

    def truncate_metrics(self, run_id: str, from_step: int) -> int:
        """Delete metric rows at or after `from_step` (a resumed run recomputes them). Returns the count."""
        cur = self.conn.execute("DELETE FROM metrics WHERE run_id=? AND step>=?", (run_id, from_step))
        return cur.rowcount

    def metrics(self, run_id: str, names: Iterable[str] | None = None) -> dict[str, tuple[list[int], list[float]]]:
        """name -> (steps, values), steps ascending. NaN/inf values come back as nan."""
        q = "SELECT name, step, value FROM metrics WHERE run_id=?"
        args: list[Any] = [run_id]
        if names is not None:
            names = list(names)
            q += f" AND name IN ({','.join('?' * len(names))})"
            args += names
        out: dict[str, tuple[list[int], list[float]]] = {}
        for name, step, value in self.conn.execute(q + " ORDER BY name, step", args):
            self._check_point(run_id, "metric", name, step, value)
            steps, values = out.setdefault(name, ([], []))
            steps.append(step)
            values.append(float("nan") if value is None else value)
        return out

    def metric_rows(self, run_id: str) -> list[tuple[int, str, float]]:
        rows = self.conn.execute("SELECT step, name, value FROM metrics WHERE run_id=? ORDER BY step, name", (run_id,)).fetchall()
        for s, n, v in rows:
            self._check_point(run_id, "metric", n, s, v)
        return [(s, n, float("nan") if v is None else v) for s, n, v in rows]

    def check_rows(self, run_id: str) -> None:
        """Every metric and event row of the run is as groklab wrote it, else DamagedError naming the first that is
        not (SQL's typeof over the run's rows: a listing checks each run without reading its curves)."""
        for table, event in (("metrics", False), ("events", True)):
            step_ok = "typeof(step) = 'integer'" + (" OR step IS NULL" if event else " AND step >= 0")
            row = self.conn.execute(
                f"SELECT name, step, value FROM {table} WHERE run_id=? AND NOT (typeof(name) = 'text' AND ({step_ok}) "
                "AND typeof(value) IN ('real', 'integer', 'null')) LIMIT 1",
                (run_id,),
            ).fetchone()
            if row is not None:
                self._check_point(run_id, table.removesuffix("s"), *row, step_null=event, signed=event)

    def _check_point(self, run_id: str, what: str, name: Any, step: Any, value: Any, step_null: bool = False, signed: bool = False) -> None:
        """A metric or event row as groklab writes it (a name, a step >= 0, a number or null), else DamagedError.
        `signed`: the step may be negative (the event `delay`, t_grok - t_fit, is when the test set is passed first)."""
        if not _is_text(name):
            problem = f"a {what} named {_kind(name)}"
        elif not (_is_count(step) or (signed and _is_int(step)) or (step_null and step is None)):
            problem = f"{what} {name!r} at step {_kind(step)}"
        elif not (value is None or _is_number(value)):
            problem = f"{what} {name!r} at step {step} holds {_kind(value)}, not a number"
        else:
            return
        raise DamagedError(run_id, f"run {run_id} in {self.db_path} is damaged: its {what}s are ({problem})")

    # ----- sweeps ------------------------------------------------------------------------------
    def create_sweep(self, name: str, spec: dict[str, Any], points: list[dict[str, Any]]) -> str:
        """A sweep row: its spec and its planned points (runs are linked as they start). Ids start with 's'."""
        sweep_id = "s" + secrets.token_hex(4)[:7]
        while self.conn.execute("SELECT 1 FROM sweeps WHERE id=?", (sweep_id,)).fetchone():
            sweep_id = "s" + secrets.token_hex(4)[:7]
        self.conn.execute(
            "INSERT INTO sweeps (id, name, spec, points, created) VALUES (?,?,?,?,?)",
            (sweep_id, name or sweep_id, json.dumps(spec), json.dumps(points), time.time()),
        )
        return sweep_id

    def sweeps(self) -> list[SweepRecord]:
        """Every sweep whose row can be read (`damaged_sweeps` lists the others)."""
        return [rec for rec in self._sweep_rows() if isinstance(rec, SweepRecord)]

    def sweep_ids(self) -> list[str]:
        """Every sweep's id, damaged or not."""
        return [i for (i,) in self.conn.execute("SELECT id FROM sweeps ORDER BY created")]

    def damaged_sweeps(self) -> list[DamagedSweep]:
        """The sweeps whose rows cannot be read, each with what is wrong with it."""
        return [rec for rec in self._sweep_rows() if isinstance(rec, DamagedSweep)]

    def _sweep_rows(self) -> list[SweepRecord | DamagedSweep]:
        rows = self.conn.execute("SELECT id, name, spec, points, created FROM sweeps ORDER BY created").fetchall()
        out: list[SweepRecord | DamagedSweep] = []
        for i, n, spec, points, c in rows:
            try:
                record = SweepRecord(i, n, *_sweep_parts(i, n, spec, points, c), c)
                self._check_links(i, len(record.points))
                out.append(record)
            except (TypeError, ValueError, KeyError) as exc:
                out.append(DamagedSweep(_as_text(i), _as_text(n), c if _is_time(c) else 0.0, f"{type(exc).__name__}: {exc}"))
        return out

    def _check_links(self, sweep_id: str, n_points: int) -> None:
        """A sweep's run links and plan name its points and existing runs (else ValueError: the sweep is damaged)."""
        links = self._links(sweep_id)
        query = "SELECT id FROM runs WHERE id IN (SELECT run_id FROM sweep_runs WHERE sweep_id=?)"
        stored = {run_id for (run_id,) in self.conn.execute(query, (sweep_id,))}
        for point, run_id in links.items():
            if point >= n_points:
                raise ValueError(f"it links point {point + 1} of {n_points}")
            if run_id not in stored:
                raise ValueError(f"its point {point + 1} links run {_kind(run_id)}, which is not in the store")
        for point, batch in self._batches(sweep_id):
            if point >= n_points:
                raise ValueError(f"its plan puts point {point + 1} of {n_points} in batch {batch}")

    def _links(self, sweep_id: str) -> dict[int, str]:
        """point -> run id, each link as groklab wrote it (else ValueError saying what is wrong)."""
        rows = self.conn.execute("SELECT point, run_id FROM sweep_runs WHERE sweep_id=?", (sweep_id,)).fetchall()
        for point, run_id in rows:
            if not _is_count(point) or not (isinstance(run_id, str) and RUN_ID.fullmatch(run_id)):
                raise ValueError(f"its run link {_kind(point)} -> {_kind(run_id)}")
        return dict(rows)

    def _batches(self, sweep_id: str) -> list[tuple[int, int]]:
        """(point, batch) of the stored plan in training order, each as groklab wrote it (else ValueError)."""
        query = "SELECT point, batch, member FROM sweep_batches WHERE sweep_id=? ORDER BY batch, member"
        rows = self.conn.execute(query, (sweep_id,)).fetchall()
        for point, batch, member in rows:
            if not (_is_count(point) and _is_count(batch) and _is_count(member)):
                raise ValueError(f"its plan puts point {_kind(point)} in batch {_kind(batch)} as member {_kind(member)}")
        return [(point, batch) for point, batch, _ in rows]

    def _damaged(self, sweep_id: str, why: object) -> GroklabError:
        return GroklabError(f"sweep {sweep_id} in {self.db_path} is damaged ({why})")

    def get_sweep(self, ref: str) -> SweepRecord:
        """A sweep by id, unique id prefix, or name; a damaged one is a one-line error naming it."""
        sweeps = self._sweep_rows()
        matches = [s for s in sweeps if s.id == ref]
        matches = matches or [s for s in sweeps if s.id.startswith(ref)] or [s for s in sweeps if s.name == ref]
        if not matches:
            raise GroklabError(f"sweep {ref!r}: no such sweep id or name in {str(self.root)!r}; see `groklab sweeps`")
        if len(matches) > 1:
            raise GroklabError(f"sweep {ref!r} is ambiguous: it matches {', '.join(s.id for s in matches[:5])}")
        if isinstance(matches[0], DamagedSweep):
            raise self._damaged(matches[0].id, matches[0].why)
        return matches[0]

    def sweep_plan(self, sweep_id: str, plan: list[list[int]] | None = None) -> list[list[int]] | None:
        """The batches a sweep trains its points in (sweeps/planning.py). Given `plan`, it is stored unless the
        sweep has one already, in one write transaction: of two drivers planning at once the first one's plan
        holds. Returns the stored plan (None if there is none)."""
        if plan is not None:
            _while_locked(lambda: self.conn.execute("BEGIN IMMEDIATE"))
            try:
                if not self.conn.execute("SELECT 1 FROM sweep_batches WHERE sweep_id=? LIMIT 1", (sweep_id,)).fetchone():
                    rows = [(sweep_id, i, b, k) for b, batch in enumerate(plan) for k, i in enumerate(batch)]
                    self.conn.executemany("INSERT INTO sweep_batches (sweep_id, point, batch, member) VALUES (?,?,?,?)", rows)
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")
        try:
            rows = self._batches(sweep_id)
        except ValueError as exc:
            raise self._damaged(sweep_id, exc) from None
        batches: dict[int, list[int]] = {}
        for point, batch in rows:
            batches.setdefault(batch, []).append(point)
        return list(batches.values()) or None

    def sweep_runs(self, sweep_id: str) -> dict[int, str]:
        """point index -> run id, for the points that have started."""
        try:
            return self._links(sweep_id)
        except ValueError as exc:
            raise self._damaged(sweep_id, exc) from None

    # ----- events ------------------------------------------------------------------------------
    def set_events(self, run_id: str, events: dict[str, tuple[int | None, float | None]]) -> None:
        with self.conn:
            self.conn.execute("BEGIN")
            self.conn.execute("DELETE FROM events WHERE run_id=?", (run_id,))
            self.conn.executemany(
                "INSERT INTO events (run_id, name, step, value) VALUES (?,?,?,?)",
                [(run_id, k, s, v) for k, (s, v) in events.items()],
            )

    def events(self, run_id: str) -> dict[str, tuple[int | None, float | None]]:
        rows = self.conn.execute("SELECT name, step, value FROM events WHERE run_id=?", (run_id,)).fetchall()
        for n, s, v in rows:
            self._check_point(run_id, "event", n, s, v, step_null=True, signed=True)
        return {n: (s, v) for n, s, v in rows}


def _sweep_parts(id_: Any, name: Any, spec: Any, points: Any, created: Any) -> tuple[dict[str, Any], list[SweepPoint]]:
    """A sweep row's spec and points, checked to be what groklab wrote (else TypeError or ValueError, which
    list the sweep as damaged)."""
    for col, v in (("id", id_), ("name", name), ("spec", spec), ("points", points)):
        if not _is_text(v):
            raise TypeError(f"its {col} is {_kind(v)}, not text")
    if not _is_time(created):
        raise TypeError(f"its created is {_kind(created)}, not a time")
    spec_data, point_data = json.loads(spec), json.loads(points)
    if not isinstance(spec_data, dict):
        raise TypeError(f"its spec is a {type(spec_data).__name__}, not a mapping")
    if not isinstance(point_data, list) or not all(
        isinstance(p, dict) and isinstance(p.get("values"), dict) and isinstance(p.get("config"), dict) for p in point_data
    ):
        raise TypeError("its points are not a list of {values, config} mappings")
    return spec_data, [SweepPoint(p["values"], p["config"]) for p in point_data]


def _is_text(v: Any) -> bool:
    return isinstance(v, str) and "\x00" not in v


def _is_number(v: Any, none: bool = False) -> bool:
    if v is None:
        return none
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _is_time(v: Any, none: bool = False) -> bool:
    """A Unix time groklab could have written (time.time(): after 1970, before the year 10000), or None if allowed."""
    return (none and v is None) or (_is_number(v) and 0 <= v < LAST_TIME)


LAST_TIME = 253402300800.0  # 10000-01-01: time.localtime and strftime take nothing later


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_count(v: Any) -> bool:
    return _is_int(v) and v >= 0


def _kind(v: Any) -> str:
    """What a stored value is, for a damage message: `text 'abc'`, `a blob of 3 bytes`, `null`, `-1`."""
    if v is None:
        return "null"
    if isinstance(v, bytes):
        return f"a blob of {len(v)} bytes"
    if isinstance(v, str):
        return f"text {short_repr(v)}"
    return short_repr(v)


def _as_text(v: Any) -> str:
    """A stored value as text to show beside a damaged row."""
    if isinstance(v, str):
        return v.replace("\x00", "")
    return "?" if v is None else short_repr(v)


def _finite_or_none(v: float) -> float | None:
    v = float(v)
    return v if v == v and v not in (float("inf"), float("-inf")) else None
