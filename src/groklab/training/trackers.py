"""Live tracker sinks (`run.log_to`): TensorBoard event files in the run's folder and Weights & Biases runs,
fed by the run loop as Reporters. The store stays the record; a sink only mirrors it, and none is required."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from groklab.config import ExperimentConfig, to_dict
from groklab.errors import ConfigError
from groklab.store.protocol import RunStore
from groklab.training.reporter import Fanout, Reporter

TENSORBOARD_DIR = "tensorboard"  # in the run's folder
EXTRAS = {"tensorboard": ("tensorboard", "tensorboard"), "wandb": ("wandb", "wandb")}  # sink -> (module, pip extra)


def check_sinks(cfg: ExperimentConfig) -> None:
    """Every sink asked for can be opened: its package imports. Raised before anything is written."""
    import importlib.util

    for sink in cfg.run.log_to:
        module, extra = EXTRAS[sink]
        if importlib.util.find_spec(module) is None:
            raise ConfigError("run.log_to", f"{sink} needs the {module} package: pip install 'groklab[{extra}]'")


def with_sinks(reporter: Reporter | None, configs: list[ExperimentConfig], store: RunStore) -> Reporter | None:
    """`reporter` plus the sinks the members' configs ask for (the members of one batch share run.log_to)."""
    sinks: list[Reporter] = []
    log_to = configs[0].run.log_to
    if "tensorboard" in log_to and hasattr(store, "run_dir"):  # a Ray task's store proxy has no folder: export afterwards
        sinks.append(TensorBoardSink(store))
    if "wandb" in log_to:
        sinks.append(WandbSink(configs, getattr(store, "run_dir", None)))
    if not sinks:
        return reporter
    return Fanout([*([reporter] if reporter is not None else []), *sinks])


class TensorBoardSink:
    """One SummaryWriter per run, writing to RUN_FOLDER/tensorboard. A resumed run's folder is rewritten from
    the store (the record, already cut back to the checkpoint) before it goes on, so TensorBoard shows each
    step once, whatever a killed process had written."""

    def __init__(self, store: RunStore) -> None:
        self.store = store
        self.writers: dict[str, Any] = {}

    def start(self, run_ids: list[str], total: int, step: int) -> None:
        from torch.utils.tensorboard import SummaryWriter

        for rid in run_ids:
            folder = Path(self.store.run_dir(rid)) / TENSORBOARD_DIR  # type: ignore[attr-defined]
            if step > 0:
                for old in folder.glob("events.out.tfevents.*"):
                    old.unlink()
            writer = self.writers[rid] = SummaryWriter(log_dir=str(folder))
            if step > 0:
                for name, (steps, values) in self.store.metrics(rid).items():
                    for s, v in zip(steps, values, strict=True):
                        writer.add_scalar(name, v, s)
                writer.flush()

    def step(self, step: int) -> None: ...

    def evaluated(self, step: int, metrics: dict[str, dict[str, float]]) -> None:
        for rid, values in metrics.items():
            writer = self.writers[rid]
            for name, value in values.items():
                writer.add_scalar(name, value, step)
            writer.flush()  # evaluations are sparse: written at once, a kill loses none of them

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()
        self.writers = {}


class WandbSink:
    """One W&B run per groklab run, with the run's id, name and resolved config. WANDB_MODE (offline,
    disabled) is left to W&B, so an offline run syncs later with `wandb sync`. W&B's files go to the run's
    folder (RUN_FOLDER/wandb) where the store is local, else to W&B's default."""

    def __init__(self, configs: list[ExperimentConfig], run_dir: Any = None) -> None:
        self.configs, self.run_dir = configs, run_dir
        self.runs: dict[str, Any] = {}

    def start(self, run_ids: list[str], total: int, step: int) -> None:
        import wandb

        for rid, cfg in zip(run_ids, self.configs, strict=True):
            self.runs[rid] = wandb.init(
                project=cfg.run.wandb_project,
                id=rid,
                name=cfg.run.name or rid,
                config=to_dict(cfg),
                resume="allow",  # a resumed groklab run continues its W&B run
                reinit="create_new",  # an ensemble's members are W&B runs open side by side
                dir=None if self.run_dir is None else str(self.run_dir(rid)),
            )

    def step(self, step: int) -> None: ...

    def evaluated(self, step: int, metrics: dict[str, dict[str, float]]) -> None:
        for rid, values in metrics.items():
            self.runs[rid].log(values, step=step)

    def close(self) -> None:
        for run in self.runs.values():
            run.finish()
        self.runs = {}
