"""Liu et al.'s (2022) phase diagram over two config keys: one stored sweep (seeds included), continued where it
stopped, each cell classified from its runs' stored events (analysis/phases.py), drawn and written as JSON."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from groklab.errors import ConfigError, GroklabError
from groklab.store import Store
from groklab.sweeps.finished import finished_runs
from groklab.sweeps.named import stored_as
from groklab.sweeps.spec import SweepSpec, spec_from_cli


@dataclass
class PhaseDiagram:
    """A classified grid: `table[(x, y)]` the cell's phase, `cells[(x, y)]` its runs' phases (one per seed)."""

    sweep_id: str
    axes: tuple[str, str]
    xs: list[Any]
    ys: list[Any]
    table: dict[tuple[Any, Any], str]
    cells: dict[tuple[Any, Any], list[str]]
    thresholds: list[tuple[float, float]]
    delay: int
    seeds: int
    out: Path
    figure: Path

    def grid_text(self) -> str:
        """Rows y (top: the last given), columns x; each cell its phase's first letters and how many seeds are in it."""
        width = max(10, *(len(_show(x)) for x in self.xs))
        lines = [f"{self.axes[1]} \\ {self.axes[0]}", " " * 12 + "".join(_show(x).rjust(width + 1) for x in self.xs)]
        for y in reversed(self.ys):
            row = _show(y).rjust(12)
            for x in self.xs:
                if (x, y) not in self.table:
                    row += "-".rjust(width + 1)
                    continue
                phase = self.table[(x, y)]
                row += f"{phase[:5]} {self.cells[(x, y)].count(phase)}/{len(self.cells[(x, y)])}".rjust(width + 1)
            lines.append(row)
        return "\n".join(lines)


def axis(flag: str, text: str) -> str:
    """The key of `KEY=VALUES`."""
    key, sep, values = text.partition("=")
    if not sep or not key.strip() or not values.strip():
        raise ConfigError(flag, f"{text!r} must look like KEY=VALUES, e.g. optim.lr=log:1e-4:1e-1:7")
    return key.strip()


def plan_diagram(
    preset: str, x: str, y: str, overrides: list[str], seeds: int, delay: int, name: str | None
) -> tuple[SweepSpec, list[dict[str, Any]], tuple[str, str]]:
    """The sweep's spec and resolved points: bad input fails here, before anything is written."""
    bad = [o for o in overrides if "=" not in o]
    if bad:
        raise GroklabError(f"overrides: {bad[0]!r} must look like key=value")
    axes = (axis("--x", x), axis("--y", y))
    if axes[0] == axes[1]:
        raise ConfigError("--y", f"must vary another key than --x, both are {axes[0]}")
    if seeds < 1:
        raise ConfigError("--seeds", f"must be >= 1, got {seeds}")
    if delay < 0:
        raise ConfigError("--delay", f"must be >= 0 steps, got {delay}")
    name = name or f"phase-diagram-{Path(preset).stem}-{axes[0]}-{axes[1]}"
    spec = spec_from_cli(preset, overrides, [x, y], seeds, name)
    return spec, spec.plan(), axes


def draw_diagram(
    store: Store,
    spec: SweepSpec,
    points: list[dict[str, Any]],
    axes: tuple[str, str],
    delay: int,
    out: Path | None,
    train: Callable[[Store, str], Any],
) -> PhaseDiagram:
    """Continue or create the sweep, train what is unfinished, classify every cell, draw it and write phases.json."""
    from groklab.analysis.phases import cell_phase, phase_of
    from groklab.plots.phase_diagram import plot_phase_diagram
    from groklab.store.outputs import atomic_path
    from groklab.sweeps import sweep_status

    try:
        sweep_id = stored_as(store, spec) or store.create_sweep(spec.name, spec.as_dict(), points)
    except ConfigError:
        raise ConfigError(
            "--name", f"a sweep named {spec.name!r} with other settings exists; give another --name to start a new diagram"
        ) from None
    train(store, sweep_id)
    if sweep_status(store, sweep_id).get("interrupted"):
        raise KeyboardInterrupt
    cells: dict[tuple[Any, Any], list[str]] = {}
    runs: dict[tuple[Any, Any], list[str]] = {}
    thresholds: set[tuple[float, float]] = set()
    for v in finished_runs(store, sweep_id):
        cell = ((v.values or {})[axes[0]], (v.values or {})[axes[1]])
        cells.setdefault(cell, []).append(phase_of(v.event("t_fit"), v.event("t_grok"), delay))
        runs.setdefault(cell, []).append(v.run_id)
        thresholds.add((v.key("events.fit_threshold"), v.key("events.grok_threshold")))
    xs, ys = _ordered(points, axes[0]), _ordered(points, axes[1])
    table = {cell: cell_phase(phases) for cell, phases in cells.items()}
    out = out or store.root / "phase-diagrams" / spec.name
    out.mkdir(parents=True, exist_ok=True)
    figure = plot_phase_diagram(list(axes), xs, ys, table, out / "phase_diagram.png", f"t_grok - t_fit > {delay} steps: grokking")
    data = {
        "sweep": sweep_id,
        "x": axes[0],
        "y": axes[1],
        "delay": delay,
        "thresholds": sorted(thresholds),
        "cells": [{"x": x, "y": y, "phase": table[(x, y)], "runs": runs[(x, y)]} for x in xs for y in ys if (x, y) in table],
    }
    with atomic_path(out / "phases.json") as tmp:
        tmp.write_text(json.dumps(data, indent=2))
    return PhaseDiagram(sweep_id, axes, xs, ys, table, cells, sorted(thresholds), delay, spec.seeds, out, figure)


def _ordered(plan: list[dict[str, Any]], key: str) -> list[Any]:
    """The axis's values as the config typed them, in the order the grid gave them."""
    typed: list[Any] = []
    for point in plan:
        if point["values"][key] not in typed:
            typed.append(point["values"][key])
    return typed


def _show(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
