"""`groklab reproduce PAPER [--quick]`: train a paper's sweeps, draw its figures, print its claim table."""

from __future__ import annotations

import argparse
from pathlib import Path

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
    from groklab.cli.sweep_commands import train_locally
    from groklab.reproduce import RECIPES
    from groklab.reproduce.common import format_table
    from groklab.store import Store

    paper, overrides = ns.args[0], ns.args[1:]
    if paper not in PAPERS:
        raise GroklabError(f"paper: unknown paper {paper!r}; choose one of {', '.join(PAPERS)}")
    recipe = RECIPES[paper]
    seeds = recipe.SEEDS if ns.seeds is None else ns.seeds
    if seeds < 1:
        raise GroklabError(f"--seeds: must be >= 1, got {ns.seeds}")
    if ns.workers < 1:
        raise GroklabError(f"--workers: must be >= 1, got {ns.workers}")
    bad = [o for o in overrides if "=" not in o]
    if bad:
        raise GroklabError(f"overrides: {bad[0]!r} must look like key=value")
    options = {}
    if ns.dims is not None:
        if paper != "double-descent":
            raise GroklabError(f"--dims: only for double-descent, not {paper}")
        options["dims"] = _dims(ns.dims)
    recipe.check(ns.quick, overrides, **options)  # bad overrides or missing data: fail before anything is written
    store = Store(ns.runs_dir)
    out = Path(ns.out) if ns.out else store.root / "reproduce" / (paper + ("-quick" if ns.quick else ""))

    def train(store: Store, sweep_id: str) -> None:
        train_locally(store, sweep_id, ns.quiet, ns.workers)

    rows = recipe.reproduce(store, ns.quick, seeds, out, train=train, overrides=overrides, **options)
    print(format_table(rows))
    passed = sum(r["result"] == "PASS" for r in rows)
    failed = sum(r["result"] == "FAIL" for r in rows)
    print(f"{passed} PASS, {failed} FAIL, {len(rows) - passed - failed} n/a; figures and claims.json in {out}")
    return 0


def _dims(text: str) -> tuple[int, ...]:
    from groklab.sweeps.spec import parse_values

    values = parse_values("model.d_model", text)
    try:
        dims = tuple(sorted({int(str(v)) for v in values}))
    except ValueError:
        raise GroklabError(f"--dims: {text!r} must be integers, e.g. 1:80, 1:149:2 or 8,16,32") from None
    return dims
