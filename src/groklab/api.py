"""The Python API, mirroring the CLI: `groklab.run(config)` trains and returns a handle on the stored run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from groklab.config import ExperimentConfig, from_dict, resolve_config, to_dict
from groklab.config.loading import apply_overrides, parse_overrides
from groklab.errors import GroklabError
from groklab.store import RunRecord, Store, is_live

if TYPE_CHECKING:
    import torch


class Run:
    """A stored run: its record, metrics and grokking events, read from the store on demand."""

    def __init__(self, store: Store, run_id: str) -> None:
        self.store, self.id = store, run_id

    @property
    def record(self) -> RunRecord:
        return self.store.get(self.id)

    @property
    def status(self) -> str:
        return self.record.status

    @property
    def config(self) -> ExperimentConfig:
        return from_dict(self.record.config)

    def metrics(self, names: list[str] | None = None) -> dict[str, tuple[list[int], list[float]]]:
        """name -> (steps, values)."""
        return self.store.metrics(self.id, names)

    def final(self) -> dict[str, float]:
        """The last logged value of every metric."""
        return {name: values[-1] for name, (_, values) in self.metrics().items()}

    def events(self) -> dict[str, tuple[int | None, float | None]]:
        """t_fit, t_grok, delay, ... as name -> (step, value); computed from the curves if not yet stored."""
        from groklab.analysis.run_events import run_events

        return run_events(self.store, self.id)

    def steps_with_weights(self) -> list[int]:
        """The steps whose weights the run kept (schedule.snapshot_per_decade), ascending."""
        return self.store.weight_steps(self.id)

    def model(self, step: int | None = None) -> torch.nn.Module:
        """The network as it was at `step` (default: the last snapshot), in eval mode, on the CPU."""
        from groklab.store.weights import model_at

        return model_at(self.store, self.id, step)

    def __repr__(self) -> str:
        return f"Run({self.id!r}, status={self.status!r})"


def _as_config(config: ExperimentConfig | str | dict[str, Any] | None, overrides: list[str] | dict[str, Any] | None) -> ExperimentConfig:
    """Any accepted form of config, plus overrides, as a validated ExperimentConfig."""
    if isinstance(config, ExperimentConfig):
        config = to_dict(config)
    if isinstance(config, dict):
        ov = parse_overrides(overrides) if isinstance(overrides, list) else overrides or {}
        return from_dict(apply_overrides(config, ov))
    return resolve_config(config, overrides)


def run(
    config: ExperimentConfig | str | dict[str, Any] | None = None,
    overrides: list[str] | dict[str, Any] | None = None,
    runs_dir: str | Path | None = None,
    reporter: Any = None,
    on_prepared: Callable[[Any, Store], Any] | None = None,
) -> Run:
    """Train one run and return it.

    `config` is an ExperimentConfig, a preset name or YAML path (default: the
    `modular-addition` preset), or a nested dict; `overrides` are dotted keys,
    e.g. `["model.d_model=64"]` or `{"optim.weight_decay": 0.3}`. `on_prepared(prep, store)` is called once
    the run is built and checked, before anything is written (the CLI prints its banner there).
    """
    from groklab.training.runs import start_run
    from groklab.training.setup import prepare

    cfg = _as_config(config, overrides)
    prep = prepare(cfg)  # everything checked before the store is touched
    store = Store(runs_dir)
    if on_prepared is not None:
        on_prepared(prep, store)
    run_id, _ = start_run(prep, store, reporter)
    return Run(store, run_id)


def open_run(ref: str, runs_dir: str | Path | None = None) -> Run:
    """A handle on a stored run by id, id prefix, name or `last`."""
    store = Store(runs_dir, create=False)
    return Run(store, store.get(ref).id)


def resume(ref: str, runs_dir: str | Path | None = None, reporter: Any = None) -> Run:
    """Continue an interrupted run from its last checkpoint."""
    from groklab.training.runs import resume_run
    from groklab.training.setup import prepare

    store = Store(runs_dir, create=False)
    rec = store.get(ref)
    if rec.status in ("finished", "stopped"):
        raise GroklabError(f"run {rec.id} is already {rec.status}; nothing to resume")
    if rec.status == "diverged":
        raise GroklabError(f"run {rec.id} diverged ({rec.message}); resuming would diverge again")
    if is_live(rec):
        raise GroklabError(f"run {rec.id} is still running (pid {rec.pid})")
    cfg = from_dict(rec.config)
    prep = prepare(cfg)
    resume_run(prep, store, rec.id, reporter)
    return Run(store, rec.id)
