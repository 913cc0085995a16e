"""The Ray executor: the same sweep on a Ray cluster, one Ray task per batch (a vectorized ensemble
or a lone run), results flowing back to the one store.

A task may run on any node, and nodes need not share a filesystem, so tasks never open the store
themselves: they call a store actor pinned to the driver's node, which owns the runs directory.
Metrics are committed per evaluation and checkpoints shipped as bytes, exactly as a local run
writes them, so `groklab sweep --resume` works the same after Ctrl-C, a SIGKILL of the driver, or
a lost worker. The runs a task was training are marked `running` by the store actor's process,
which lives only as long as the sweep's driver; runs a lost task leaves behind are marked
`interrupted` when the sweep ends.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from groklab.errors import GroklabError
from groklab.store import Store, SweepRecord
from groklab.store.checkpoints import (
    LATEST,
    PREVIOUS,
    checkpoint_bytes,
    read_checkpoint,
    save_checkpoint_bytes,
    save_weights_bytes,
    serialize,
)
from groklab.store.protocol import STORE_CALLS
from groklab.sweeps.local import sweep_status, train_batch
from groklab.sweeps.planning import pending_batches
from groklab.training.allocator import tune_malloc

HOW_TO_START = "start one with `ray start --head` and pass the address it prints (or `auto` on a node of it), or leave out --executor ray"


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise GroklabError("--executor: ray needs Ray installed: pip install 'groklab[ray]'") from None
    return ray


LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": Ray's single-machine mode, every server on 127.0.0.1


def _loopback_only() -> None:
    """Make the Ray this sweep starts for itself listen on 127.0.0.1 only (by default its servers listen on every
    interface). Ray reads the setting when imported (its subprocesses from the environment), and a driver that
    imported Ray already is set through the constant Ray consults when it picks the node's address."""
    os.environ[LOOPBACK_ENV] = "0"
    if "ray" in sys.modules:
        from ray._private import ray_constants

        ray_constants.ENABLE_RAY_CLUSTER = False


def connect(address: str | None) -> bool:
    """Join the Ray cluster at `address` ('auto' or HOST:PORT), or start a local Ray for this sweep
    when it is None. Returns whether a local Ray was started (and should be shut down after)."""
    if address is None:
        _loopback_only()
    ray = _ray()
    if ray.is_initialized():
        return False
    quiet = {"include_dashboard": False, "logging_level": logging.ERROR, "log_to_driver": False}
    if address is None:
        ray.init(**quiet)
        return True
    if address.startswith("ray://"):
        raise GroklabError(
            f"--address: {address!r} is a Ray Client address; run groklab sweep on a node of the cluster "
            "(the store lives beside the driver) with --address auto or HOST:PORT"
        )
    if address != "auto":
        host, _, port = address.rpartition(":")
        if not host or not (port.isascii() and port.isdigit()):
            raise GroklabError(f"--address: expected auto or HOST:PORT, got {address!r}")
        try:  # Ray itself would retry an unreachable address for minutes
            socket.create_connection((host, int(port)), timeout=5).close()
        except OSError as exc:
            raise GroklabError(f"--address: no Ray cluster answers at {address} ({exc.strerror or exc}); {HOW_TO_START}") from None
    try:
        ray.init(address=address, **quiet)
    except (ConnectionError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GroklabError(f"--address: cannot join a Ray cluster at {address} ({first}); {HOW_TO_START}") from None
    return False


def shutdown() -> None:
    _ray().shutdown()


class StoreService:
    """The store actor: runs the trainers' store calls against the driver's runs directory."""

    def __init__(self, root: str) -> None:
        self.store = Store(root, create=False)

    def owner(self) -> tuple[str, int]:
        return socket.gethostname(), os.getpid()

    def call(self, name: str, args: tuple, kwargs: dict[str, Any]) -> Any:
        if name not in STORE_CALLS:
            raise AttributeError(f"the store actor does not serve {name!r}")
        return getattr(self.store, name)(*args, **kwargs)

    def save_checkpoint(self, run_id: str, blob: bytes, step: int, keep: bool, previous: bool = False) -> None:
        save_checkpoint_bytes(self.store.run_dir(run_id), blob, step, keep, previous)

    def load_checkpoint(self, run_id: str, previous: bool = False) -> bytes | None:
        return checkpoint_bytes(self.store.run_dir(run_id), previous)

    def save_weights(self, run_id: str, blob: bytes, step: int) -> None:
        save_weights_bytes(self.store.run_dir(run_id), blob, step)


class RemoteStore:
    """What a Ray task trains against: the RunStore calls (store/protocol.py), forwarded to the store actor.

    Every call waits for its answer, so writes land in the order a local run makes them."""

    def __init__(self, service: Any) -> None:
        self.service = service

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name not in STORE_CALLS:
            raise AttributeError(name)
        ray = _ray()
        return lambda *args, **kwargs: ray.get(self.service.call.remote(name, args, kwargs))

    def save_checkpoint(self, run_id: str, state: dict[str, Any], step: int, keep: bool = False, previous: bool = False) -> None:
        _ray().get(self.service.save_checkpoint.remote(run_id, serialize(state), step, keep, previous))

    def save_weights(self, run_id: str, state: dict[str, Any], step: int) -> None:
        _ray().get(self.service.save_weights.remote(run_id, serialize(state), step))

    def load_checkpoint(self, run_id: str, map_location: str | torch.device = "cpu", previous: bool = False) -> dict[str, Any] | None:
        blob = _ray().get(self.service.load_checkpoint.remote(run_id, previous))
        return None if blob is None else read_checkpoint(blob, Path(run_id) / (PREVIOUS if previous else LATEST), map_location)


def train_remote(service: Any, sweep: SweepRecord, batch: list[int], threads: int) -> list[str]:
    """The body of one Ray task: train a batch of points against the store actor."""
    torch.set_num_threads(threads)
    tune_malloc()
    return train_batch(RemoteStore(service), sweep, batch, lambda points, label: None, lambda msg: None)


def run_sweep_on_ray(
    store: Store,
    sweep_id: str,
    announce: Callable[[str], Any] = lambda msg: None,
    poll: Callable[[], Any] = lambda: None,
    max_ensemble: int | None = None,
    pad_widths: bool | None = None,
    cpus_per_task: int = 1,
    gpus_per_task: float | None = None,
) -> dict[str, int]:
    """Train every unfinished point of a stored sweep on the connected Ray cluster, one task per batch.

    `gpus_per_task` defaults to 1 where the cluster has GPUs and the sweep's runs may use one
    (run.device auto or cuda), else 0. Ctrl-C asks every running task to stop cleanly (each
    checkpoints and marks its runs `interrupted`); a second Ctrl-C stops waiting.
    """
    ray = _ray()
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    sweep = store.get_sweep(sweep_id)
    batches = pending_batches(store, sweep, announce, max_ensemble, pad_widths)
    if not batches:
        return sweep_status(store, sweep_id)
    here = NodeAffinitySchedulingStrategy(node_id=ray.get_runtime_context().get_node_id(), soft=False)
    service = ray.remote(StoreService).options(num_cpus=0, scheduling_strategy=here).remote(str(store.root))
    owner = ray.get(service.owner.remote())
    if gpus_per_task is None:
        devices = {p.config["run"]["device"] for p in sweep.points}
        gpus_per_task = 1.0 if ray.cluster_resources().get("GPU", 0) > 0 and devices & {"auto", "cuda"} else 0.0
    task = ray.remote(train_remote).options(num_cpus=cpus_per_task, num_gpus=gpus_per_task, max_retries=0)
    refs = {task.remote(service, sweep, batch, cpus_per_task): batch for batch in batches}
    cpus = int(ray.cluster_resources().get("CPU", 0))
    announce(f"{len(refs)} Ray task{'s' if len(refs) != 1 else ''} for {sum(map(len, batches))} points on a cluster of {cpus} CPUs")
    try:
        try:
            _collect(refs, sweep, announce, poll)
        except KeyboardInterrupt:
            announce("stopping: every running task checkpoints and stops (Ctrl-C again to stop waiting)")
            for ref in refs:
                ray.cancel(ref)
            _collect(refs, sweep, announce, poll)
    finally:
        _mark_lost(store, sweep_id, owner)
        ray.kill(service)
    poll()
    return sweep_status(store, sweep_id)


def _collect(refs: dict[Any, list[int]], sweep: SweepRecord, announce: Callable[[str], Any], poll: Callable[[], Any]) -> None:
    """Wait for the tasks, reporting each failure and polling progress about twice a second."""
    ray = _ray()
    while refs:
        done, _ = ray.wait(list(refs), num_returns=1, timeout=0.5)
        for ref in done:
            batch = refs.pop(ref)
            points = ", ".join(str(i + 1) for i in batch)
            try:
                ray.get(ref)
            except ray.exceptions.TaskCancelledError:
                pass
            except ray.exceptions.RayTaskError as exc:
                announce(f"points {points}/{len(sweep.points)} failed: {type(exc.cause).__name__}: {exc.cause}")
            except ray.exceptions.RayError as exc:
                announce(f"points {points}/{len(sweep.points)} lost their Ray worker ({type(exc).__name__})")
        poll()


def _mark_lost(store: Store, sweep_id: str, owner: tuple[str, int]) -> None:
    """Runs still `running` under this sweep's store actor lost their task: mark them resumable."""
    for run_id in store.sweep_runs(sweep_id).values():
        rec = store.get(run_id)
        if rec.status == "running" and (rec.host, rec.pid) == owner:
            store.set_status(
                run_id, "interrupted", rec.step, "its Ray task ended before the run did; continue with `groklab sweep --resume`"
            )
