"""TensorBoard event files written from the store after the fact, so runs trained on Ray, runs from before
`run.log_to`, and whole sweeps can be looked at in TensorBoard (needs the `tensorboard` extra)."""

from __future__ import annotations

import re
from pathlib import Path

from groklab.errors import GroklabError
from groklab.store.db import Store, SweepRecord
from groklab.store.outputs import output_folder


def _check(folder: Path) -> Path:
    try:
        import tensorboard  # noqa: F401  (torch's SummaryWriter needs it)
    except ImportError:
        raise GroklabError("--format tensorboard needs tensorboard: pip install 'groklab[tensorboard]'") from None
    output_folder(folder)
    if folder.is_dir() and any(folder.rglob("events.out.tfevents.*")):
        raise GroklabError(f"--output: {folder} already holds TensorBoard events; give a new folder (or remove it)")
    return folder


def _write_run(store: Store, run_id: str, folder: Path) -> None:
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(folder))
    try:
        for step, name, value in store.metric_rows(run_id):
            writer.add_scalar(name, value, step)
        config = store.read_file(run_id, "config.yaml")
        if config:
            writer.add_text("config", "\n".join("    " + line for line in config.splitlines()))  # markdown code block
    finally:
        writer.close()


def export_run_tensorboard(store: Store, run_id: str, output: str | Path | None) -> Path:
    """One run's metrics as a TensorBoard log folder (default ./tensorboard/RUN)."""
    folder = _check(Path(output) if output else Path("tensorboard") / run_id)
    _write_run(store, run_id, folder)
    return folder


def export_sweep_tensorboard(store: Store, sweep: SweepRecord, output: str | Path | None) -> Path:
    """Each started point of a sweep as its own TensorBoard run, named by point, grid values and run id
    (default ./tensorboard/SWEEP)."""
    folder = _check(Path(output) if output else Path("tensorboard") / sweep.id)
    linked = store.sweep_runs(sweep.id)
    if not linked:
        raise GroklabError(f"sweep {sweep.id} has no runs yet; nothing to export")
    for i, point in enumerate(sweep.points):
        if i in linked:
            label = re.sub(r"[^A-Za-z0-9_.=+-]+", "_", point.label)[:120]
            _write_run(store, linked[i], folder / f"{i:03d}_{label}_{linked[i]}")
    return folder
