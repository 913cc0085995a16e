"""The Python API, mirroring the CLI, for scripts and notebooks: `run`, `resume`, `sweep`, `reproduce` train and
return handles on what they stored; `open_run` and `open_sweep` find stored ones. Tables come back as pandas
DataFrames (`to_frame`, the `pandas` extra), figures as matplotlib Figures, progress as tqdm.auto bars."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from groklab.config import ExperimentConfig, from_dict, resolve_config, to_dict
from groklab.config.loading import apply_overrides, parse_overrides
from groklab.errors import GroklabError
from groklab.store import COMPLETED, RunRecord, Store, SweepRecord, default_runs_dir, is_live

if TYPE_CHECKING:
    import pandas
    import torch
    from matplotlib.figure import Figure

    from groklab.reproductions.phase_diagram import PhaseDiagram


def _frame(columns: list[str], rows: list[list[Any]]) -> pandas.DataFrame:
    try:
        import pandas
    except ImportError:
        raise GroklabError("to_frame() needs pandas: pip install 'groklab[pandas]'") from None
    return pandas.DataFrame(rows, columns=columns)


def _progress(progress: bool, reporter: Any) -> Any:
    if reporter is not None or not progress:
        return reporter
    from groklab.training.progress import ProgressBar

    return ProgressBar()


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

    def to_frame(self, layout: str = "long") -> pandas.DataFrame:
        """The run's metrics as a DataFrame: long = a row per (step, metric), wide = a row per step; every
        config key (dotted) and the grokking events are columns too."""
        from groklab.analysis.tidy import run_table

        _check_layout(layout)
        return _frame(*run_table(self.store, self.id, layout))

    def plot(self, path: str | Path | None = None) -> Figure:
        """The standard grokking figure (accuracy, loss, weight norm, MED on a log-step axis); written to
        `path` (.png, .svg, .pdf) only if given."""
        from groklab.plots import draw_run
        from groklab.plots.canvas import figure_file, save_figure

        target = figure_file(path) if path else None  # format and folder checked before drawing
        fig = draw_run(self.store, self.id)
        if target is not None:
            save_figure(fig, target)
        return fig

    def report(self, path: str | Path) -> Path:
        """A self-contained interactive HTML report of the run (see `groklab report`)."""
        from groklab.reports import write_run_report

        return write_run_report(self.store, self.id, path)

    def __repr__(self) -> str:
        return f"Run({self.id!r}, status={self.status!r})"


def _check_layout(layout: str) -> None:
    if layout not in ("long", "wide"):
        raise GroklabError(f"layout: unknown layout {layout!r}; choose long or wide")


class Sweep:
    """A stored sweep: its points, its runs (as they start) and their results across seeds."""

    def __init__(self, store: Store, sweep_id: str) -> None:
        self.store, self.id = store, sweep_id

    @property
    def record(self) -> SweepRecord:
        return self.store.get_sweep(self.id)

    @property
    def points(self) -> list[dict[str, Any]]:
        """Each point's grid values (seed included), in order."""
        return [dict(p.values) for p in self.record.points]

    def runs(self) -> list[Run | None]:
        """Per point, its run (None for a point not started yet)."""
        linked = self.store.sweep_runs(self.id)
        return [Run(self.store, linked[i]) if i in linked else None for i in range(len(self.record.points))]

    def status(self) -> dict[str, int]:
        """How many points are pending, running, finished, ..."""
        from groklab.sweeps import sweep_status

        return sweep_status(self.store, self.id)

    def summary(self) -> list[dict[str, Any]]:
        """Per grid point (seeds pooled): final accuracies and losses (mean, 95% CI) and the events' statistics."""
        from groklab.sweeps.results import summarize

        return summarize(self.store, self.record)

    def to_frame(self, layout: str = "long", all_config: bool = False) -> pandas.DataFrame:
        """Every started run's metrics as one DataFrame (what `groklab export SWEEP` writes): sweep, point, run,
        status, the varied keys (every config key with `all_config`), seed and the events as columns."""
        from groklab.analysis.tidy import sweep_table

        _check_layout(layout)
        return _frame(*sweep_table(self.store, self.record, layout, all_config))

    def plot(self, x: str | None = None, path: str | Path | None = None) -> Figure:
        """Final accuracy against the swept key `x` (default: the only one), the steps × x heatmap and the
        curves; written to `path` only if given."""
        from groklab.plots import draw_sweep
        from groklab.plots.canvas import figure_file, save_figure

        target = figure_file(path) if path else None
        fig = draw_sweep(self.store, self.record, x)
        if target is not None:
            save_figure(fig, target)
        return fig

    def report(self, path: str | Path) -> Path:
        """A self-contained interactive HTML report of the sweep (see `groklab report`)."""
        from groklab.reports import write_sweep_report

        return write_sweep_report(self.store, self.record, path)

    def __repr__(self) -> str:
        counts = ", ".join(f"{n} {k}" for k, n in sorted(self.status().items()))
        return f"Sweep({self.id!r}, {len(self.record.points)} points: {counts})"


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
    progress: bool = False,
) -> Run:
    """Train one run and return it.

    `config` is an ExperimentConfig, a preset name or YAML path (default: the
    `modular-addition` preset), or a nested dict; `overrides` are dotted keys,
    e.g. `["model.d_model=64"]` or `{"optim.weight_decay": 0.3}`. `on_prepared(prep, store)` is called once
    the run is built and checked, before anything is written (the CLI prints its banner there).
    `progress=True` draws a progress bar (a widget in Jupyter) unless a `reporter` is given.
    """
    from groklab.training.runs import start_run
    from groklab.training.setup import prepare

    cfg = _as_config(config, overrides)
    prep = prepare(cfg)  # everything checked before the store is touched
    store = Store(runs_dir)
    if on_prepared is not None:
        on_prepared(prep, store)
    run_id, _ = start_run(prep, store, _progress(progress, reporter))
    return Run(store, run_id)


def open_run(ref: str, runs_dir: str | Path | None = None) -> Run:
    """A handle on a stored run by id, id prefix, name or `last`."""
    store = Store(runs_dir, create=False)
    return Run(store, store.get(ref).id)


def resume(ref: str, runs_dir: str | Path | None = None, reporter: Any = None, progress: bool = False, from_scratch: bool = False) -> Run:
    """Continue an interrupted run from its last checkpoint (`from_scratch`: from step 0, for a damaged one)."""
    from groklab.training.runs import resume_run
    from groklab.training.setup import prepare

    store = Store(runs_dir, create=False)
    rec = store.get(ref)
    if rec.status in COMPLETED:
        raise GroklabError(f"run {rec.id} is already {rec.status}; nothing to resume")
    if rec.status == "diverged":
        raise GroklabError(f"run {rec.id} diverged ({rec.message}); resuming would diverge again")
    if rec.status == "damaged":
        raise GroklabError(f"run {rec.id}: {rec.message}")
    if is_live(rec):
        raise GroklabError(f"run {rec.id} is still running (pid {rec.pid})")
    cfg = from_dict(rec.config)
    prep = prepare(cfg)
    resume_run(prep, store, rec.id, _progress(progress, reporter), from_scratch)
    return Run(store, rec.id)


def sweep(
    config: str | None = None,
    overrides: list[str] | dict[str, Any] | None = None,
    grid: dict[str, list[Any] | str] | None = None,
    seeds: int = 1,
    name: str = "",
    runs_dir: str | Path | None = None,
    workers: int = 1,
    max_ensemble: int | None = None,
    pad_widths: bool | None = None,
    progress: bool = True,
) -> Sweep:
    """Train a grid of configs × seeds, as `groklab sweep` does, and return the stored sweep.

    `config` is a preset name or YAML path (default: the `modular-addition` preset); `grid` maps dotted keys to
    a list of values or to the CLI's forms (`"0.1,0.3,1"`, `"1:149:2"`, `"log:1e-4:1:9"`); seeds set
    run.seed = S..S+N-1. Every point is checked before anything is written.
    """
    from groklab.sweeps import spec_from_cli, train_locally
    from groklab.sweeps.planning import check_ensembles_fit

    if workers < 1:
        raise GroklabError(f"workers: must be >= 1, got {workers}")
    if max_ensemble is not None and max_ensemble < 1:
        raise GroklabError(f"max_ensemble: must be >= 1, got {max_ensemble}")
    spec = spec_from_cli(config, _override_list(overrides), [], seeds, name)
    for key, values in (grid or {}).items():
        spec.grid[key] = _grid_values(key, values)
    points = spec.plan()  # every point checked before the store is touched
    check_ensembles_fit([from_dict(p["config"]) for p in points], max_ensemble, pad_widths, "max_ensemble")
    store = Store(runs_dir)
    execution = {"max_ensemble": max_ensemble, "pad_widths": pad_widths, "workers": workers}
    sweep_id = store.create_sweep(spec.name, {**spec.as_dict(), "execution": execution}, points)
    train_locally(store, sweep_id, progress, workers, max_ensemble, pad_widths)
    return Sweep(store, sweep_id)


def open_sweep(ref: str, runs_dir: str | Path | None = None) -> Sweep:
    """A handle on a stored sweep by id, id prefix or name."""
    store = Store(runs_dir, create=False)
    return Sweep(store, store.get_sweep(ref).id)


def resume_sweep(ref: str, runs_dir: str | Path | None = None, workers: int | None = None, progress: bool = True) -> Sweep:
    """Continue an interrupted sweep with the options it was started with: points finished are kept,
    interrupted ones resume, the rest start."""
    from groklab.sweeps import train_locally
    from groklab.sweeps.spec import execution_options

    store = Store(runs_dir, create=False)
    sweep = store.get_sweep(ref)
    o = execution_options(sweep.spec.get("execution", {}), {"workers": workers})
    train_locally(store, sweep.id, progress, o["workers"], o["max_ensemble"], o["pad_widths"])
    return Sweep(store, sweep.id)


def _override_list(overrides: list[str] | dict[str, Any] | None) -> list[str]:
    """Overrides as the CLI's `key=value` strings (a dict's values written as YAML)."""
    from groklab.sweeps.spec import override_strings

    if overrides is None:
        return []
    return override_strings(overrides) if isinstance(overrides, dict) else list(overrides)


def _grid_values(key: str, values: list[Any] | tuple[Any, ...] | str) -> list[Any]:
    from groklab.errors import ConfigError
    from groklab.sweeps.spec import parse_values

    if isinstance(values, str):
        return parse_values(key, values)
    if not isinstance(values, list | tuple) or not values:
        raise ConfigError(f"grid {key}", f"must be a non-empty list of values or a string like '0.1,0.3,1', got {values!r}")
    return list(values)


class Reproduction:
    """A paper's reproduction as it ended: the claim table, where its figures, claims.json and report.html are."""

    def __init__(self, paper: str, claims: list[dict[str, str]], out: Path, store: Store) -> None:
        self.paper, self.claims, self.out, self.store = paper, claims, out, store

    @property
    def report_path(self) -> Path:
        return self.out / "report.html"

    def counts(self) -> dict[str, int]:
        """PASS, FAIL and n/a counts."""
        return {r: sum(c["result"] == r for c in self.claims) for r in ("PASS", "FAIL", "n/a")}

    def to_frame(self) -> pandas.DataFrame:
        """The claim table: claim, paper, measured, result."""
        columns = ["claim", "paper", "measured", "result"]
        return _frame(columns, [[c[k] for k in columns] for c in self.claims])

    def sweeps(self) -> list[Sweep]:
        """The stored sweeps the claims were judged on."""
        import json

        from groklab.reports.build import sweep_ids

        return [Sweep(self.store, sid) for _, sid in sweep_ids(json.loads((self.out / "claims.json").read_text()))]

    def __repr__(self) -> str:
        counts = ", ".join(f"{n} {k}" for k, n in self.counts().items())
        return f"Reproduction({self.paper!r}: {counts}; {self.out})"


def _setting(
    paper: str, scale: str | None, quick: bool, seeds: int | None, overrides: Any, options: dict[str, Any] | None
) -> tuple[Any, Any]:
    """The recipe and the invocation's setting; `quick=True` is `scale="quick"`."""
    from groklab.reproductions import RECIPES
    from groklab.reproductions.runner import setting_for

    recipe = RECIPES.get(paper, "paper")
    if quick and scale not in (None, "quick"):
        raise GroklabError(f"--quick: is --scale quick; it cannot go with --scale {scale}")
    extra = _override_list(overrides)
    bad = [o for o in extra if "=" not in o]
    if bad:
        raise GroklabError(f"overrides: {bad[0]!r} must look like key=value")
    return recipe, setting_for(recipe, scale or ("quick" if quick else "paper"), seeds, extra, options or {})


def reproduce(
    paper: str,
    quick: bool = False,
    seeds: int | None = None,
    overrides: list[str] | dict[str, Any] | None = None,
    runs_dir: str | Path | None = None,
    out: str | Path | None = None,
    workers: int = 1,
    progress: bool = True,
    claims: list[str] | None = None,
    scale: str | None = None,
    options: dict[str, Any] | None = None,
) -> Reproduction:
    """Reproduce a paper as `groklab reproduce PAPER` does: train (or continue) the sweeps its claims need at the
    scale (smoke, quick or paper; `quick=True` is quick), judge them, draw the figures, write claims.json and
    report.html; `claims` names some of them (`groklab reproduce PAPER --list` names them all). `options` holds a
    recipe's own options, as double-descent's `{"dims": "1:80"}`. Returns the claim table as data."""
    from groklab.reports import write_reproduction_report
    from groklab.reproductions.runner import prepare
    from groklab.reproductions.runner import reproduce as run_claims
    from groklab.sweeps import train_locally

    recipe, setting = _setting(paper, scale, quick, seeds, overrides, options)
    if workers < 1:
        raise GroklabError(f"--workers: must be >= 1, got {workers}")
    prepared = prepare(recipe, setting, claims)  # bad overrides or missing data: fail before anything is written
    target = Path(out) if out else None
    if target is not None:
        from groklab.store.outputs import output_folder

        output_folder(target, "--out")
    store = Store(runs_dir)
    target = target or store.root / "reproduce" / (paper + setting.suffix)

    def train(store: Store, sweep_id: str) -> None:
        train_locally(store, sweep_id, progress, workers)

    rows = run_claims(prepared, store, target, train)
    write_reproduction_report(store, target, target / "report.html", paper)
    return Reproduction(paper, rows, target, store)


def reproduction_plan(
    paper: str,
    claims: list[str] | None = None,
    scale: str | None = None,
    seeds: int | None = None,
    overrides: list[str] | dict[str, Any] | None = None,
    runs_dir: str | Path | None = None,
    options: dict[str, Any] | None = None,
) -> str:
    """What `reproduce` would train, as `groklab reproduce PAPER --list` (every scale) or `--estimate` (one) prints it:
    each claim's sweeps, runs and steps per scale, the wall-clock estimated from step costs measured now on this
    device, and what is stored finished already. Trains and writes nothing."""
    from groklab.reproductions import SCALES
    from groklab.reproductions.runner import listing

    pairs = [_setting(paper, s, False, seeds, overrides, options) for s in ([scale] if scale else SCALES)]
    recipe, settings = pairs[0][0], [setting for _, setting in pairs]
    root = Path(runs_dir) if runs_dir is not None else default_runs_dir()
    store = Store(root, create=False) if (root / "groklab.db").exists() else None
    return listing(recipe, store, settings, claims)


def phase_diagram(
    preset: str,
    x: str,
    y: str,
    overrides: list[str] | dict[str, Any] | None = None,
    seeds: int = 3,
    delay: int = 1000,
    name: str | None = None,
    runs_dir: str | Path | None = None,
    out: str | Path | None = None,
    workers: int = 1,
    progress: bool = True,
) -> PhaseDiagram:
    """Liu et al.'s phase diagram, as `groklab phase-diagram` draws it: sweep `x` and `y` (`KEY=VALUES` each), train
    (or continue) the grid, classify every cell from its runs' events (grokking: t_grok - t_fit > `delay` steps),
    draw it and write phases.json. Returns the classified grid."""
    from groklab.reproductions.phase_diagram import draw_diagram, plan_diagram
    from groklab.sweeps import train_locally

    if workers < 1:
        raise GroklabError(f"--workers: must be >= 1, got {workers}")
    spec, points, axes = plan_diagram(preset, x, y, _override_list(overrides), seeds, delay, name)
    target = None
    if out is not None:
        from groklab.store.outputs import output_folder

        target = output_folder(out, "--out")  # before the sweep, which may take hours
    store = Store(runs_dir)

    def train(store: Store, sweep_id: str) -> None:
        train_locally(store, sweep_id, progress, workers)

    return draw_diagram(store, spec, points, axes, delay, target, train)
