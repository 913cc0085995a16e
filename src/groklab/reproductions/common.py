"""What several recipes share: arms (one sweep of a preset per arm), their figure, and the claim table's text."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from groklab.analysis.aggregate import mean_ci
from groklab.reproductions.claim import Need, Row, Setting, claim_row, format_table
from groklab.reproductions.evidence import Evidence
from groklab.sweeps.finished import RunView

P = TypeVar("P")


def plan_of(setting: Setting, full: P, quick: P) -> P:
    """The recipe's plan this setting follows: the paper's (also at the smoke scale) or the quick one."""
    return full if setting.plan == "paper" else quick


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


ArmsJudge = Callable[[dict[str, list[RunView]], dict[str, int]], list[Row]]


def arm_needs(name: str, preset: str, overrides: Callable[[str, Setting], list[str]], *arms: str) -> Callable[[Setting], dict[str, Need]]:
    """A claim's sweeps when it compares arms: each arm one sweep `NAME-ARM` of the preset with the arm's overrides."""

    def needs(setting: Setting) -> dict[str, Need]:
        return {arm: Need(f"{name}-{arm}", preset, tuple(overrides(arm, setting))) for arm in arms}

    return needs


def arm_judge(judge: ArmsJudge, *arms: str) -> Callable[[Evidence], list[Row]]:
    """A judge of arms' finished runs and budgets (steps), read from the evidence."""

    def read(ev: Evidence) -> list[Row]:
        return judge({a: ev.runs(a) for a in arms}, {a: ev.budget(a) for a in arms})

    return read


def arms_figure(name: str, panels: list[tuple[str, str]]) -> Callable[[Evidence, Path], list[Path]]:
    """The arms' figure, one panel per (metric, title), over the arms trained this time."""

    def draw(ev: Evidence, out_dir: Path) -> list[Path]:
        from groklab.plots.arms_figure import plot_arms

        if not ev.sweeps:
            return []
        return [plot_arms({arm: [v.m for v in ev.runs(arm)] for arm in ev.sweeps}, panels, out_dir / f"{name.replace('-', '_')}.png")]

    return draw


def mnist_files(cfg: Any) -> None:
    """Missing or corrupt MNIST files fail before anything is written."""
    from groklab.data.mnist import load, resolve_dir

    load(resolve_dir(cfg.task.data_dir))


__all__ = ["RunView", "arm_judge", "arm_needs", "arms_figure", "claim_row", "format_table", "mean_ci_text", "mnist_files", "plan_of"]
