"""`groklab phase-diagram PRESET --x KEY=VALUES --y KEY=VALUES`: Liu et al.'s (2022) phase diagram.

The grid (seeds included) is one stored sweep, trained as vectorized ensembles where the points allow;
every cell is classified from its runs' stored events (analysis/phases.py) and drawn. Running the same
command again continues the sweep where it stopped.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from groklab.errors import ConfigError, GroklabError


def add_phase_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "phase-diagram",
        help="sweep two config keys and classify every cell: comprehension, grokking, memorization or confusion (Liu et al. 2022)",
    )
    p.add_argument("args", nargs="+", metavar="PRESET [key=value ...]", help="a preset or YAML file, then overrides for every run")
    p.add_argument("--x", required=True, metavar="KEY=VALUES", help="the horizontal axis, e.g. optim.lr=log:1e-4:1e-1:7")
    p.add_argument("--y", required=True, metavar="KEY=VALUES", help="the vertical axis, e.g. optim.weight_decay=0,0.1,1,10")
    p.add_argument("--seeds", type=int, default=3, help="seeds per cell (default 3)")
    p.add_argument(
        "--delay", type=int, default=1000, help="steps from t_fit to t_grok above which a run groks rather than comprehends (default 1000)"
    )
    p.add_argument("--name", default=None, help="the sweep's name (default: phase-diagram-PRESET-XKEY-YKEY)")
    p.add_argument("--workers", type=int, default=1, help="train points in N processes")
    p.add_argument("--out", default=None, help="where the figure and phases.json go (default: RUNS_DIR/phase-diagrams/NAME)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.add_argument("--runs-dir", default=None, help="run store directory (default: $GROKLAB_HOME, else ./groklab-runs)")


def cmd_phase_diagram(ns: argparse.Namespace) -> int:
    from groklab.analysis.phases import PHASES, cell_phase, phase_of
    from groklab.plots.phase_diagram import plot_phase_diagram
    from groklab.store import COMPLETED, Store
    from groklab.store.outputs import atomic_path, output_folder
    from groklab.sweeps import spec_from_cli, sweep_status, train_locally

    preset, overrides = ns.args[0], ns.args[1:]
    bad = [o for o in overrides if "=" not in o]
    if bad:
        raise GroklabError(f"overrides: {bad[0]!r} must look like key=value")
    axes = [_axis("--x", ns.x), _axis("--y", ns.y)]
    if axes[0] == axes[1]:
        raise ConfigError("--y", f"must vary another key than --x, both are {axes[0]}")
    if ns.seeds < 1:
        raise ConfigError("--seeds", f"must be >= 1, got {ns.seeds}")
    if ns.delay < 0:
        raise ConfigError("--delay", f"must be >= 0 steps, got {ns.delay}")
    if ns.workers < 1:
        raise ConfigError("--workers", f"must be >= 1, got {ns.workers}")
    if ns.out is not None:
        output_folder(ns.out, "--out")  # before the sweep, which may take hours
    name = ns.name or f"phase-diagram-{Path(preset).stem}-{axes[0]}-{axes[1]}"
    spec = spec_from_cli(preset, overrides, [ns.x, ns.y], ns.seeds, name)
    plan = spec.plan()  # every point resolved: bad values fail here, before anything is written
    store = Store(ns.runs_dir)
    existing = [sw for sw in store.sweeps() if sw.name == name]
    if existing and existing[-1].spec != spec.as_dict():
        raise ConfigError("--name", f"a sweep named {name!r} with other settings exists; give another --name to start a new diagram")
    sweep_id = existing[-1].id if existing else store.create_sweep(name, spec.as_dict(), plan)
    train_locally(store, sweep_id, not ns.quiet, ns.workers)
    if sweep_status(store, sweep_id).get("interrupted"):
        raise KeyboardInterrupt

    sweep = store.get_sweep(sweep_id)
    cells: dict[tuple[Any, Any], list[str]] = {}
    thresholds: set[tuple[float, float]] = set()
    for point, run_id in store.sweep_runs(sweep_id).items():
        if store.get(run_id).status not in COMPLETED:
            continue
        p = sweep.points[point]
        events = store.events(run_id)
        phase = phase_of(events.get("t_fit", (None, None))[0], events.get("t_grok", (None, None))[0], ns.delay)
        cells.setdefault((p.values[axes[0]], p.values[axes[1]]), []).append(phase)
        thresholds.add((p.config["events"]["fit_threshold"], p.config["events"]["grok_threshold"]))
    xs, ys = _ordered(plan, axes[0]), _ordered(plan, axes[1])
    table = {(x, y): cell_phase(cells[(x, y)]) for x, y in cells}
    fits = ", ".join(f"fit >= {f:g}, grok >= {g:g}" for f, g in sorted(thresholds))
    print(f"phases by events ({fits} in train/test accuracy); grokking: t_grok - t_fit > {ns.delay} steps; {ns.seeds} seed(s) a cell")
    print(_format_grid(axes, xs, ys, table, cells))
    seen = [ph for ph in PHASES if ph in table.values()]
    print(f"phases seen: {len(seen)} of 4 ({', '.join(seen) or 'none'})")
    out = Path(ns.out) if ns.out else store.root / "phase-diagrams" / name
    out.mkdir(parents=True, exist_ok=True)
    figure = plot_phase_diagram(axes, xs, ys, table, out / "phase_diagram.png", f"t_grok - t_fit > {ns.delay} steps: grokking")
    data = {
        "sweep": sweep_id,
        "x": axes[0],
        "y": axes[1],
        "delay": ns.delay,
        "thresholds": sorted(thresholds),
        "cells": [{"x": x, "y": y, "phase": table[(x, y)], "runs": cells[(x, y)]} for x in xs for y in ys if (x, y) in table],
    }
    with atomic_path(out / "phases.json") as tmp:
        tmp.write_text(json.dumps(data, indent=2))
    print(f"figure {figure.name} and phases.json in {out}")
    return 0


def _axis(flag: str, text: str) -> str:
    key, sep, values = text.partition("=")
    if not sep or not key.strip() or not values.strip():
        raise ConfigError(flag, f"{text!r} must look like KEY=VALUES, e.g. optim.lr=log:1e-4:1e-1:7")
    return key.strip()


def _ordered(plan: list[dict[str, Any]], key: str) -> list[Any]:
    """The axis's values as the config typed them, in the order the grid gave them."""
    typed: list[Any] = []
    for point in plan:
        if point["values"][key] not in typed:
            typed.append(point["values"][key])
    return typed


def _show(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _format_grid(axes: list[str], xs: list[Any], ys: list[Any], table: dict, cells: dict) -> str:
    """Rows y (top: the last given), columns x; each cell its phase's first letters and how many seeds are in it."""
    width = max(10, *(len(_show(x)) for x in xs))
    lines = [f"{axes[1]} \\ {axes[0]}", " " * 12 + "".join(_show(x).rjust(width + 1) for x in xs)]
    for y in reversed(ys):
        row = _show(y).rjust(12)
        for x in xs:
            if (x, y) not in table:
                row += "-".rjust(width + 1)
                continue
            phase = table[(x, y)]
            row += f"{phase[:5]} {cells[(x, y)].count(phase)}/{len(cells[(x, y)])}".rjust(width + 1)
        lines.append(row)
    return "\n".join(lines)
