"""Start, resume and ensemble runs: build the backend first (bad input writes nothing), then the run
records, then the loop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from groklab.store.checkpoints import LATEST, DamagedCheckpointError, first_line
from groklab.store.db import TakenError
from groklab.store.protocol import RunStore
from groklab.store.records import create_run
from groklab.training.lone import LoneBackend
from groklab.training.loop import train
from groklab.training.reporter import Reporter
from groklab.training.setup import Prepared
from groklab.training.stacked import StackedBackend
from groklab.training.trackers import with_sinks


def start_run(prep: Prepared, store: RunStore, reporter: Reporter | None = None, sweep: tuple[str, int] | None = None) -> tuple[str, str]:
    """Create the run in the store (linked to point `sweep[1]` of sweep `sweep[0]`, if given) and train it.
    Returns (run_id, status)."""
    backend = LoneBackend(prep)
    run_id = create_run(store, prep.cfg, str(prep.device), sweep)
    return run_id, train(backend, store, [run_id], with_sinks(reporter, [prep.cfg], store))[0]


def resume_run(prep: Prepared, store: RunStore, run_id: str, reporter: Reporter | None = None, from_scratch: bool = False) -> str:
    """Continue a stored run (lone, or one member of an ensemble) from its last checkpoint, or from step 0 if it
    has none or `from_scratch`; the metrics it will recompute are dropped first. The checkpoint is read and
    fitted before the run is claimed, so a damaged one leaves the run as it was."""
    backend = LoneBackend(prep)
    state = None if from_scratch else store.load_checkpoint(run_id, map_location=backend.device)
    if state is not None:  # else: start over, from the same state `prepare` left the RNG in
        try:
            backend.load_state(state)
        except (KeyError, IndexError, RuntimeError, TypeError, ValueError) as exc:  # another model's shapes or keys
            raise _misfit(store, run_id, exc) from None
    store.claim(run_id, str(prep.device))
    store.truncate_metrics(run_id, backend.step)
    return train(backend, store, [run_id], with_sinks(reporter, [prep.cfg], store))[0]


def start_ensemble(
    preps: list[Prepared], store: RunStore, reporter: Reporter | None = None, sweep: tuple[str, list[int]] | None = None
) -> tuple[list[str], list[str]]:
    """Create one stored run per member (linked to sweep points `sweep[1]` if given) and train them together."""
    return train_ensemble(preps, store, [None] * len(preps), reporter, sweep)


def train_ensemble(
    preps: list[Prepared],
    store: RunStore,
    run_ids: list[str | None],
    reporter: Reporter | None = None,
    sweep: tuple[str, list[int]] | None = None,
) -> tuple[list[str], list[str]]:
    """Train an ensemble whose members are new (None: a run is created, linked to point `sweep[1][k]`) or stored
    runs it left part-way, as that same ensemble: from the last step every member has a checkpoint of (its
    latest or the one before, since a kill may fall between two members' writes), else from step 0 for all.
    Checkpoints are read and fitted before any run is claimed or created; a member another process holds
    (TakenError) leaves every run this call claimed or created interrupted, as it found them.
    Returns (run_ids, statuses)."""
    backend = StackedBackend(preps)
    states = _common_states(store, run_ids, backend.device)
    if states is not None:
        try:
            backend.load_states(states)
        except (KeyError, IndexError, RuntimeError, TypeError, ValueError) as exc:
            raise _misfit(store, run_ids[getattr(exc, "member", 0)] or "", exc) from None
    device, ids, taken = str(backend.device), list(run_ids), []
    try:
        for k, rid in enumerate(run_ids):
            if rid is None:
                ids[k] = create_run(store, preps[k].cfg, device, None if sweep is None else (sweep[0], sweep[1][k]))
            else:
                store.claim(rid, device)
                store.truncate_metrics(rid, backend.step)
            taken.append(ids[k])
    except TakenError:  # its metrics now end at backend.step, where a resume of it starts
        for rid in taken:
            store.set_status(rid, "interrupted", backend.step, f"its ensemble's point was taken; continue with `groklab resume {rid}`")
        raise
    members = [r for r in ids if r is not None]
    return members, train(backend, store, members, with_sinks(reporter, [p.cfg for p in preps], store))


def _common_states(store: RunStore, run_ids: list[str | None], device: torch.device) -> list[dict[str, Any]] | None:
    """Every member's checkpoint at the last step all of them have one for, or None: from step 0."""
    latest = [None if rid is None else store.load_checkpoint(rid, map_location=device) for rid in run_ids]
    target = min(0 if s is None else s["step"] for s in latest)
    if target == 0:
        return None
    states = []
    for rid, state in zip(run_ids, latest, strict=True):
        if state is not None and state["step"] != target:
            state = store.load_checkpoint(rid, map_location=device, previous=True)  # type: ignore[arg-type]
        if state is None or state["step"] != target:  # a member that stopped earlier (its loss diverged): start over
            return None
        states.append(state)
    return states


def _misfit(store: RunStore, run_id: str, exc: BaseException) -> DamagedCheckpointError:
    path = getattr(store, "run_dir", lambda r: None)(run_id)
    return DamagedCheckpointError((path or Path(run_id)) / LATEST, f"does not fit this run's model ({first_line(exc)})")
