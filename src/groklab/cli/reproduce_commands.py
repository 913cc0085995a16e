"""`groklab reproduce PAPER [--quick]`: train a paper's sweeps, draw its figures, print its claim table."""

from __future__ import annotations

import argparse

from groklab.errors import GroklabError

PAPERS = ("deep-grokking", "progress-measures", "double-descent", "fourier-circuits", "numerical-stability", "omnigrok", "grokfast")


def add_reproduce_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("reproduce", help="reproduce a paper: its sweeps, figures and a PASS/FAIL table of its claims")
    p.add_argument("args", nargs="+", metavar="PAPER [key=value ...]", help=f"one of {', '.join(PAPERS)}, then overrides for every run")
    p.add_argument("--quick", action="store_true", help="a reduced version for a 2-core CPU (half an hour to two hours, not days)")
    p.add_argument("--seeds", type=int, default=None, help="seeds per point (default 3; the papers report one)")
    p.add_argument("--workers", type=int, default=1, help="train points in N processes")
    p.add_argument(
        "--dims", default=None, metavar="DIMS", help="double-descent: the embedding dimensions, e.g. 1:80 (default), 1:149 or 8,16,32"
    )
    p.add_argument("--out", default=None, help="where the figures and claims.json go (default: RUNS_DIR/reproduce/PAPER)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    p.add_argument("--runs-dir", default=None, help="the runs directory (default: $GROKLAB_HOME, else ./groklab-runs)")


def cmd_reproduce(ns: argparse.Namespace) -> int:
    from groklab.api import reproduce
    from groklab.reproductions.common import format_table

    paper, overrides = ns.args[0], ns.args[1:]
    if paper not in PAPERS:
        raise GroklabError(f"paper: unknown paper {paper!r}; choose one of {', '.join(PAPERS)}")
    done = reproduce(paper, ns.quick, ns.seeds, overrides, ns.runs_dir, ns.out, ns.workers, ns.dims, progress=not ns.quiet)
    print(format_table(done.claims))
    n = done.counts()
    print(f"{n['PASS']} PASS, {n['FAIL']} FAIL, {n['n/a']} n/a; figures, claims.json and report.html in {done.out}")
    return 0
