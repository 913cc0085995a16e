"""A run's network at a step, rebuilt from its config and a weight snapshot, and written out as a file."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from groklab.config.loading import from_dict
from groklab.dtypes import dtype_of
from groklab.errors import GroklabError
from groklab.models import Transformer, build_model
from groklab.models.transformerlens import transformerlens_export
from groklab.store.db import Store
from groklab.store.outputs import atomic_path, output_file
from groklab.tasks import build_task


def snapshot_step(store: Store, run_id: str, step: int | None = None) -> int:
    """`step` (default: the last snapshot) if the run kept its weights there; else an error naming the nearest."""
    steps = store.weight_steps(run_id)
    if not steps:
        raise GroklabError(f"run {run_id} kept no weight snapshots; train with schedule.snapshot_per_decade=N (e.g. 10)")
    if step is None:
        return steps[-1]
    if step not in steps:
        nearest = min(steps, key=lambda s: (abs(s - step), s))
        raise GroklabError(f"run {run_id} has no weights at step {step}; the nearest snapshot is step {nearest}")
    return step


def model_at(store: Store, run_id: str, step: int | None = None) -> nn.Module:
    """The run's network with the weights snapshotted at `step` (default: the last), in eval mode, on the CPU."""
    state = store.load_weights(run_id, snapshot_step(store, run_id, step))
    assert state is not None
    cfg = from_dict(store.get(run_id).config)
    model = build_model(cfg.model, build_task(cfg.task).spec).to(dtype_of(cfg.run.dtype))
    model.load_state_dict(state)
    return model.eval()


def export_weights(store: Store, run_id: str, step: int, output: str | Path | None, transformerlens: bool = False) -> Path:
    """The snapshot at `step` as a torch file: the state dict, or {"cfg", "state_dict"} in TransformerLens's layout."""
    path = output_file(output or f"{run_id}-step{step}{'-tl' if transformerlens else ''}.pt")  # before the model is rebuilt
    model = model_at(store, run_id, step)
    if transformerlens and not isinstance(model, Transformer):
        raise GroklabError(f"--transformerlens converts transformers only; run {run_id} trained a {type(model).__name__}")
    state = transformerlens_export(model) if transformerlens else model.state_dict()
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path
