"""The precisions a config names (`run.dtype`, `optim.loss_dtype`) as torch dtypes: one map, read by the trainer,
the loss and the weight snapshots alike."""

from __future__ import annotations

import torch

DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "float64": torch.float64}


def dtype_of(name: str) -> torch.dtype:
    """The torch dtype of a config's precision name."""
    return DTYPES[name]
