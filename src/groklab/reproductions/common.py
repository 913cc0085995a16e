"""What every reproduction shares: its sweeps continue where they stopped, and its claim table."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from groklab.analysis.aggregate import mean_ci
from groklab.analysis.events import first_crossing
from groklab.store import COMPLETED, Store
from groklab.sweeps import run_sweep, spec_from_cli, sweep_status


def continue_or_create(
    store: Store, preset: str, name: str, overrides: list[str], grid: list[str], seeds: int, train: Callable[[Store, str], Any]
) -> str:
    """Continue the stored sweep of this name, or create it; then train what is unfinished.

    A Ctrl-C that interrupted it ends the whole reproduction (KeyboardInterrupt), rather than letting it go
    on to its next sweep; running the same command again continues where it stopped."""
    existing = [sw for sw in store.sweeps() if sw.name == name]
    if existing:
        sweep_id = existing[-1].id
    else:
        spec = spec_from_cli(preset, overrides, grid, seeds, name)
        sweep_id = store.create_sweep(name, spec.as_dict(), spec.plan())
    train(store, sweep_id)
    if sweep_status(store, sweep_id).get("interrupted"):
        raise KeyboardInterrupt
    return sweep_id


def format_table(rows: list[dict[str, str]]) -> str:
    """Each claim with the paper's value, the measured one, and PASS, FAIL or n/a."""
    lines = []
    for r in rows:
        lines.append(f"[{r['result']:>4s}] {r['claim']}")
        lines.append(f"         paper:    {r['paper']}")
        lines.append(f"         measured: {r['measured']}")
    return "\n".join(lines)


def claim_row(claim: str, paper: str, measured: str, ok: bool | None) -> dict[str, str]:
    """One row of a claim table: PASS or FAIL when the runs decided it, n/a (ok None) when they could not."""
    return {"claim": claim, "paper": paper, "measured": measured, "result": "n/a" if ok is None else ("PASS" if ok else "FAIL")}


def mean_ci_text(
    values: list[float], fmt: str = "{:.4g}", within: tuple[float, float] | None = None, unit: str = "", over: str = ""
) -> str:
    """'mean [low, high]' (the 95% CI over seeds, clipped to `within`), then ' over N <over>' if given; the value
    alone for one seed, '-' for none."""
    if not values:
        return "-"
    if len(values) == 1:
        return fmt.format(values[0]) + unit
    mean, lo, hi = mean_ci(values, within=within)
    return f"{fmt.format(mean)}{unit} [{fmt.format(lo)}, {fmt.format(hi)}]" + (f" over {len(values)} {over}" if over else "")


@dataclass
class RunView:
    """One finished run, as the claims read it."""

    run_id: str
    seed: int
    m: dict[str, tuple[list[int], list[float]]]
    events: dict[str, tuple[int | None, float | None]]

    def curve(self, name: str) -> tuple[list[int], list[float]]:
        return self.m.get(name, ([], []))

    def event(self, name: str) -> int | None:
        return self.events.get(name, (None, None))[0]

    def at(self, name: str, step: int) -> float | None:
        """The metric's value at the last evaluation at or before `step`."""
        steps, values = self.curve(name)
        before = [v for s, v in zip(steps, values, strict=True) if s <= step]
        return before[-1] if before else None

    def final(self, name: str) -> float | None:
        values = self.curve(name)[1]
        return values[-1] if values else None

    def first(self, name: str, threshold: float) -> int | None:
        """The first evaluated step where the metric is >= threshold, None if it never gets there."""
        return first_crossing(*self.curve(name), threshold)

    def best(self, name: str) -> float | None:
        values = self.curve(name)[1]
        return max(values) if values else None


def collect(store: Store, sweep_id: str) -> list[RunView]:
    """The sweep's finished (or early-stopped) runs, in point order, each with its seed, metrics and events."""
    sweep = store.get_sweep(sweep_id)
    views = []
    for point, run_id in sorted(store.sweep_runs(sweep_id).items()):
        if store.get(run_id).status in COMPLETED:
            views.append(RunView(run_id, sweep.points[point].config["run"]["seed"], store.metrics(run_id), store.events(run_id)))
    return views


@dataclass
class Arms:
    """A reproduction's arms after training: each arm's sweep id, finished runs and budget in steps."""

    sweeps: dict[str, str]
    views: dict[str, list[RunView]]
    budgets: dict[str, int]


def train_arms(
    store: Store,
    preset: str,
    name: str,
    overrides: dict[str, list[str]],
    quick: bool,
    seeds: int,
    train: Callable[[Store, str], Any],
) -> Arms:
    """Each arm one stored sweep, `NAME-ARM` (`-quick` appended for the quick version), of the preset with the
    arm's overrides and `seeds` seeds: continued or created, then trained; then read back."""
    from groklab.config import resolve_config

    arms = Arms({}, {}, {})
    for arm, extra in overrides.items():
        sweep_id = continue_or_create(store, preset, f"{name}-{arm}" + ("-quick" if quick else ""), extra, [], seeds, train)
        arms.sweeps[arm], arms.views[arm] = sweep_id, collect(store, sweep_id)
        arms.budgets[arm] = resolve_config(preset, extra).schedule.steps
    return arms


def write_arms(out_dir: Path, arms: Arms, seeds: int, rows: list[dict[str, str]], panels: list[tuple[str, str]], figure: str) -> Path:
    """The arms' figure (one panel per (metric, title)) and claims.json in `out_dir`; returns the figure's path."""
    from groklab.plots.arms_figure import plot_arms

    out_dir.mkdir(parents=True, exist_ok=True)
    path = plot_arms({arm: [v.m for v in views] for arm, views in arms.views.items()}, panels, out_dir / figure)
    (out_dir / "claims.json").write_text(json.dumps({"sweeps": arms.sweeps, "seeds": seeds, "claims": rows}, indent=2))
    return path


def check_arms(preset: str, overrides: dict[str, list[str]]) -> list[Any]:
    """Every arm's config resolved, so that bad overrides fail before anything is written."""
    from groklab.config import resolve_config

    return [resolve_config(preset, extra) for extra in overrides.values()]


def reproduce_arms(
    store: Store,
    preset: str,
    name: str,
    overrides: dict[str, list[str]],
    quick: bool,
    seeds: int,
    out_dir: Path,
    train: Callable[[Store, str], Any],
    echo: Callable[[str], Any],
    note: str,
    claims: Callable[[dict[str, list[RunView]], dict[str, int]], list[dict[str, str]]],
    panels: list[tuple[str, str]],
) -> list[dict[str, str]]:
    """A reproduction made of arms: train (or continue) them, judge the claims, write `NAME.png` and claims.json."""
    echo(f"{name} reproduction ({note}); {seeds} seed(s)")
    arms = train_arms(store, preset, name, overrides, quick, seeds, train)
    rows = claims(arms.views, arms.budgets)
    figure = write_arms(out_dir, arms, seeds, rows, panels, f"{name.replace('-', '_')}.png")
    echo(f"figure {figure.name} and claims.json in {out_dir}")
    return rows


def _train_here(store: Store, sweep_id: str) -> Any:
    return run_sweep(store, sweep_id)


@dataclass(frozen=True)
class ArmsRecipe:
    """A reproduction made of arms, each a sweep of one preset with its own overrides (`arm_overrides(arm,
    plan, extra)`): the `check` and `reproduce` its module exposes, written once for every such recipe."""

    preset: str
    name: str
    arms: tuple[str, ...]
    full: Any  # the paper's plan: its overrides, budget and `note`
    quick: Any  # the quick version's
    arm_overrides: Callable[[str, Any, list[str]], list[str]]
    claims: Callable[[dict[str, list[RunView]], dict[str, int]], list[dict[str, str]]]
    panels: list[tuple[str, str]]
    check_data: Callable[[Any], Any] | None = None  # reads the data an arm's resolved config needs (MNIST's files)

    def overrides_by_arm(self, quick: bool, overrides: list[str]) -> dict[str, list[str]]:
        plan = self.quick if quick else self.full
        return {arm: self.arm_overrides(arm, plan, overrides) for arm in self.arms}

    def check(self, quick: bool, overrides: list[str]) -> None:
        """Bad overrides (and missing data files) fail before anything is written."""
        cfg = check_arms(self.preset, self.overrides_by_arm(quick, overrides))[-1]
        if self.check_data is not None:
            self.check_data(cfg)

    def reproduce(
        self,
        store: Store,
        quick: bool,
        seeds: int,
        out_dir: Path,
        train: Callable[[Store, str], Any] = _train_here,
        overrides: list[str] | None = None,
        echo: Callable[[str], Any] = print,
    ) -> list[dict[str, str]]:
        """Train (or continue) every arm's seeds, draw the figure, and return the claim table."""
        self.check(quick, overrides or [])
        by_arm = self.overrides_by_arm(quick, overrides or [])
        note = (self.quick if quick else self.full).note
        return reproduce_arms(store, self.preset, self.name, by_arm, quick, seeds, out_dir, train, echo, note, self.claims, self.panels)
