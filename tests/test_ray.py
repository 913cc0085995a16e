"""The Ray executor on a local Ray (as many CPUs as the machine has: 2 in CI): results land in the one
store and equal the local executor's, and a sweep survives a lost worker and a SIGKILL of its driver."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from groklab.cli.main import main
from groklab.store import Store, is_live
from helpers import TINY

pytest.importorskip("ray")

GRID = ["--grid", "optim.weight_decay=0.5,1"]
LONG = [*TINY, "schedule.steps=800", "schedule.checkpoint_every=100"]


def sweep_id_of(capsys) -> str:
    return capsys.readouterr().out.strip().splitlines()[-1]


def rows_by_point(store: Store, sweep_id: str) -> dict[int, list[tuple[int, str, float]]]:
    return {point: store.metric_rows(run) for point, run in sorted(store.sweep_runs(sweep_id).items())}


def assert_same_rows(a: dict, b: dict) -> None:
    """The same (step, metric) rows, none lost or duplicated; values equal up to float reassociation
    (a Ray task trains with one thread, the local executor with all of them)."""
    assert a.keys() == b.keys()
    for point in a:
        assert [r[:2] for r in a[point]] == [r[:2] for r in b[point]]
        assert [r[2] for r in a[point]] == pytest.approx([r[2] for r in b[point]], rel=1e-3, abs=1e-5)


def local_reference(capsys, tmp_path: Path, overrides: list[str], *flags: str) -> dict:
    runs = str(tmp_path / "local")
    assert main(["sweep", *overrides, *GRID, *flags, "--quiet", "--runs-dir", runs]) == 0
    store = Store(runs, create=False)
    return rows_by_point(store, sweep_id_of(capsys))


def test_ray_sweep_lands_in_the_store_and_equals_local(capsys, tmp_path):
    runs = str(tmp_path / "ray")
    assert main(["sweep", *TINY, *GRID, "--seeds", "2", "--executor", "ray", "--quiet", "--runs-dir", runs]) == 0
    store = Store(runs, create=False)
    sweep_id = sweep_id_of(capsys)
    assert sorted(store.sweep_runs(sweep_id)) == [0, 1, 2, 3]
    assert all(store.get(r).status == "finished" for r in store.sweep_runs(sweep_id).values())
    assert all((store.run_dir(r) / "checkpoint.pt").exists() for r in store.sweep_runs(sweep_id).values())
    with sqlite3.connect(Path(runs) / "groklab.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 4
    assert main(["sweep", *TINY, *GRID, "--seeds", "2", "--quiet", "--runs-dir", str(tmp_path / "local")]) == 0
    local = Store(tmp_path / "local", create=False)
    local_id = sweep_id_of(capsys)
    assert_same_rows(rows_by_point(store, sweep_id), rows_by_point(local, local_id))
    for point, run in store.sweep_runs(sweep_id).items():  # the grokking events came back too
        assert store.events(run)["t_fit"] == local.events(local.sweep_runs(local_id)[point])["t_fit"]


def start_driver(runs: Path, *args: str) -> subprocess.Popen:
    argv = [sys.executable, "-m", "groklab", "sweep", *args, "--executor", "ray", "--quiet", "--runs-dir", str(runs)]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_step(runs: Path, step: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    """Until some run of the sweep has logged metrics at `step` or later (so it has checkpoints to resume from)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            with sqlite3.connect(runs / "groklab.db") as conn:
                if (conn.execute("SELECT MAX(step) FROM metrics").fetchone()[0] or 0) >= step:
                    return
        except sqlite3.Error:
            pass
        time.sleep(0.05)
    raise AssertionError(f"no run reached step {step} in time")


def ray_task_pids() -> list[int]:
    """Processes running a groklab Ray task (Ray names them after the task function)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and b"ray::train_remote" in (entry / "cmdline").read_bytes():
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds Ray's worker processes through /proc")
def test_ray_sweep_resumes_after_a_lost_worker_and_a_killed_driver(capsys, tmp_path):
    reference = local_reference(capsys, tmp_path, LONG, "--max-ensemble", "1")
    runs = tmp_path / "runs"

    # Lost workers: their runs are marked interrupted when the sweep ends.
    proc = start_driver(runs, *LONG, *GRID, "--max-ensemble", "1")
    try:
        wait_for_step(runs, 250, proc)
        pids = ray_task_pids()
        assert pids
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    store = Store(runs, create=False)
    (sweep,) = store.sweeps()
    linked = store.sweep_runs(sweep.id)
    assert "interrupted" in {store.get(r).status for r in linked.values()}

    # The sweep resumes on Ray from the checkpoints; then its driver is SIGKILLed, taking its tasks
    # and store actor with it, and the runs are left `running`.
    proc = start_driver(runs, "--resume", sweep.id, "--max-ensemble", "1")
    try:
        wait_for_step(runs, 450, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert "running" in {store.get(r).status for r in linked.values()}
    deadline = time.time() + 60
    while any(is_live(store.get(r)) for r in linked.values()) and time.time() < deadline:
        time.sleep(0.2)  # the orphaned store actor exits within seconds

    # The local executor finishes them: nothing ran twice, no metric row lost or duplicated.
    assert main(["sweep", "--resume", sweep.id, "--max-ensemble", "1", "--quiet", "--runs-dir", str(runs)]) == 0
    with sqlite3.connect(runs / "groklab.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 2
    assert all(store.get(r).status == "finished" for r in linked.values())
    assert_same_rows(rows_by_point(store, sweep.id), reference)


@pytest.mark.parametrize(
    "flags, field",
    [
        (["--executor", "ray", "--address", "127.0.0.1:1"], "--address"),
        (["--executor", "ray", "--address", "nohostport"], "--address"),
        (["--executor", "ray", "--address", "ray://head:10001"], "--address"),
        (["--address", "auto"], "--address"),
        (["--executor", "ray", "--workers", "2"], "--workers"),
        (["--executor", "ray", "--cpus-per-task", "0"], "--cpus-per-task"),
        (["--executor", "dask"], "--executor"),
    ],
)
def test_bad_ray_input(capsys, tmp_path, flags, field):
    code = main(["sweep", *TINY, *GRID, *flags, "--runs-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("groklab: error: ") and field in err and err.count("\n") == 1
    assert not (tmp_path / "r").exists()


def test_unreachable_address_says_how_to_start_ray(capsys, tmp_path):
    assert main(["sweep", *TINY, *GRID, "--executor", "ray", "--address", "127.0.0.1:1", "--runs-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "ray start --head" in err and "leave out --executor ray" in err


def test_a_local_ray_listens_on_loopback_only():
    """The Ray a sweep starts for itself serves only this machine: every socket its processes listen on is on
    127.0.0.1 (Ray's default is every interface)."""
    import psutil
    import ray

    from groklab.sweeps import ray_executor

    assert ray_executor.connect(None)
    try:
        assert ray.util.get_node_ip_address() == "127.0.0.1"
        ours = {p.pid for p in psutil.Process().children(recursive=True)}
        listening = [c for c in psutil.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN and c.pid in ours]
        assert listening, "found none of Ray's listening sockets"
        assert all(c.laddr.ip in ("127.0.0.1", "::ffff:127.0.0.1", "::1") for c in listening), [c.laddr for c in listening]
    finally:
        ray_executor.shutdown()


def test_the_store_actor_serves_only_well_formed_run_ids_and_names(tmp_path):
    """Called through Ray, as a task would, the store actor refuses a run id or a file name that would become
    a path outside the runs directory, and writes nothing; a well-formed call goes through."""
    import ray

    from groklab.errors import GroklabError
    from groklab.sweeps import ray_executor
    from groklab.sweeps.ray_executor import RemoteStore, StoreService

    runs = tmp_path / "runs"
    Store(runs).close()
    assert ray_executor.connect(None)
    try:
        service = ray.remote(StoreService).options(num_cpus=0).remote(str(runs))
        remote = RemoteStore(service)
        bad_calls = [
            lambda: remote.write_file("../../outside", "config.yaml", "x"),
            lambda: remote.write_file("0123abcd", "../../outside.yaml", "x"),
            lambda: remote.save_checkpoint("../outside", {"step": 1}, 1),
            lambda: remote.load_checkpoint("/etc"),
            lambda: remote.save_weights("0123abcd/../..", {}, 1),
        ]
        for call in bad_calls:
            with pytest.raises(ray.exceptions.RayTaskError) as info:
                call()
            assert isinstance(info.value.cause, GroklabError), info.value
        with pytest.raises(ray.exceptions.RayTaskError):
            ray.get(service.call.remote("conn", (), {}))  # only the RunStore calls are served
        assert sorted(p.name for p in tmp_path.rglob("*") if "groklab.db" not in p.name) == ["runs"]
        run_id = remote.create_run({"run": {}}, "n", "p", "0", "cpu")
        remote.write_file(run_id, "config.yaml", "x: 1\n")
        assert (runs / "runs" / run_id / "config.yaml").read_text() == "x: 1\n"
    finally:
        ray_executor.shutdown()
