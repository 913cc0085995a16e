"""The one runner every recipe goes through: plan the sweeps its chosen claims need at a scale, check every config
before anything trains, continue or create each sweep (a sweep two claims need trains once), judge, write
claims.json and draw. Its estimate is the same plan priced with step costs measured on this device."""

from __future__ import annotations

import json
import platform
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from groklab.errors import ConfigError, GroklabError
from groklab.reproductions.claim import SMOKE_OVERRIDES, SMOKE_SEEDS, SMOKE_STEPS, Claim, Need, Recipe, Row, Setting
from groklab.reproductions.evidence import Evidence
from groklab.store import COMPLETED, Store
from groklab.sweeps.local import sweep_status
from groklab.sweeps.named import stored_as
from groklab.sweeps.spec import SweepSpec, spec_from_cli
from groklab.version import __version__

Train = Callable[[Store, str], Any]


def setting_for(recipe: Recipe, scale: str, seeds: int | None, overrides: list[str], options: dict[str, Any]) -> Setting:
    """The invocation's setting, its options parsed by the recipe (an option it does not have is refused)."""
    from groklab.reproductions.claim import RECIPES, SCALES

    if scale not in SCALES:
        raise ConfigError("--scale", f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    seeds = (SMOKE_SEEDS if scale == "smoke" else recipe.seeds) if seeds is None else seeds
    if seeds < 1:
        raise ConfigError("--seeds", f"must be >= 1, got {seeds}")
    parsed = {}
    for name, value in options.items():
        if value is None:
            continue
        if name not in recipe.options:
            having = [r for r in RECIPES if name in RECIPES.get(r).options]
            raise ConfigError(f"--{name}", f"only for {', '.join(having) or 'no reproduction'}, not {recipe.name}")
        parsed[name] = recipe.options[name].parse(str(value)) if isinstance(value, str) else value
    return Setting(scale, seeds, tuple(overrides), parsed)


def select(recipe: Recipe, names: list[str] | None) -> list[Claim]:
    """The claims asked for, in the recipe's order; all of them when none is named."""
    if not names:
        return list(recipe.claims)
    wanted = {recipe.claim(n).name for n in names}
    return [c for c in recipe.claims if c.name in wanted]


@dataclass
class Planned:
    """One sweep of the plan: what it is, its spec, the claims that read it, its points once checked."""

    need: Need
    spec: SweepSpec
    claims: list[str]
    points: list[dict[str, Any]] = field(default_factory=list)


def plan(recipe: Recipe, setting: Setting, claims: list[Claim]) -> dict[str, Planned]:
    """label -> the sweep it names, each once, at the setting's scale (the smoke scale cuts every run short)."""
    out: dict[str, Planned] = {}
    names: dict[str, str] = {}
    for claim in claims:
        for label, need in claim.needs(setting).items():
            if setting.scale == "smoke":
                need = replace(need, overrides=(*need.overrides, *need.smoke, *SMOKE_OVERRIDES))
            if label in out:
                if out[label].need != need:
                    raise RuntimeError(f"recipe {recipe.name}: two claims mean two sweeps by {label!r}")
                out[label].claims.append(claim.name)
                continue
            stored = need.name + setting.suffix
            if names.setdefault(stored, label) != label:
                raise RuntimeError(f"recipe {recipe.name}: sweeps {names[stored]!r} and {label!r} share the name {stored!r}")
            seeds = need.seeds or setting.seeds
            spec = spec_from_cli(need.preset, list(need.overrides), list(need.grid), seeds, stored, allow_one=True)
            out[label] = Planned(need, spec, [claim.name])
    return out


def check(recipe: Recipe, setting: Setting, planned: dict[str, Planned]) -> None:
    """Every point of every sweep resolved, and the data they read found: bad input fails before anything is written."""
    if recipe.check is not None:
        recipe.check(setting)
    for p in planned.values():
        p.points = p.spec.plan()


@dataclass
class Prepared:
    """An invocation checked: its recipe, setting, claims and planned sweeps, every point resolved."""

    recipe: Recipe
    setting: Setting
    claims: list[Claim]
    planned: dict[str, Planned]
    every: bool  # every claim of the recipe


def prepare(recipe: Recipe, setting: Setting, names: list[str] | None) -> Prepared:
    """Plan and check: bad input fails here, before a store or a folder is made."""
    claims = select(recipe, names)
    planned = plan(recipe, setting, claims)
    check(recipe, setting, planned)
    return Prepared(recipe, setting, claims, planned, not names)


def reproduce(prepared: Prepared, store: Store, out_dir: Path, train: Train, echo: Callable[[str], Any] = print) -> list[Row]:
    """Train (or continue) what the chosen claims need, judge them, write claims.json and the figures in `out_dir`."""
    recipe, setting, claims, planned = prepared.recipe, prepared.setting, prepared.claims, prepared.planned
    started = time.time()
    shown = "every claim" if prepared.every else "claim(s) " + ", ".join(c.name for c in claims)
    echo(f"{recipe.name} reproduction, {setting.scale} scale ({note(recipe, setting)}): {shown}; {setting.seeds} seed(s)")
    line = estimate_line(store, planned) if setting.scale != "smoke" and planned else None
    if line:
        echo(line)
    stored = {label: stored_as(store, p.spec) for label, p in planned.items()}  # one of other settings: refused before any trains
    sweeps: dict[str, str] = {}
    for label, p in planned.items():
        sweep_id = stored[label] or store.create_sweep(p.spec.name, p.spec.as_dict(), p.points)
        train(store, sweep_id)
        if sweep_status(store, sweep_id).get("interrupted"):
            raise KeyboardInterrupt  # Ctrl-C ends the reproduction, not just this sweep; the same command continues it
        sweeps[label] = sweep_id
    evidence = Evidence(store, setting, {label: p.need for label, p in planned.items()}, sweeps)
    rows = [judged(claim, row, setting) for claim in claims for row in claim.judge(evidence)]
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = recipe.figures(evidence, out_dir) if recipe.figures else []
    record = {
        "paper": recipe.name,
        "title": recipe.title,
        "scale": setting.scale,
        "seeds": setting.seeds,
        "overrides": list(setting.overrides),
        "options": {k: _plain(v) for k, v in setting.options.items()},
        "commit": commit(),
        "groklab": __version__,
        "device": device_text(planned),
        "wall_clock_s": round(time.time() - started, 1),
        "sweeps": sweeps,
        "claims": rows,
    }
    write_claims(out_dir / "claims.json", record, [c.name for c in recipe.claims])
    echo(f"figures ({len(figures)}) and claims.json in {out_dir}")
    return rows


def judged(claim: Claim, row: Row, setting: Setting) -> Row:
    """The row tagged with its claim's name; at the smoke scale n/a whatever it measured (a handful of steps)."""
    out = {"name": claim.name, **row}
    if setting.scale == "smoke":
        out["measured"] = f"smoke scale ({SMOKE_STEPS} steps a run) decides nothing; {row['measured']}"
        out["result"] = "n/a"
    return out


def note(recipe: Recipe, setting: Setting) -> str:
    text = recipe.notes.get(setting.plan, "")
    return f"the paper's plan, every run {SMOKE_STEPS} steps" if setting.scale == "smoke" else text


def write_claims(path: Path, record: dict[str, Any], order: list[str]) -> None:
    """claims.json: this invocation's rows, beside the rows of other claims judged earlier into the same folder at
    the same scale, seeds, overrides and options (running the claims one by one builds the whole table)."""
    from groklab.store.outputs import atomic_path

    same = ("paper", "scale", "seeds", "overrides", "options")
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        old = None
    if isinstance(old, dict) and all(old.get(k) == record[k] for k in same) and isinstance(old.get("claims"), list):
        judged_now = {r["name"] for r in record["claims"]}
        kept = [r for r in old["claims"] if isinstance(r, dict) and r.get("name") in order and r["name"] not in judged_now]
        rank = {name: i for i, name in enumerate(order)}
        record = {**record, "claims": sorted([*kept, *record["claims"]], key=lambda r: rank[r["name"]])}
        record["sweeps"] = {**(old.get("sweeps") if isinstance(old.get("sweeps"), dict) else {}), **record["sweeps"]}
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(record, indent=2))


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def commit() -> str | None:
    """The git commit groklab's source is at (`+dirty` with local changes), None outside a checkout."""
    here = Path(__file__).resolve()
    root = here.parents[3]
    if here.parents[2].name != "src" or not (root / "pyproject.toml").is_file():
        return None  # an installed copy: the folder around it is not groklab's checkout
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def device_text(planned: dict[str, Planned]) -> str:
    """The device the runs trained on, with the CPU's model (kernels round differently from one CPU to another)."""
    from groklab.config import from_dict
    from groklab.training.device import resolve_device

    devices = sorted({str(resolve_device(from_dict(p.points[0]["config"]).run.device)) for p in planned.values() if p.points})
    cpu = _cpu_model()
    gpu = ""
    if any(d.startswith("cuda") for d in devices):
        import torch

        gpu = f", {torch.cuda.get_device_name(0)}"
    return f"{', '.join(devices) or 'none'} ({cpu}{gpu})"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# ----- the estimate -------------------------------------------------------------------------------


@dataclass
class Cost:
    """One sweep's work: its runs and steps, how many runs are stored finished, the seconds the rest would take."""

    runs: int
    steps: int  # per run (the first point's)
    finished: int
    seconds: float
    stored: str  # "none", "N of M finished", or why the stored one cannot be continued


def costs(store: Store | None, planned: dict[str, Planned], cache: dict[str, float] | None = None) -> dict[str, Cost]:
    """Each sweep's cost: step costs measured now on the device its runs name (the first, a middle and the last
    distinct point; points between them interpolated), times the steps of the runs not yet finished."""
    from groklab.config import from_dict
    from groklab.training.step_cost import step_seconds

    cache = {} if cache is None else cache
    out = {}
    for p in planned.values():
        if not p.points:
            p.points = p.spec.plan()
        configs = [pt["config"] for pt in p.points]
        distinct = list(dict.fromkeys(_without_seed(c) for c in configs))
        picks = sorted({0, len(distinct) // 2, len(distinct) - 1})
        for i in picks:
            if distinct[i] not in cache:
                try:
                    cache[distinct[i]] = step_seconds(from_dict(json.loads(distinct[i])), seconds=0.3, warmup=2)
                except GroklabError:  # the data is not here (MNIST's files): the plan still lists, unpriced
                    cache[distinct[i]] = float("nan")
        per = [_between(picks, [cache[distinct[i]] for i in picks], distinct.index(_without_seed(c))) for c in configs]
        finished, stored = _stored(store, p.spec)
        todo = [(per[i], int(c["schedule"]["steps"])) for i, c in enumerate(configs) if i not in finished]
        out[p.spec.name] = Cost(len(configs), int(configs[0]["schedule"]["steps"]), len(finished), sum(s * n for s, n in todo), stored)
    return out


def _without_seed(config: dict[str, Any]) -> str:
    c = json.loads(json.dumps(config))
    c["run"].pop("seed", None)
    c["task"].pop("seed", None)
    return json.dumps(c, sort_keys=True)


def _between(xs: list[int], ys: list[float], x: int) -> float:
    lo = max((i for i in range(len(xs)) if xs[i] <= x), default=0)
    hi = min((i for i in range(len(xs)) if xs[i] >= x), default=len(xs) - 1)
    if xs[hi] == xs[lo]:
        return ys[lo]
    return ys[lo] + (ys[hi] - ys[lo]) * (x - xs[lo]) / (xs[hi] - xs[lo])


def _stored(store: Store | None, spec: SweepSpec) -> tuple[set[int], str]:
    """The points of the stored sweep of this name whose runs finished, and a word on it."""
    if store is None:
        return set(), "none stored"
    try:
        sweep_id = stored_as(store, spec)
    except GroklabError:
        return set(), "stored with other settings (refused: use another --runs-dir)"
    if sweep_id is None:
        return set(), "none stored"
    done = {pt for pt, rid in store.sweep_runs(sweep_id).items() if store.get(rid).status in COMPLETED}
    return done, f"{len(done)} of {len(spec.points())} stored finished"


def duration(seconds: float) -> str:
    if seconds != seconds:
        return "? (its step cost could not be measured here: are its data files in place?)"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"


def estimate_line(store: Store, planned: dict[str, Planned]) -> str | None:
    """The wall-clock of what is still to train, before it trains; None when everything is stored finished."""
    if all(len(_stored(store, p.spec)[0]) == len(p.points) for p in planned.values()):
        return None
    c = costs(store, planned)
    todo = sum(x.runs - x.finished for x in c.values())
    steps = sorted({x.steps for x in c.values()})
    shown = f"{steps[0]:,}" if len(steps) == 1 else f"{steps[0]:,}-{steps[-1]:,}"
    return (
        f"estimated wall-clock on {device_text(planned)}: {duration(sum(x.seconds for x in c.values()))} for {todo} of "
        f"{sum(x.runs for x in c.values())} runs x {shown} steps, one after another (vectorized ensembles can shorten it)"
    )


def listing(recipe: Recipe, store: Store | None, settings: list[Setting], names: list[str] | None) -> str:
    """Each claim with, per scale, its sweeps' runs and steps, the estimated wall-clock of what is not stored
    finished, and what is; then each scale's total, every sweep counted once."""
    claims = select(recipe, names)
    cache: dict[str, float] = {}
    per_scale = {}
    for s in settings:
        planned = plan(recipe, s, claims)
        per_scale[s.scale] = (planned, costs(store, planned, cache))  # costs resolves every point (the data files are the run's business)
    any_planned = next((pl for pl, _ in per_scale.values() if pl), {})
    lines = [f"{recipe.name}: {recipe.title}", f"estimates measured now on {device_text(any_planned)}, runs one after another", ""]
    for claim in claims:
        lines.append(f"{claim.name}: {claim.statement}")
        for s in settings:
            planned, c = per_scale[s.scale]
            mine = [c[p.spec.name] for p in planned.values() if claim.name in p.claims]
            if not mine:
                lines.append(f"  {s.scale:<6} not tested at this scale (the claim's row says why)")
                continue
            runs, left = sum(x.runs for x in mine), sum(x.seconds for x in mine)
            steps = sorted({x.steps for x in mine})
            shown = f"{steps[0]:,}" if len(steps) == 1 else f"{steps[0]:,}-{steps[-1]:,}"
            stored = "; ".join(sorted({x.stored for x in mine}))
            seeds = sorted({p.spec.seeds for p in planned.values() if claim.name in p.claims})  # a sweep may fix its own
            each = "/".join(map(str, seeds))
            lines.append(
                f"  {s.scale:<6} {len(mine)} sweep(s), {runs} runs x {shown} steps, {each} seed(s): ~{duration(left)} to go; {stored}"
            )
        lines.append("")
    totals = [f"{s.scale} ~{duration(sum(x.seconds for x in per_scale[s.scale][1].values()))}" for s in settings]
    lines.append("to go, each sweep once: " + " · ".join(totals))
    return "\n".join(lines)
