"""The `groklab` command line: run, resume, inspect, plot and export grokking experiments."""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from typing import Any, NoReturn

import yaml

from groklab import __version__
from groklab.cli.common import dumps_json, fmt_step, progress_bar, show_data, split_args, when
from groklab.cli.compare_commands import add_compare_parser, cmd_compare
from groklab.cli.data_commands import add_data_parser, cmd_data
from groklab.cli.llc_commands import add_llc_parser, cmd_llc
from groklab.cli.patterns_commands import add_patterns_parser, cmd_patterns
from groklab.cli.phase_commands import add_phase_parser, cmd_phase_diagram
from groklab.cli.reproduce_commands import add_reproduce_parser, cmd_reproduce
from groklab.cli.sweep_commands import cmd_sweep, cmd_sweeps, is_sweep_ref, show_sweep
from groklab.errors import GroklabError
from groklab.training.allocator import tune_malloc

EVENT_VALUE_LABELS = {
    "t_fit": "train acc >=",
    "t_grok": "test acc >=",
    "test_acc_at_fit": "test acc",
    "dd_first_min": "test loss",
    "dd_peak": "test loss",
    "dd_second_min": "test loss",
}
MAIN_METRICS = ("train_acc", "test_acc", "train_loss", "test_loss", "weight_norm", "med")


RUN_EXAMPLES = """examples:
  groklab run                                        the default preset (see `groklab presets`)
  groklab run nanda2023 model.d_model=64 optim.weight_decay=0.3
  groklab run my.yaml task.split=square:30 run.name=sq30

override keys are grouped task.*, model.*, optim.*, schedule.*, measures.*, events.*, run.*;
`groklab config PRESET` prints every key of a preset with its value."""


SWEEP_EXAMPLES = """examples:
  groklab sweep --grid optim.weight_decay=0.1,0.3,1.0 --seeds 3     the default preset, 3 x 3 runs
  groklab sweep davies2023 --grid model.d_model=1:80:2 schedule.steps=20000
  groklab sweep my-sweep.yaml                                       preset, overrides, grid, seeds in a file
  groklab sweep --resume SWEEP                                      after Ctrl-C or a kill: nothing runs twice
  groklab sweep --grid optim.weight_decay=0.3,1 --seeds 3 --executor ray --address auto   on a Ray cluster"""


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line and exit 2 like every other bad input."""

    def error(self, message: str) -> NoReturn:
        raise GroklabError(f"{self.prog}: {message}")


def _runs_dir_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runs-dir", default=None, help="run store directory (default: $GROKLAB_HOME, else ./groklab-runs)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="groklab", description=__doc__)
    parser.add_argument("--version", action="version", version=f"groklab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")

    p = sub.add_parser(
        "run",
        help="train one run from a preset (default: modular-addition) with key=value overrides",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=RUN_EXAMPLES,
    )
    p.add_argument("args", nargs="*", metavar="[PRESET|FILE.yaml] [key=value ...]")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar; print only the run id")
    _runs_dir_arg(p)

    p = sub.add_parser("resume", help="continue an interrupted run from its last checkpoint")
    p.add_argument("run", metavar="RUN")
    p.add_argument("--from-scratch", action="store_true", help="restart from step 0 (for a run whose checkpoint is damaged)")
    p.add_argument("--quiet", "-q", action="store_true")
    _runs_dir_arg(p)

    p = sub.add_parser(
        "sweep",
        help="run a grid of configs x seeds, one stored run per point (resumable)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=SWEEP_EXAMPLES,
    )
    p.add_argument("args", nargs="*", metavar="[PRESET|SWEEP.yaml] [key=value ...]")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=VALUES", help="a list 0.1,0.3,1 | a range 1:149:2 | log:1e-4:1:9")
    p.add_argument("--seeds", type=int, default=1, help="seeds per grid point: run.seed = 0..N-1 (default 1)")
    p.add_argument("--name", default="", help="a name for the sweep")
    p.add_argument("--resume", metavar="SWEEP", default=None, help="continue an interrupted sweep")
    p.add_argument(
        "--workers", type=int, default=None, help="train points in N processes, sharing the CPU threads (default 1; a resume: as started)"
    )
    p.add_argument("--executor", choices=("local", "ray"), default="local", help="where runs train (default local; ray needs groklab[ray])")
    p.add_argument(
        "--address",
        default=None,
        metavar="auto|HOST:PORT",
        help="ray: the cluster to join (default: a local Ray for this sweep)",
    )
    p.add_argument("--cpus-per-task", type=int, default=1, metavar="N", help="ray: CPUs (torch threads) per task (default 1)")
    p.add_argument(
        "--gpus-per-task",
        type=float,
        default=None,
        metavar="G",
        help="ray: GPUs per task (default 1 if the cluster has GPUs)",
    )
    p.add_argument(
        "--max-ensemble",
        type=int,
        default=None,
        metavar="K",
        help="at most K points per vectorized ensemble (default: 1 for large models on a CPU, else from free memory)",
    )
    p.add_argument(
        "--pad-widths",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="transformers of different d_model / d_mlp share ensembles, padded to the widest (default: on)",
    )
    p.add_argument(
        "--allow-large", action="store_true", help="allow more than 10,000 runs (grid points x seeds); each is resolved and stored up front"
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress output; print only the sweep id")
    _runs_dir_arg(p)

    p = sub.add_parser("sweeps", help="list stored sweeps")
    p.add_argument("--json", action="store_true")
    _runs_dir_arg(p)

    sub.add_parser("presets", help="list the shipped presets")

    p = sub.add_parser("config", help="print the resolved config of a preset with overrides, without running")
    p.add_argument("args", nargs="*", metavar="[PRESET|FILE.yaml] [key=value ...]")

    p = sub.add_parser("runs", help="list stored runs")
    p.add_argument("--json", action="store_true")
    _runs_dir_arg(p)

    p = sub.add_parser("show", help="a run's config, status, grokking events and final metrics; or a sweep's points")
    p.add_argument("run", metavar="RUN|SWEEP", help="run id, id prefix, name, or 'last'; or a sweep id (s...)")
    p.add_argument("--json", action="store_true")
    _runs_dir_arg(p)

    p = sub.add_parser("plot", help="draw the standard grokking figure of a run, or a sweep's figures (PNG, SVG or PDF)")
    p.add_argument("run", metavar="RUN|SWEEP", nargs="+", help="a run or sweep; several runs with --kind rank-vs-norm")
    p.add_argument("--x", default=None, metavar="KEY", help="for a sweep: the swept key on the x axis (default: the only one)")
    p.add_argument(
        "--kind",
        choices=("standard", "stages", "rank", "probes", "rank-vs-norm"),
        default="standard",
        help="for runs: the standard figure, accuracy with generalization stages, the feature-rank heatmap, "
        "probe accuracy per layer, or (several runs) second-to-last-layer rank against weight norm",
    )
    p.add_argument("-o", "--output", default=None, help="output file (default: in the run's folder)")
    _runs_dir_arg(p)

    p = sub.add_parser(
        "export", help="write a run's or a sweep's metrics as CSV, Parquet or TensorBoard logs, or a run's weights at a step"
    )
    p.add_argument("run", metavar="RUN|SWEEP")
    p.add_argument("--weights", type=int, metavar="STEP", default=None, help="write the weight snapshot at STEP instead (a torch file)")
    p.add_argument("--transformerlens", action="store_true", help="with --weights: in TransformerLens's HookedTransformer layout")
    p.add_argument("--format", choices=("csv", "parquet", "tensorboard"), default="csv")
    p.add_argument(
        "--layout",
        choices=("wide", "long"),
        default=None,
        help="wide: a row per step; long: a row per (step, metric) (default: wide for a run, long for a sweep)",
    )
    p.add_argument("--all-config", action="store_true", help="a sweep's table gets a column for every config key, not only the varied ones")
    p.add_argument(
        "-o", "--output", default=None, help="output file (default: ID.csv / ID.parquet) or, for tensorboard, folder (./tensorboard/ID)"
    )
    _runs_dir_arg(p)

    p = sub.add_parser(
        "report",
        help="a self-contained interactive HTML report of a run, a sweep or a reproduction (opens offline in any browser)",
    )
    p.add_argument("ref", metavar="RUN|SWEEP|REPRODUCTION", help="a run, a sweep, or a reproduction's folder or name (grokfast-quick)")
    p.add_argument(
        "-o", "--output", default=None, help="the HTML file (default: report.html in the run's or reproduction's folder; sweeps/ID.html)"
    )
    _runs_dir_arg(p)

    add_data_parser(sub)
    add_reproduce_parser(sub)
    add_compare_parser(sub)
    add_llc_parser(sub)
    add_phase_parser(sub)
    add_patterns_parser(sub)
    return parser


# ----- commands -------------------------------------------------------------------------------------


def cmd_run(ns: argparse.Namespace) -> int:
    from groklab.api import run

    def banner(prep: Any, store: Any) -> None:
        cfg = prep.cfg
        line = f"groklab: {cfg.preset} on {prep.device} ({cfg.task.name} {_task_label(cfg)}, {cfg.model.name}); store {store.root}"
        print(line, file=sys.stderr)

    preset, overrides = split_args(ns.args)
    trained = run(preset, overrides, ns.runs_dir, None if ns.quiet else progress_bar(), on_prepared=None if ns.quiet else banner)
    return _report(trained.store, trained.id, ns.quiet)


def cmd_resume(ns: argparse.Namespace) -> int:
    from groklab.api import resume

    run = resume(ns.run, ns.runs_dir, None if ns.quiet else progress_bar(), from_scratch=ns.from_scratch)
    return _report(run.store, run.id, ns.quiet)


def _task_label(cfg: Any) -> str:
    t = cfg.task
    return f"p={t.p} op={t.op} train_frac={t.train_frac} split={t.split}" if hasattr(t, "p") else ""


def _report(store: Any, run_id: str, quiet: bool) -> int:
    rec = store.get(run_id)
    if quiet:
        print(run_id)
    else:
        info = show_data(store, run_id)
        ev = info["events"]
        fin = info["final"]
        print(f"run {run_id}: {rec.status} at step {rec.step}" + (f" ({rec.message})" if rec.message else ""))
        print(f"  t_fit {fmt_step(ev.get('t_fit'))}  t_grok {fmt_step(ev.get('t_grok'))}  delay {fmt_step(ev.get('delay'))}")
        if fin:
            print("  final " + "  ".join(f"{k} {fin[k]:.4g}" for k in MAIN_METRICS if k in fin))
        print(f"  next: groklab show {run_id} | groklab plot {run_id}")
    return {"finished": 0, "stopped": 0, "diverged": 0, "interrupted": 130}.get(rec.status, 1)


def cmd_show(ns: argparse.Namespace) -> int:
    from groklab.store import Store

    store = Store(ns.runs_dir, create=False)
    if is_sweep_ref(store, ns.run):
        return show_sweep(store, store.get_sweep(ns.run), ns.json)
    info = show_data(store, store.get(ns.run).id)
    if ns.json:
        print(dumps_json(info))
        return 0
    r = info["run"]
    print(f"run {r['id']}  name {r['name']}  preset {r['preset']}  status {r['status']} at step {r['step']}")
    print(f"  created {when(r['created'])}  finished {when(r['finished'])}  device {r['device']}  groklab {r['version']}")
    if r["message"]:
        print(f"  {r['message']}")
    width = max(map(len, [*info["events"], *info["final"]]), default=0)  # names line up however long they get
    print("events:")
    for name, e in info["events"].items():
        label = EVENT_VALUE_LABELS.get(name, "value")
        value = "" if e["value"] is None else f"  ({label} {e['value']:.4g})"
        print(f"  {name:{width}s}  {'-' if e['step'] is None else e['step']}{value}")
    print("final metrics:")
    for name, v in info["final"].items():
        print(f"  {name:{width}s}  {v:.6g}")
    print("config:")
    print("  " + yaml.safe_dump(info["config"], sort_keys=False).replace("\n", "\n  ").rstrip())
    return 0


def cmd_runs(ns: argparse.Namespace) -> int:
    from groklab.config import changes_from_preset
    from groklab.store import Store
    from groklab.store.db import DAMAGED, DamagedError
    from groklab.store.records import preset_then

    store = Store(ns.runs_dir, create=False)
    rows = []
    for rec in store.runs():
        status, message = rec.status, rec.message
        try:
            store.check_rows(rec.id)
            ev = store.events(rec.id)
            final = store.metrics(rec.id, ["test_acc", "train_acc"])
            changes = changes_from_preset(rec.config, rec.preset, preset_then(store, rec.id)) if status != DAMAGED else {}
        except DamagedError as exc:  # listed as damaged; the other runs stay listed
            ev, final, changes, status, message = {}, {}, {}, DAMAGED, str(exc)
        row = {
            "id": rec.id,
            "name": rec.name,
            "status": status,
            "preset": rec.preset,
            "step": rec.step,
            "t_fit": ev.get("t_fit", (None, None))[0],
            "t_grok": ev.get("t_grok", (None, None))[0],
            "train_acc": final["train_acc"][1][-1] if "train_acc" in final else None,
            "test_acc": final["test_acc"][1][-1] if "test_acc" in final else None,
            "created": rec.created,
            "changes": changes,  # what sets this run apart
        }
        rows.append(row | ({"damaged": message} if status == DAMAGED else {}))
    if ns.json:
        print(dumps_json(rows))
        return 0
    print(f"{'id':8s}  {'name':16s}  {'status':11s}  {'preset':18s}  {'step':>7s}  {'t_fit':>7s}  {'t_grok':>7s}  ", end="")
    print(f"{'train':>6s}  {'test':>6s}  {'created':19s}  changes from the preset")
    for r in rows:
        acc = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
        step = lambda v: "-" if v is None else str(v)  # noqa: E731
        print(
            f"{r['id']:8s}  {r['name'][:16]:16s}  {r['status']:11s}  {r['preset'][:18]:18s}  {r['step']:>7d}  {step(r['t_fit']):>7s}  "
            f"{step(r['t_grok']):>7s}  {acc(r['train_acc']):>6s}  {acc(r['test_acc']):>6s}  {when(r['created']):19s}  "
            + (r["damaged"] if "damaged" in r else _changes_text(r["changes"]))
        )
    return 0


def _changes_text(changes: dict) -> str:
    return " ".join(f"{k}={json.dumps(v) if isinstance(v, list | dict) else v}" for k, v in changes.items())


def cmd_presets(ns: argparse.Namespace) -> int:
    from groklab.config import DEFAULT_PRESET, describe_presets

    presets = describe_presets()
    width = max(len(name) for name, _ in presets)
    for name, desc in presets:
        mark = "*" if name == DEFAULT_PRESET else " "
        print(f"{mark} {name:{width}s}  {desc}")
    return 0


def cmd_config(ns: argparse.Namespace) -> int:
    from groklab.config import resolve_config, to_dict

    preset, overrides = split_args(ns.args)
    print(yaml.safe_dump(to_dict(resolve_config(preset, overrides)), sort_keys=False), end="")
    return 0


def cmd_plot(ns: argparse.Namespace) -> int:
    from groklab.plots import deep_figures as deep
    from groklab.plots import plot_run
    from groklab.store import Store

    store = Store(ns.runs_dir, create=False)
    if len(ns.run) > 1 and ns.kind != "rank-vs-norm":
        raise GroklabError("RUN: several runs only with --kind rank-vs-norm")
    if is_sweep_ref(store, ns.run[0]):
        from groklab.plots import plot_sweep

        print(plot_sweep(store, store.get_sweep(ns.run[0]), ns.x, ns.output))
        return 0
    ids = [store.get(ref).id for ref in ns.run]
    if ns.kind == "rank-vs-norm":
        print(deep.plot_rank_vs_norm(store, ids, ns.output or store.run_dir(ids[0]) / "rank_vs_norm.png"))
        return 0
    draw = {"standard": plot_run, "stages": deep.plot_stages, "rank": deep.plot_rank_heatmap, "probes": deep.plot_probes}[ns.kind]
    print(draw(store, ids[0], ns.output))
    return 0


def cmd_export(ns: argparse.Namespace) -> int:
    from groklab.store import Store

    store = Store(ns.runs_dir, create=False)
    if is_sweep_ref(store, ns.run):
        if ns.weights is not None or ns.transformerlens:
            raise GroklabError("--weights: a run's option; export a sweep's runs one by one")
        return _export_sweep(store, store.get_sweep(ns.run), ns)
    rec = store.get(ns.run)
    if ns.weights is not None:
        from groklab.store.weights import export_weights

        print(export_weights(store, rec.id, ns.weights, ns.output, ns.transformerlens))
        return 0
    if ns.transformerlens:
        raise GroklabError("--transformerlens: needs --weights STEP (it converts a weight snapshot)")
    if ns.all_config:
        raise GroklabError("--all-config: only for a sweep (a run's table is its metrics)")
    if ns.format == "tensorboard":
        from groklab.store.tensorboard import export_run_tensorboard

        print(export_run_tensorboard(store, rec.id, ns.output))
        return 0
    from groklab.store.export import export_run

    print(export_run(store, rec.id, ns.format, ns.output, ns.layout or "wide"))
    return 0


def _export_sweep(store: Any, sweep: Any, ns: argparse.Namespace) -> int:
    if ns.format == "tensorboard":
        from groklab.store.tensorboard import export_sweep_tensorboard

        print(export_sweep_tensorboard(store, sweep, ns.output))
        return 0
    from groklab.analysis.tidy import sweep_table
    from groklab.store.export import check_table_output, write_table

    path = check_table_output(ns.format, ns.output or f"{sweep.id}.{ns.format}")
    if not store.sweep_runs(sweep.id):
        raise GroklabError(f"sweep {sweep.id} has no runs yet; nothing to export")
    columns, rows = sweep_table(store, sweep, ns.layout or "long", ns.all_config)
    print(write_table(columns, rows, ns.format, path))
    return 0


def cmd_report(ns: argparse.Namespace) -> int:
    from groklab.reports import find_reproduction, write_reproduction_report, write_run_report, write_sweep_report
    from groklab.store import Store

    store = Store(ns.runs_dir, create=False)
    if is_sweep_ref(store, ns.ref):
        sweep = store.get_sweep(ns.ref)
        if ns.output is None:  # groklab's own folder for sweep figures and reports, as `groklab plot SWEEP` uses
            (store.root / "sweeps").mkdir(exist_ok=True)
        print(write_sweep_report(store, sweep, ns.output or store.root / "sweeps" / f"{sweep.id}.html"))
        return 0
    folder = find_reproduction(store, ns.ref)
    if folder is not None:
        print(write_reproduction_report(store, folder, ns.output or folder / "report.html"))
        return 0
    try:
        rec = store.get(ns.ref)
    except GroklabError:
        raise GroklabError(
            f"RUN|SWEEP|REPRODUCTION: {ns.ref!r} is no run, sweep or reproduction in {store.root} "
            "(see `groklab runs`, `groklab sweeps`, or give a folder holding claims.json)"
        ) from None
    print(write_run_report(store, rec.id, ns.output or store.run_dir(rec.id) / "report.html"))
    return 0


COMMANDS = {
    "sweep": cmd_sweep,
    "sweeps": cmd_sweeps,
    "run": cmd_run,
    "resume": cmd_resume,
    "presets": cmd_presets,
    "config": cmd_config,
    "runs": cmd_runs,
    "show": cmd_show,
    "plot": cmd_plot,
    "export": cmd_export,
    "report": cmd_report,
    "data": cmd_data,
    "reproduce": cmd_reproduce,
    "compare-measures": cmd_compare,
    "llc": cmd_llc,
    "phase-diagram": cmd_phase_diagram,
    "patterns": cmd_patterns,
}


PATH_OPTIONS = {"output": "--output", "out": "--out", "runs_dir": "--runs-dir", "source": "--from"}


def _check_paths_named(ns: argparse.Namespace) -> None:
    """A path option given as an empty (or blank) string is refused: '' would silently mean the default place
    or the current folder."""
    for dest, flag in PATH_OPTIONS.items():
        value = getattr(ns, dest, None)
        if isinstance(value, str) and not value.strip():
            raise GroklabError(f"{flag}: must name a path, got {value!r}")


def main(argv: list[str] | None = None) -> int:
    ns = None
    try:
        parser = build_parser()
        ns, extra = parser.parse_known_args(argv)
        if extra:  # overrides after an option (`groklab run --quiet k=v`) join the other positionals
            if not hasattr(ns, "args") or any(x.startswith("-") or "=" not in x for x in extra):
                raise GroklabError(f"unrecognized arguments: {' '.join(extra)} (overrides look like key=value)")
            ns.args = [*ns.args, *extra]
        _check_paths_named(ns)
        tune_malloc()  # the CLI owns its process: keep freed CPU tensor memory for the next step (training/allocator.py)
        return COMMANDS[ns.command](ns)
    except GroklabError as exc:
        print(f"groklab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("groklab: interrupted", file=sys.stderr)
        return 130
    except sqlite3.DatabaseError as exc:  # a damaged run database, or another program's
        if isinstance(exc, sqlite3.IntegrityError):  # a broken invariant of groklab's own, not the user's file
            raise
        from groklab.store.db import default_runs_dir

        where = getattr(ns, "runs_dir", None) or default_runs_dir()
        if any(word in str(exc) for word in ("disk I/O", "disk is full", "readonly")):  # the disk, not the file
            print(f"groklab: error: the run database in {where} cannot be written: {exc} (is the disk full?)", file=sys.stderr)
        else:
            print(f"groklab: error: the run database in {where} cannot be read: {exc} (damaged, or not groklab's)", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `groklab show RUN | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
