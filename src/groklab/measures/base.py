"""The measure protocol: a small object that reads the model at an evaluation and returns named floats."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from groklab.config.schema import ExperimentConfig
from groklab.registry import Registry
from groklab.tasks.base import TaskData, TaskSpec


@dataclass
class EvalContext:
    """What a measure may read at one evaluation. `cache` lets the trainer share work (e.g. train logits)."""

    step: int
    model: nn.Module
    data: TaskData
    spec: TaskSpec
    cfg: ExperimentConfig
    cache: dict[str, Any] = field(default_factory=dict)


class Measure:
    """Base of registered measures. Subclasses set `name`, `every` and implement `compute`.

    `every` is the default cadence in evaluations (1 = every evaluation); the
    config's `measures.every.<name>` overrides it.
    """

    name: ClassVar[str] = ""
    every: ClassVar[int] = 1
    summary: ClassVar[str] = ""
    fills_cache: ClassVar[bool] = False  # runs first: its forward pass leaves loss/accuracy in ctx.cache for loss_acc

    @classmethod
    def not_applicable(cls, model: nn.Module, spec: TaskSpec) -> str | None:
        """Why this measure cannot run on this model/task, or None if it can."""
        return None

    @torch.no_grad()
    def compute(self, ctx: EvalContext) -> dict[str, float]:
        raise NotImplementedError


MEASURES: Registry[type[Measure]] = Registry("measure")
