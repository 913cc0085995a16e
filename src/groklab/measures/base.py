"""The measure protocol: a small object that reads the model at an evaluation and returns named floats."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn

from groklab.losses import eval_chunk
from groklab.measures.passes import Tap, run_taps
from groklab.registry import Registry
from groklab.schema import ExperimentConfig
from groklab.tasks.base import TaskData, TaskSpec


@dataclass
class EvalContext:
    """What a measure may read at one evaluation. `known`: metrics the trainer already has for this
    evaluation (the training pass's train loss and accuracy, an ensemble's vectorized test loss,
    train_acc_batches), so no measure computes them again."""

    step: int
    model: nn.Module
    data: TaskData
    spec: TaskSpec
    cfg: ExperimentConfig
    known: dict[str, float] = field(default_factory=dict)

    @property
    def eval_chunk(self) -> int:
        return eval_chunk(self.cfg.schedule.eval_batch_size)

    def run(self, taps: Sequence[Tap]) -> Sequence[Tap]:
        """The forward passes `taps` ask for (measures/passes.py), one per split and model copy."""
        d = self.data
        splits = {"train": (d.train_x, d.train_y), "test": (d.test_x, d.test_y)}
        return run_taps(self.model, splits, taps, self.cfg.optim.loss, self.eval_chunk, self.cfg.optim.loss_dtype)


class Measure:
    """Base of registered measures. Subclasses set `name`, `every` and implement `compute`.

    `every` is the default cadence in evaluations (1 = every evaluation); the
    config's `measures.every.<name>` overrides it.
    """

    name: ClassVar[str] = ""
    every: ClassVar[int] = 1

    @classmethod
    def not_applicable(cls, model: nn.Module, spec: TaskSpec) -> str | None:
        """Why this measure cannot run on this model/task, or None if it can."""
        return None

    @classmethod
    def memory(cls, model: nn.Module, spec: TaskSpec, n_train: int, n_test: int) -> int:
        """The bytes it holds at once at an evaluation besides the forward pass, at least: counted in the memory check
        before a run (training/memory.py), so a buffer its config sizes (a width² covariance) cannot outgrow the
        device mid-run. `model` is on the meta device; most measures hold little."""
        return 0

    def taps(self, ctx: EvalContext) -> list[Tap]:
        """What it reads of the evaluation's forward passes (measures/passes.py); most measures read weights only."""
        return []

    @torch.no_grad()
    def compute(self, ctx: EvalContext, taps: Sequence[Tap] = ()) -> dict[str, float]:
        """The measure's metrics. `taps`: its own taps, after the evaluation's passes ran them; called on its
        own (no taps given), a measure that reads passes runs them itself."""
        raise NotImplementedError


def measure_all(ctx: EvalContext, measures: Sequence[Measure]) -> dict[str, float]:
    """Every measure's metrics at one evaluation, the forward passes they share run once."""
    own = [m.taps(ctx) for m in measures]
    ctx.run([t for taps in own for t in taps])
    out: dict[str, float] = {}
    for m, taps in zip(measures, own, strict=True):
        out.update(m.compute(ctx, taps))
    return out


MEASURES: Registry[type[Measure]] = Registry("measure")
