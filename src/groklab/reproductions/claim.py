"""What a reproduction declares: a `Recipe` of `Claim`s, each naming the sweeps it needs at a scale, its judge
and the paper's statement. The runner (runner.py) does the rest once for every paper."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from groklab.registry import Registry

if TYPE_CHECKING:
    from groklab.reproductions.evidence import Evidence

SCALES = ("smoke", "quick", "paper")
# smoke: every sweep of the paper's plan, each run this many steps (proves the full version's code path, decides nothing)
SMOKE_STEPS = 3
SMOKE_OVERRIDES = tuple(  # evaluated at the start and the end, one checkpoint
    f"schedule.{key}={SMOKE_STEPS}" for key in ("steps", "eval_every", "eval_dense_until", "eval_max_gap", "checkpoint_every")
)
SMOKE_SEEDS = 1  # the default at the smoke scale: one seed proves the code path


@dataclass(frozen=True)
class Setting:
    """What one invocation asked for: the scale, seeds per point, the user's overrides and the recipe's options."""

    scale: str
    seeds: int
    overrides: tuple[str, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def plan(self) -> str:
        """Which of the recipe's plans the sweeps follow: the paper's at the smoke scale, cut to a handful of steps."""
        return "paper" if self.scale == "smoke" else self.scale

    @property
    def suffix(self) -> str:
        """The stored sweeps' name suffix: none at the paper's scale (the names runs were always stored under)."""
        return "" if self.scale == "paper" else f"-{self.scale}"


@dataclass(frozen=True)
class Need:
    """One stored sweep a claim needs: preset, fixed overrides, grid (`KEY=VALUES` items) and seeds (None: the
    invocation's). Two claims that need a sweep of the same name share it: it trains once."""

    name: str  # stored as name + the scale's suffix
    preset: str
    overrides: tuple[str, ...] = ()
    grid: tuple[str, ...] = ()
    seeds: int | None = None
    smoke: tuple[str, ...] = ()  # at the smoke scale only: where the paper's evaluation alone would take a CPU an hour


Row = dict[str, str]


@dataclass(frozen=True)
class Claim:
    """One claim of a paper: `needs(setting)` maps a label to the sweep it reads (an empty mapping where this scale
    cannot test it; its judge then says why), `judge(evidence)` returns its rows."""

    name: str
    statement: str  # the paper's statement, with its figure or table
    needs: Callable[[Setting], dict[str, Need]]
    judge: Callable[[Evidence], list[Row]]


@dataclass(frozen=True)
class Option:
    """A recipe's own command-line option (`--NAME VALUE`, `options={NAME: VALUE}` in the API)."""

    help: str
    parse: Callable[[str], Any]


@dataclass(frozen=True)
class Recipe:
    """A paper's reproduction: its claims, the notes of its plans, the data it reads and the figures it draws."""

    name: str
    title: str
    seeds: int  # per point at the quick and paper scales, unless --seeds says otherwise
    claims: tuple[Claim, ...]
    notes: dict[str, str]  # per plan ("quick", "paper"): what it trains
    check: Callable[[Setting], None] | None = None  # data the sweeps read, beyond the configs (MNIST's files)
    figures: Callable[[Evidence, Path], list[Path]] | None = None  # drawn from the sweeps trained this time
    options: dict[str, Option] = field(default_factory=dict)

    def claim(self, name: str) -> Claim:
        for c in self.claims:
            if c.name == name:
                return c
        from groklab.errors import ConfigError

        raise ConfigError("--claim", f"unknown claim {name!r} of {self.name}; choose one of {', '.join(c.name for c in self.claims)}")


RECIPES: Registry[Recipe] = Registry("paper")


def register(recipe: Recipe) -> Recipe:
    """A recipe's one registration, as tasks, models and measures have theirs."""
    return RECIPES.register(recipe.name, summary=recipe.title)(recipe)


def claim_row(claim: str, paper: str, measured: str, ok: bool | None) -> Row:
    """One row of a claim table: PASS or FAIL when the runs decided it, n/a (ok None) when they could not."""
    return {"claim": claim, "paper": paper, "measured": measured, "result": "n/a" if ok is None else ("PASS" if ok else "FAIL")}


class Rows(list[Row]):
    """A judge's rows as it adds them."""

    def add(self, claim: str, paper: str, measured: str, ok: bool | None) -> None:
        self.append(claim_row(claim, paper, measured, ok))


def format_table(rows: list[Row]) -> str:
    """Each claim with the paper's value, the measured one, and PASS, FAIL or n/a."""
    lines = []
    for r in rows:
        lines.append(f"[{r['result']:>4s}] {r['claim']}")
        lines.append(f"         paper:    {r['paper']}")
        lines.append(f"         measured: {r['measured']}")
    return "\n".join(lines)
