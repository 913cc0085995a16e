"""Start, resume and ensemble runs: build the backend first (bad input writes nothing), then the run
records, then the loop."""

from __future__ import annotations

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


def resume_run(prep: Prepared, store: RunStore, run_id: str, reporter: Reporter | None = None) -> str:
    """Continue a stored run (lone, or one member of an ensemble) from its last checkpoint, or from scratch
    if it has none; the metrics it will recompute are dropped first."""
    store.claim(run_id, str(prep.device))
    backend = LoneBackend(prep)
    state = store.load_checkpoint(run_id, map_location=backend.device)
    if state is not None:  # else: start over, from the same state `prepare` left the RNG in
        backend.load_state(state)
    store.truncate_metrics(run_id, backend.step)
    return train(backend, store, [run_id], with_sinks(reporter, [prep.cfg], store))[0]


def start_ensemble(
    preps: list[Prepared], store: RunStore, reporter: Reporter | None = None, sweep: tuple[str, list[int]] | None = None
) -> tuple[list[str], list[str]]:
    """Create one stored run per member (linked to sweep points `sweep[1]` if given) and train them together."""
    backend = StackedBackend(preps)
    run_ids = [create_run(store, p.cfg, str(p.device), None if sweep is None else (sweep[0], sweep[1][k])) for k, p in enumerate(preps)]
    return run_ids, train(backend, store, run_ids, with_sinks(reporter, [p.cfg for p in preps], store))
