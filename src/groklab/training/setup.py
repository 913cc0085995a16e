"""Everything a run needs, built and checked before the store is touched: bad input writes nothing."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from groklab.dtypes import dtype_of
from groklab.errors import ConfigError
from groklab.measures import MEASURES, Measure
from groklab.models import build_model
from groklab.schema import ExperimentConfig
from groklab.tasks import Task, TaskData, TaskSpec, build_task
from groklab.training.device import resolve_device
from groklab.training.memory import check_fits
from groklab.training.trackers import check_sinks


@dataclass
class Prepared:
    """Everything a run needs, built and checked before anything is written to the store."""

    cfg: ExperimentConfig
    task: Task
    spec: TaskSpec
    data: TaskData
    model: nn.Module
    measures: list[tuple[Measure, int]]
    device: torch.device
    dtype: torch.dtype = field(default=torch.float32)


def prepare(cfg: ExperimentConfig) -> Prepared:
    """Build data, model and measures from a validated config; raise ConfigError on any misfit."""
    check_sinks(cfg)
    device = resolve_device(cfg.run.device)
    dtype = dtype_of(cfg.run.dtype)
    if device.type == "mps" and dtype == torch.float64:
        raise ConfigError("run.dtype", "float64 is not supported on MPS; use float32 or run.device=cpu")
    task = build_task(cfg.task)
    spec = task.spec
    check_fits(cfg, task, spec, device, dtype)  # before anything is allocated (and before the seeded model build)
    raw = task.build()
    tensors = (raw.train_x, raw.train_y, raw.test_x, raw.test_y)
    data = TaskData(*(t.to(dtype) if t.is_floating_point() else t for t in tensors))  # vector inputs in the model's dtype
    torch.manual_seed(cfg.run.seed)
    model = build_model(cfg.model, spec)
    measures = []
    for name in cfg.measures.enabled:
        cls = MEASURES.get(name, "measures.enabled")
        why = cls.not_applicable(model, spec)
        if why:
            fits = [n for n in cfg.measures.enabled if not MEASURES.get(n, "measures.enabled").not_applicable(model, spec)]
            raise ConfigError(
                "measures.enabled",
                f"{name!r} does not apply to model {cfg.model.name!r} on task {cfg.task.name!r}: {why}; "
                f"drop it, e.g. measures.enabled=[{','.join(fits)}]",
            )
        measures.append((cls(), cfg.measures.every.get(name, cls.every)))
    return Prepared(cfg, task, spec, data, model, measures, device, dtype)
