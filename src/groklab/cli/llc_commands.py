"""`groklab llc RUN`: the local learning coefficient of a run's weight snapshots (devinterp, the `llc` extra)."""

from __future__ import annotations

import argparse

from groklab.errors import ConfigError


def add_llc_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("llc", help="estimate the local learning coefficient at a run's weight snapshots (pip install 'groklab[llc]')")
    p.add_argument("run", metavar="RUN")
    p.add_argument("--steps", default="all", help="snapshot steps, comma-separated, or all (default)")
    p.add_argument("--lr", type=float, default=1e-4, help="SGLD step size (default 1e-4)")
    p.add_argument("--n-beta", type=float, default=None, help="inverse temperature nβ (default n / log n, n training examples)")
    p.add_argument("--localization", type=float, default=100.0, help="pull toward the snapshot, γ (default 100)")
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--draws", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--runs-dir", default=None, help="run store directory (default: $GROKLAB_HOME, else ./groklab-runs)")


def _steps(text: str) -> list[int] | None:
    if text == "all":
        return None
    parts = [s.strip() for s in text.split(",")]
    if not parts or not all(s.isascii() and s.isdigit() for s in parts):
        raise ConfigError("--steps", f"expected all or comma-separated step numbers, got {text!r}")
    return [int(s) for s in parts]


def cmd_llc(ns: argparse.Namespace) -> int:
    from groklab.analysis.llc import SGLDSettings, estimate_llc
    from groklab.store import Store

    if not ns.lr > 0 or ns.lr == float("inf"):
        raise ConfigError("--lr", f"must be > 0 and finite, got {ns.lr}")
    if not 0 <= ns.localization < float("inf"):
        raise ConfigError("--localization", f"must be >= 0 and finite, got {ns.localization}")
    for name in ("chains", "draws", "batch_size"):
        if getattr(ns, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')}", f"must be >= 1, got {getattr(ns, name)}")
    if ns.n_beta is not None and not 0 < ns.n_beta < float("inf"):
        raise ConfigError("--n-beta", f"must be > 0 and finite, got {ns.n_beta}")
    store = Store(ns.runs_dir, create=False)
    run_id = store.get(ns.run).id
    settings = SGLDSettings(ns.lr, ns.n_beta, ns.localization, ns.chains, ns.draws, ns.batch_size, ns.seed)
    results = estimate_llc(store, run_id, _steps(ns.steps), settings)
    print(f"run {run_id}: LLC at {len(results)} snapshot(s), {ns.chains} chains x {ns.draws} draws; stored as llc, llc_std")
    for step, (mean, std, seconds) in results.items():
        print(f"  step {step:>8d}  llc {mean:10.3f} ± {std:.3f}  ({seconds:.1f} s)")
    return 0
