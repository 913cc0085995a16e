"""`groklab compare-measures RUN|SWEEP`: which logged measure tracks the test loss best, and how early."""

from __future__ import annotations

import argparse
import math
from typing import Any

from groklab.analysis.compare import SPACINGS
from groklab.cli.common import dumps_json
from groklab.errors import GroklabError


def add_compare_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare-measures", help="rank a run's (or sweep's) progress measures by how well and how early they track the test loss"
    )
    p.add_argument("run", metavar="RUN|SWEEP")
    p.add_argument("--target", default="test_loss", help="the curve to predict (default test_loss)")
    p.add_argument("--measures", default=None, metavar="A,B,...", help="measures to compare (default: every logged one)")
    p.add_argument(
        "--from",
        dest="start",
        default="fit",
        metavar="STEP|fit",
        help="compare from this step on; fit (default) = each run's t_fit, leaving out the memorization phase; 0 = the whole run",
    )
    p.add_argument(
        "--spacing",
        choices=SPACINGS,
        default="linear",
        help="the step grid the curves are read on: linear (default) weighs every step alike; log weighs every decade alike",
    )
    p.add_argument("--json", action="store_true")
    p.add_argument("-o", "--output", default=None, help="the figure (default: in the run's folder, measures.png; for a sweep, one per run)")
    p.add_argument("--runs-dir", default=None, help="the runs directory (default: $GROKLAB_HOME, else ./groklab-runs)")


def cmd_compare(ns: argparse.Namespace) -> int:
    from groklab.analysis.aggregate import mean_ci
    from groklab.analysis.compare import compare, default_measures, fit_step
    from groklab.cli.sweep_commands import is_sweep_ref
    from groklab.plots.canvas import figure_file
    from groklab.plots.measures_figure import plot_measures
    from groklab.store import Store

    if ns.measures is not None and not [m for m in ns.measures.split(",") if m.strip()]:
        raise GroklabError(f"--measures: {ns.measures!r} names no measure; give names like med,weight_norm, or leave it out for all")
    if ns.output is not None:
        figure_file(ns.output)  # a known format, in a folder that exists: checked before anything is computed
    store = Store(ns.runs_dir, create=False)
    if is_sweep_ref(store, ns.run):
        sweep = store.get_sweep(ns.run)
        run_ids = list(store.sweep_runs(sweep.id).values())
        if not run_ids:
            raise GroklabError(f"sweep {sweep.id} has no runs yet; nothing to compare")
        if ns.output is not None and len(run_ids) > 1:
            raise GroklabError(f"--output: sweep {sweep.id} draws one figure per run, measures.png in each run's folder; leave -o out")
    else:
        run_ids = [store.get(ns.run).id]
    per_run = {rid: store.metrics(rid) for rid in run_ids}
    logged = sorted({name for m in per_run.values() for name in m})
    if ns.target not in logged:
        raise GroklabError(f"--target: {ns.target!r} is not logged; choose one of {', '.join(logged)}")
    available = default_measures(logged)
    chosen = available if ns.measures is None else [m.strip() for m in ns.measures.split(",") if m.strip()]
    unknown = [m for m in chosen if m not in logged]
    if unknown:
        who = "these runs" if len(run_ids) > 1 else "this run"
        raise GroklabError(f"--measures: {unknown[0]!r} is not logged by {who}; choose from {', '.join(available)}")
    if ns.start != "fit" and not (ns.start.isascii() and ns.start.isdigit()):
        raise GroklabError(f"--from: expected a step or 'fit', got {ns.start!r}")
    starts = {rid: (fit_step(m) or 0) if ns.start == "fit" else int(ns.start) for rid, m in per_run.items()}
    fits = {rid: compare(m, ns.target, chosen, starts[rid], ns.spacing) for rid, m in per_run.items()}
    rows = _summary(fits, chosen, mean_ci)
    figures = []
    for rid in run_ids:
        out = ns.output if ns.output and len(run_ids) == 1 else store.run_dir(rid) / "measures.png"
        figures.append(str(plot_measures(per_run[rid], fits[rid], ns.target, out, f"run {rid}: progress measures against {ns.target}")))
    if ns.json:
        print(dumps_json({"target": ns.target, "spacing": ns.spacing, "runs": run_ids, "measures": rows, "figures": figures}))
        return 0
    where = "from t_fit" if ns.start == "fit" else f"from step {ns.start}"
    grid = "" if ns.spacing == "linear" else ", read on a log-step grid"
    print(
        f"{len(run_ids)} run(s), {where}{grid}; target {ns.target}; lead = steps by which the measure's change point precedes the target's"
    )
    print(f"{'measure':24s}  {'runs':>4s}  {'spearman':>22s}  {'pearson':>22s}  {'lead (steps)':>26s}")
    for r in rows:
        print(f"{r['measure'][:24]:24s}  {r['runs']:>4d}  {_fmt(r['spearman']):>22s}  {_fmt(r['pearson']):>22s}  {_fmt(r['lead'], 0):>26s}")
    print("figures: " + (figures[0] if len(figures) == 1 else f"{len(figures)} (measures.png in each run's folder)"))
    return 0


def _summary(fits: dict[str, list[Any]], chosen: list[str], mean_ci: Any) -> list[dict[str, Any]]:
    """Per measure, the mean [95% CI] over runs of each figure (a single value for one run)."""
    rows = []
    for name in chosen:
        per = [f for run_fits in fits.values() for f in run_fits if f.measure == name]
        if not per:
            continue
        row: dict[str, Any] = {"measure": name, "runs": len(per)}
        for key in ("spearman", "pearson", "lead"):
            values = [getattr(f, key) for f in per if getattr(f, key) is not None]
            row[key] = list(mean_ci([float(v) for v in values])) if values else None
        rows.append(row)
    return sorted(rows, key=lambda r: -abs(r["spearman"][0]) if r["spearman"] else 1.0)


def _fmt(v: list[float] | None, digits: int = 3) -> str:
    if v is None or math.isnan(v[0]):
        return "-"
    mean, lo, hi = v
    return f"{mean:+.{digits}f}" if lo == hi else f"{mean:+.{digits}f} [{lo:+.{digits}f}, {hi:+.{digits}f}]"
