"""Checkpoints: model, optimizer, filter and RNG states at a step, written atomically, read with weights_only."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

LATEST = "checkpoint.pt"


def save_checkpoint(run_dir: Path, state: dict[str, Any], step: int, keep: bool = False) -> Path:
    """Write `state` to run_dir/checkpoint.pt via a temporary file, so a kill never leaves a torn file."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LATEST
    tmp = run_dir / f".{LATEST}.{os.getpid()}.tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)
    if keep:
        kept = run_dir / "checkpoints" / f"step_{step:09d}.pt"
        kept.parent.mkdir(exist_ok=True)
        try:
            os.link(path, kept)
        except OSError:
            torch.save(state, kept)
    return path


def load_checkpoint(run_dir: Path, map_location: str | torch.device = "cpu") -> dict[str, Any] | None:
    """The latest checkpoint of a run, or None if it has none."""
    path = run_dir / LATEST
    if not path.exists():
        return None
    return torch.load(path, map_location=map_location, weights_only=True)
