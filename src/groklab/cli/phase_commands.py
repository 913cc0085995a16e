"""`groklab phase-diagram PRESET --x KEY=VALUES --y KEY=VALUES`: Liu et al.'s (2022) phase diagram.

The CLI prints what `groklab.phase_diagram` (reproductions/phase_diagram.py) returns.
"""

from __future__ import annotations

import argparse


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
    from groklab.analysis.phases import PHASES
    from groklab.api import phase_diagram

    d = phase_diagram(ns.args[0], ns.x, ns.y, ns.args[1:], ns.seeds, ns.delay, ns.name, ns.runs_dir, ns.out, ns.workers, not ns.quiet)
    fits = ", ".join(f"fit >= {f:g}, grok >= {g:g}" for f, g in d.thresholds)
    print(f"phases by events ({fits} in train/test accuracy); grokking: t_grok - t_fit > {d.delay} steps; {d.seeds} seed(s) a cell")
    print(d.grid_text())
    seen = [ph for ph in PHASES if ph in d.table.values()]
    print(f"phases seen: {len(seen)} of 4 ({', '.join(seen) or 'none'})")
    print(f"figure {d.figure.name} and phases.json in {d.out}")
    return 0
