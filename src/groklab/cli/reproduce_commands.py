"""`groklab reproduce PAPER`: train the sweeps a paper's claims need at a scale, judge them, draw the figures;
`--list` and `--estimate` print the plan instead."""

from __future__ import annotations

import argparse


def add_reproduce_parser(sub: argparse._SubParsersAction) -> None:
    from groklab.reproductions import RECIPES, SCALES

    options = {name: opt for paper in RECIPES for name, opt in RECIPES.get(paper).options.items()}
    p = sub.add_parser("reproduce", help="reproduce a paper: its sweeps, figures and a PASS/FAIL table of its claims")
    p.add_argument("args", nargs="+", metavar="PAPER [key=value ...]", help=f"one of {', '.join(RECIPES)}, then overrides for every run")
    p.add_argument("--claim", action="append", default=None, metavar="NAME", help="only this claim (repeatable; --list names them)")
    p.add_argument(
        "--scale",
        choices=SCALES,
        default=None,
        help="smoke: the paper's sweeps, a handful of steps a run (minutes; decides nothing); "
        "quick: a CPU-scale version; paper: the paper's settings (the default)",
    )
    p.add_argument("--quick", action="store_true", help="the same as --scale quick")
    p.add_argument(
        "--list", action="store_true", help="print every claim with its runs and estimated wall-clock per scale, and what is stored"
    )
    p.add_argument("--estimate", action="store_true", help="print the plan and its estimated wall-clock at the scale; train nothing")
    p.add_argument("--seeds", type=int, default=None, help="seeds per point (default 3, 1 at the smoke scale; the papers report one)")
    p.add_argument("--workers", type=int, default=1, help="train points in N processes")
    for name, opt in options.items():
        p.add_argument(f"--{name}", default=None, metavar=name.upper(), help=opt.help)
    p.add_argument("--out", default=None, help="where the figures and claims.json go (default: RUNS_DIR/reproduce/PAPER[-SCALE])")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    p.add_argument("--runs-dir", default=None, help="the runs directory (default: $GROKLAB_HOME, else ./groklab-runs)")


def cmd_reproduce(ns: argparse.Namespace) -> int:
    from groklab.api import reproduce, reproduction_plan
    from groklab.errors import ConfigError
    from groklab.reproductions import RECIPES, format_table

    paper, overrides = ns.args[0], ns.args[1:]
    names = {name for p in RECIPES for name in RECIPES.get(p).options}
    options = {name: getattr(ns, name) for name in names}
    if ns.list and ns.estimate:
        raise ConfigError("--estimate", "prints one scale's plan; --list prints every scale's: give one of them")
    if ns.list or ns.estimate:
        scale = ns.scale or ("quick" if ns.quick else None)
        if ns.estimate and scale is None:
            scale = "paper"
        print(reproduction_plan(paper, ns.claim, scale, ns.seeds, overrides, ns.runs_dir, options))
        return 0
    done = reproduce(paper, ns.quick, ns.seeds, overrides, ns.runs_dir, ns.out, ns.workers, not ns.quiet, ns.claim, ns.scale, options)
    print(format_table(done.claims))
    n = done.counts()
    print(f"{n['PASS']} PASS, {n['FAIL']} FAIL, {n['n/a']} n/a; figures, claims.json and report.html in {done.out}")
    return 0
