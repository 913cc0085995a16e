"""The sweep commands: `groklab sweep`, `groklab sweeps`, and the sweep forms of `show` and `plot`."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from groklab.cli.common import dumps_json, show_data, split_args, when
from groklab.errors import GroklabError
from groklab.sweeps.local import train_locally
from groklab.sweeps.progress import steps_done, sweep_progress

if TYPE_CHECKING:
    from groklab.store import SweepRecord


def cmd_sweep(ns: argparse.Namespace) -> int:
    from groklab.config import from_dict
    from groklab.store import Store
    from groklab.sweeps import spec_from_cli, spec_from_yaml
    from groklab.sweeps.planning import check_ensembles_fit
    from groklab.sweeps.spec import execution_options

    if ns.workers is not None and ns.workers < 1:
        raise GroklabError(f"--workers: must be >= 1, got {ns.workers}")
    if ns.max_ensemble is not None and ns.max_ensemble < 1:
        raise GroklabError(f"--max-ensemble: must be >= 1, got {ns.max_ensemble}")
    _check_executor(ns)
    if ns.resume is not None:
        if ns.args or ns.grid or ns.seeds != 1:
            raise GroklabError("--resume SWEEP takes no preset, overrides, --grid or --seeds: the sweep keeps its own")
        store = Store(ns.runs_dir, create=False)
        sweep = store.get_sweep(ns.resume)
        sweep_id = sweep.id
        given = {"max_ensemble": ns.max_ensemble, "pad_widths": ns.pad_widths, "workers": ns.workers}
        options = execution_options(sweep.spec.get("execution", {}), given)  # the options it was started with
        ns.max_ensemble, ns.pad_widths, ns.workers = options["max_ensemble"], options["pad_widths"], options["workers"]

        def open_sweep() -> tuple[Any, str]:
            return store, sweep_id
    else:
        preset, overrides = split_args(ns.args)
        if preset and preset.endswith((".yaml", ".yml")) and _is_sweep_file(preset):
            if overrides or ns.grid:
                raise GroklabError(f"{preset} is a sweep file: put overrides and the grid in it")
            spec = spec_from_yaml(preset)
        else:
            spec = spec_from_cli(preset, overrides, ns.grid, ns.seeds, ns.name)
        spec.allow_large = ns.allow_large
        points = spec.plan()  # every point checked before the store is touched
        check_ensembles_fit([from_dict(p["config"]) for p in points], ns.max_ensemble, ns.pad_widths, "--max-ensemble")
        ns.workers = ns.workers or 1
        execution = {"max_ensemble": ns.max_ensemble, "pad_widths": ns.pad_widths, "workers": ns.workers}

        def open_sweep() -> tuple[Any, str]:
            new = Store(ns.runs_dir)
            return new, new.create_sweep(spec.name, {**spec.as_dict(), "execution": execution}, points)

    if ns.executor == "ray":
        return _sweep_on_ray(ns, open_sweep)
    store, sweep_id = open_sweep()
    return _summary(ns, sweep_id, train_locally(store, sweep_id, not ns.quiet, ns.workers, ns.max_ensemble, ns.pad_widths))


def _check_executor(ns: argparse.Namespace) -> None:
    if ns.executor == "ray":
        if ns.workers not in (None, 1):
            raise GroklabError("--workers: only for the local executor; Ray runs as many tasks as its CPUs allow (see --cpus-per-task)")
        if ns.cpus_per_task < 1:
            raise GroklabError(f"--cpus-per-task: must be >= 1, got {ns.cpus_per_task}")
        if ns.gpus_per_task is not None and ns.gpus_per_task < 0:
            raise GroklabError(f"--gpus-per-task: must be >= 0, got {ns.gpus_per_task}")
        return
    for flag, given in (
        ("--address", ns.address is not None),
        ("--cpus-per-task", ns.cpus_per_task != 1),
        ("--gpus-per-task", ns.gpus_per_task is not None),
    ):
        if given:
            raise GroklabError(f"{flag}: only with --executor ray")


def _sweep_on_ray(ns: argparse.Namespace, open_sweep: Callable[[], tuple[Any, str]]) -> int:
    """Join (or start) Ray first, so an unreachable cluster leaves the store untouched; then create and run the sweep."""
    from groklab.sweeps import ray_executor

    started = ray_executor.connect(ns.address)
    try:
        store, sweep_id = open_sweep()
        options = {
            "max_ensemble": ns.max_ensemble,
            "pad_widths": ns.pad_widths,
            "cpus_per_task": ns.cpus_per_task,
            "gpus_per_task": ns.gpus_per_task,
        }
        if ns.quiet:
            counts = ray_executor.run_sweep_on_ray(store, sweep_id, **options)
        else:
            bar = sweep_progress(store, sweep_id)
            try:
                counts = ray_executor.run_sweep_on_ray(
                    store, sweep_id, announce=bar.note, poll=lambda: bar.sync(steps_done(store, sweep_id)), **options
                )
            finally:
                bar.finish()
    finally:
        if started:
            ray_executor.shutdown()
    return _summary(ns, sweep_id, counts)


def _summary(ns: argparse.Namespace, sweep_id: str, counts: dict[str, int]) -> int:
    if ns.quiet:
        print(sweep_id)
    else:
        print(f"sweep {sweep_id}: " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items())))
        print(f"  next: groklab show {sweep_id}")
    return 130 if counts.get("interrupted") else 0


def _is_sweep_file(path: str) -> bool:
    from groklab.config.loading import load_yaml

    data = load_yaml(path)
    return "grid" in data or "seeds" in data


def cmd_sweeps(ns: argparse.Namespace) -> int:
    from groklab.store import Store
    from groklab.sweeps import sweep_status

    store = Store(ns.runs_dir, create=False)
    rows = [
        {
            "id": sw.id,
            "name": sw.name,
            "points": len(sw.points),
            "status": sweep_status(store, sw.id),
            "spec": sw.spec,
            "created": sw.created,
        }
        for sw in store.sweeps()
    ]
    damaged = [{"id": d.id, "name": d.name, "damaged": d.why, "created": d.created} for d in store.damaged_sweeps()]
    if ns.json:
        print(dumps_json(sorted([*rows, *damaged], key=lambda r: r["created"])))
        return 0
    print(f"{'id':9s}  {'name':16s}  {'points':>6s}  {'status':30s}  created")
    for r in sorted([*rows, *damaged], key=lambda r: r["created"]):
        if "damaged" in r:  # its row cannot be read; the others stay listed
            print(f"{r['id']:9s}  {r['name'][:16]:16s}  {'-':>6s}  {'damaged':30s}  {when(r['created'])}")
            continue
        status = ", ".join(f"{n} {k}" for k, n in sorted(r["status"].items()))
        print(f"{r['id']:9s}  {r['name'][:16]:16s}  {r['points']:>6d}  {status[:30]:30s}  {when(r['created'])}")
    return 0


def is_sweep_ref(store: Any, ref: str) -> bool:
    """Sweep ids start with 's' (run ids are hex), so a prefix of one is never a run's."""
    return ref.startswith("s") and any(sweep_id.startswith(ref) for sweep_id in store.sweep_ids())


def show_sweep(store: Any, sweep: SweepRecord, as_json: bool) -> int:
    linked = store.sweep_runs(sweep.id)
    rows = []
    for i, point in enumerate(sweep.points):
        run_id = linked.get(i)
        row: dict[str, Any] = {"point": i, **point.values, "run": run_id, "status": "pending"}
        if run_id:
            info = show_data(store, run_id)
            row.update(
                status=info["run"]["status"],
                t_fit=info["events"].get("t_fit", {}).get("step"),
                t_grok=info["events"].get("t_grok", {}).get("step"),
                train_acc=info["final"].get("train_acc"),
                test_acc=info["final"].get("test_acc"),
            )
        rows.append(row)
    from groklab.sweeps.results import summarize

    summary = summarize(store, sweep)
    if as_json:
        head = {k: getattr(sweep, k) for k in ("id", "name", "spec", "created")}
        print(dumps_json({"sweep": head, "points": rows, "summary": summary}))
        return 0
    print(f"sweep {sweep.id}  name {sweep.name}  {len(rows)} points  created {when(sweep.created)}")
    keys = list(sweep.points[0].values) if rows else []
    cols = ["point", *keys, "run", "status", "t_fit", "t_grok", "train_acc", "test_acc"]
    print("  ".join(f"{c:>12s}" for c in cols))
    for r in rows:
        cells = [r.get(c) for c in cols]
        print("  ".join(f"{'-' if v is None else (f'{v:.4g}' if isinstance(v, float) else str(v)):>12s}" for v in cells))
    print("across seeds (mean [95% CI]):")
    for row in summary:
        label = " ".join(f"{k}={v}" for k, v in row["values"].items()) or "(all)"
        ev = row["events"]
        parts = [f"{len(row['runs'])} runs"]
        for name in ("train_acc", "test_acc"):
            if name in row["final"]:
                m, lo, hi = row["final"][name]
                parts.append(f"final {name} {m:.3f} [{lo:.3f}, {hi:.3f}]")
        for name in ("t_fit", "t_grok"):
            e = ev[name]
            parts.append(f"{name} " + ("-" if not e["mean_ci"] else f"{e['mean_ci'][0]:.0f} ({e['reached']}/{ev['n']})"))
        parts.append(f"grokked {ev['grokked_fraction']:.0%}" if ev["n"] else "grokked -")
        if row["damaged"]:
            parts.append(f"left out: {len(row['damaged'])} damaged ({', '.join(row['damaged'])})")
        print(f"  {label}: " + ", ".join(parts))
    return 0
