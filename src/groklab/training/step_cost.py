"""What one training step of a config costs on its device, measured now: the basis of the wall-clock a long
job prints before it starts (the same code the trainer runs, not a FLOP model)."""

from __future__ import annotations

import time

import torch

from groklab.schema import ExperimentConfig
from groklab.training.lone import LoneBackend
from groklab.training.setup import prepare


def step_seconds(cfg: ExperimentConfig, seconds: float = 0.5, warmup: int = 3) -> float:
    """Mean seconds per optimizer step over about `seconds` of steps, after `warmup` steps.

    Builds the run's model and data but writes nothing."""
    trainer = LoneBackend(prepare(cfg))
    sync = torch.cuda.synchronize if trainer.device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        trainer.train_step(record=False)
        trainer.apply_update()
    sync()
    n, t0 = 0, time.perf_counter()
    while n < 3 or time.perf_counter() - t0 < seconds:
        trainer.train_step(record=False)
        trainer.apply_update()
        n += 1
        if n % 10 == 0:
            sync()
    sync()
    return (time.perf_counter() - t0) / n
