"""Start, resume and ensemble runs: build the backend first (bad input writes nothing), then the run
records, then the loop."""

from __future__ import annotations

from pathlib import Path

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
            from groklab.store.checkpoints import LATEST, DamagedCheckpointError, first_line

            path = getattr(store, "run_dir", lambda r: None)(run_id)
            raise DamagedCheckpointError((path or Path(run_id)) / LATEST, f"does not fit this run's model ({first_line(exc)})") from None
    store.claim(run_id, str(prep.device))
    store.truncate_metrics(run_id, backend.step)
    return train(backend, store, [run_id], with_sinks(reporter, [prep.cfg], store))[0]


def start_ensemble(
    preps: list[Prepared], store: RunStore, reporter: Reporter | None = None, sweep: tuple[str, list[int]] | None = None
) -> tuple[list[str], list[str]]:
    """Create one stored run per member (linked to sweep points `sweep[1]` if given) and train them together."""
    backend = StackedBackend(preps)
    run_ids = [create_run(store, p.cfg, str(p.device), None if sweep is None else (sweep[0], sweep[1][k])) for k, p in enumerate(preps)]
    return run_ids, train(backend, store, run_ids, with_sinks(reporter, [p.cfg for p in preps], store))
