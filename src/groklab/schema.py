"""Typed experiment configuration: one dataclass per section, every field a documented knob.

Task and model sections are polymorphic: `task.name` / `model.name` select a
registered implementation whose own dataclass (a subclass of TaskConfig /
ModelConfig) defines the remaining keys. Everything else is fixed here.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Literal

from groklab.errors import ConfigError


@dataclass
class TaskConfig:
    """Base of every task's config. `seed` draws the data split, independently of the model."""

    name: str = "modular"
    seed: int = 0

    def validate(self) -> None:
        """Check values that types alone cannot; raise ConfigError naming the field."""


MAX_SEED = 2**32 - 1  # seeds derive generator seeds (minibatch order: seed * 1_000_003 + epoch; probes: seed << 32 | step) within 64 bits
MAX_LAYERS = 1024  # a model's layers are Python objects built one by one: 10^9 of them never finish building


def check_layers(key: str, n: int) -> None:
    """A model's layer count within MAX_LAYERS (checked before the model is built, even on the meta device)."""
    if n > MAX_LAYERS:
        raise ConfigError(key, f"{n} layers is more than groklab builds (at most {MAX_LAYERS})")


@dataclass
class ModelConfig:
    """Base of every model's config. `init_scale` multiplies all parameters after the default init."""

    name: str = "transformer"
    init_scale: float = 1.0

    def validate(self) -> None:
        if self.init_scale <= 0:
            raise ConfigError("model.init_scale", f"must be > 0, got {self.init_scale}")


@dataclass
class GrokfastConfig:
    """Grokfast gradient filter (Lee et al. 2024): g <- g + lamb * filtered(g)."""

    kind: Literal["none", "ema", "ma"] = "none"
    alpha: float = 0.98  # EMA momentum
    lamb: float = 2.0  # amplification of the slow gradient component
    window: int = 100  # MA window length

    def validate(self) -> None:
        if not 0.0 <= self.alpha < 1.0:
            raise ConfigError("optim.grokfast.alpha", f"must be in [0, 1), got {self.alpha}")
        if self.window < 1:
            raise ConfigError("optim.grokfast.window", f"must be >= 1, got {self.window}")


@dataclass
class OptimConfig:
    """Optimizer, objective and learning-rate warm-up."""

    name: Literal["adamw", "adam", "sgd"] = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1.0
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-8
    momentum: float = 0.0  # SGD only
    warmup_steps: int = 0  # linear warm-up from lr/warmup_steps to lr
    loss: Literal["ce", "mse", "stablemax"] = "ce"  # stablemax: Prieto et al.'s StableMax cross-entropy
    loss_dtype: Literal["auto", "float32", "float64"] = "auto"  # the loss's precision; auto: the model's (StableMax: float64)
    orthograd: bool = False  # ⊥Grad (Prieto et al.): each parameter's gradient projected orthogonal to it, norm kept
    fixed_norm: float | None = None  # Omnigrok: after each step, rescale to this multiple of the initial total weight norm
    grokfast: GrokfastConfig = field(default_factory=GrokfastConfig)

    def validate(self) -> None:
        if self.lr <= 0:
            raise ConfigError("optim.lr", f"must be > 0, got {self.lr}")
        if self.weight_decay < 0:
            raise ConfigError("optim.weight_decay", f"must be >= 0, got {self.weight_decay}")
        if not all(0.0 <= b < 1.0 for b in self.betas):
            raise ConfigError("optim.betas", f"each beta must be in [0, 1), got {list(self.betas)}")
        if self.eps <= 0:
            raise ConfigError("optim.eps", f"must be > 0, got {self.eps}")
        if self.momentum < 0:
            raise ConfigError("optim.momentum", f"must be >= 0 (0 = plain SGD), got {self.momentum}")
        if self.warmup_steps < 0:
            raise ConfigError("optim.warmup_steps", f"must be >= 0, got {self.warmup_steps}")
        if self.fixed_norm is not None and not (0 < self.fixed_norm < math.inf):
            raise ConfigError(
                "optim.fixed_norm", f"must be > 0 (a multiple of the initial weight norm) or null for none, got {self.fixed_norm}"
            )
        self.grokfast.validate()


MAX_EVALUATIONS = 1_000_000  # evaluation steps of one run: each writes a row per metric
MAX_SNAPSHOTS = 10_000  # weight snapshots of one run


@dataclass
class ScheduleConfig:
    """How long to train, how often to evaluate and checkpoint, and when to stop early.

    Evaluation is dense early (every `eval_every` steps up to `eval_dense_until`)
    and log-spaced afterwards (`eval_per_decade` points per factor of ten), with
    gaps never wider than `eval_max_gap` steps.
    """

    steps: int = 10_000
    batch_size: int = 0  # 0 = full batch
    eval_every: int = 10
    eval_dense_until: int = 1000
    eval_per_decade: int = 50
    eval_max_gap: int = 500
    checkpoint_every: int = 1000
    eval_batch_size: int = 0  # rows per evaluation forward pass; 0 = 16384 (lower it for image models)
    keep_checkpoints: bool = False  # keep every checkpoint, not only the latest
    snapshot_per_decade: int = 0  # weight snapshots at step 0, log-spaced steps (this many per decade) and the last; 0 = none
    stop_test_acc: float | None = None  # stop once test accuracy >= this ...
    stop_patience: int = 5  # ... for this many consecutive evaluations

    def validate(self) -> None:
        for name in ("steps", "eval_every", "eval_per_decade", "eval_max_gap", "checkpoint_every", "stop_patience"):
            if getattr(self, name) < 1:
                raise ConfigError(f"schedule.{name}", f"must be >= 1, got {getattr(self, name)}")
        if self.snapshot_per_decade < 0:
            raise ConfigError("schedule.snapshot_per_decade", f"must be >= 0 (0 = no snapshots), got {self.snapshot_per_decade}")
        if self.eval_batch_size < 0:
            raise ConfigError("schedule.eval_batch_size", f"must be >= 0 (0 = 16384), got {self.eval_batch_size}")
        if self.batch_size < 0:
            raise ConfigError("schedule.batch_size", f"must be >= 0 (0 = full batch), got {self.batch_size}")
        if self.eval_dense_until < 0:
            raise ConfigError("schedule.eval_dense_until", f"must be >= 0, got {self.eval_dense_until}")
        if self.stop_test_acc is not None and not 0.0 < self.stop_test_acc <= 1.0:
            raise ConfigError("schedule.stop_test_acc", f"must be in (0, 1] or null, got {self.stop_test_acc}")
        terms = self.evaluation_terms()
        if sum(terms.values()) > MAX_EVALUATIONS:
            key = max(terms, key=lambda k: terms[k])
            raise ConfigError(
                f"schedule.{key}",
                f"plans about {sum(terms.values()):.3g} evaluations for {self.steps:,} steps; at most {MAX_EVALUATIONS:,} "
                f"(each writes a row per metric): change schedule.{key} or lower schedule.steps",
            )
        if self.snapshot_per_decade * (math.log10(self.steps) + 1) > MAX_SNAPSHOTS:
            raise ConfigError("schedule.snapshot_per_decade", f"plans more than {MAX_SNAPSHOTS:,} weight snapshots; lower it")

    def evaluation_terms(self) -> dict[str, float]:
        """Upper bounds of the evaluation steps `training/schedule.eval_steps` lists, by the key that makes them
        (dense, log-spaced, gap filling), computed without listing them."""
        return {
            "eval_every": min(self.eval_dense_until, self.steps) / self.eval_every + 2,
            "eval_per_decade": self.eval_per_decade * (math.log10(self.steps) + 1),
            "eval_max_gap": self.steps / self.eval_max_gap,
        }


@dataclass
class MeasuresConfig:
    """Which progress measures to log, and on which evaluations.

    `every` maps a measure name to a cadence in evaluations (1 = every
    evaluation); measures not listed use their own default cadence. Each measure's own
    keys (`measures.rank_on`, ...) come from the config dataclass it registers with; the
    resolved section holds them all (config/loading.py).
    """

    enabled: list[str] = field(default_factory=lambda: ["loss_acc", "weight_norm", "med"])
    every: dict[str, int] = field(default_factory=dict)

    def validate(self) -> None:
        """Values only; that the names are registered measures is checked where configs are resolved (config/loading.py)."""
        if "loss_acc" not in self.enabled:
            raise ConfigError("measures.enabled", "must include loss_acc (grokking events and progress read it)")
        if len(set(self.enabled)) != len(self.enabled):
            raise ConfigError("measures.enabled", f"lists a measure twice: {self.enabled}")
        for name, k in self.every.items():
            if not isinstance(k, int) or isinstance(k, bool) or k < 1:
                raise ConfigError(f"measures.every.{name}", f"must be an integer >= 1, got {k!r}")


@dataclass
class EventsConfig:
    """Thresholds that define the grokking events t_fit and t_grok."""

    fit_threshold: float = 0.99
    grok_threshold: float = 0.99
    surge_rise: float = 0.1  # a generalization stage: test accuracy rises >= this (absolute) ...
    surge_window: int = 10  # ... within this many evaluations, after a plateau
    rank_prominence: float = 0.1  # rank double descent: each fall/rise at least this fraction of the rank's range
    loss_peak_prominence: float = 0.1  # test-loss double descent: the peak rises and falls >= this, in decades (log10) of the loss

    def validate(self) -> None:
        for name in ("fit_threshold", "grok_threshold", "surge_rise", "rank_prominence"):
            v = getattr(self, name)
            if not 0.0 < v <= 1.0:
                raise ConfigError(f"events.{name}", f"must be in (0, 1], got {v}")
        if not 0.0 < self.loss_peak_prominence < float("inf"):
            raise ConfigError(
                "events.loss_peak_prominence", f"must be > 0 and finite (decades of the loss), got {self.loss_peak_prominence}"
            )
        if self.surge_window < 1:
            raise ConfigError("events.surge_window", f"must be >= 1, got {self.surge_window}")


TRACKER_SINKS = ("tensorboard", "wandb")


@dataclass
class RunConfig:
    """Run metadata and execution: name, model seed, device and precision."""

    name: str = ""
    seed: int = 0  # model init, minibatch order and dropout; the data split has task.seed
    device: str = "auto"  # auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N, mps
    dtype: Literal["float32", "float64"] = "float32"
    notes: str = ""
    log_to: list[str] = field(default_factory=list)  # live tracker sinks besides the store: tensorboard, wandb
    wandb_project: str = "groklab"  # the W&B project runs log to (WANDB_MODE=offline is honoured)

    def validate(self) -> None:
        bad = [s for s in self.log_to if s not in TRACKER_SINKS]
        if bad:
            raise ConfigError("run.log_to", f"unknown sink {bad[0]!r}; choose from {', '.join(TRACKER_SINKS)}")
        if len(set(self.log_to)) != len(self.log_to):
            raise ConfigError("run.log_to", f"a sink is named twice in {self.log_to}")
        if "wandb" in self.log_to and not self.wandb_project.strip():
            raise ConfigError("run.wandb_project", "must name a W&B project with run.log_to=[wandb]")
        ok = self.device in ("auto", "cpu", "cuda", "mps") or re.fullmatch(r"cuda:[0-9]+", self.device) is not None
        if not ok:
            raise ConfigError("run.device", f"unknown device {self.device!r}; choose auto, cpu, cuda, cuda:N or mps")


@dataclass
class ExperimentConfig:
    """Everything that defines one run. Saved, resolved, with every run."""

    task: TaskConfig = field(default_factory=TaskConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    measures: MeasuresConfig = field(default_factory=MeasuresConfig)
    events: EventsConfig = field(default_factory=EventsConfig)
    run: RunConfig = field(default_factory=RunConfig)
    preset: str = ""  # the preset it was built from, for the record

    def validate(self) -> None:
        for section in (self.task, self.model, self.optim, self.schedule, self.measures, self.events, self.run):
            section.validate()
        for key, seed in (("task.seed", self.task.seed), ("run.seed", self.run.seed)):
            if not 0 <= seed <= MAX_SEED:
                raise ConfigError(key, f"must be between 0 and {MAX_SEED} (2**32 - 1), got {seed}")
