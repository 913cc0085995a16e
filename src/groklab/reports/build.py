"""What a report shows: for a run, its config and changes against the preset, events, final metrics and
curves; for a sweep, its spec, points, results across seeds and every run's curves; for a reproduction,
its claim table, its figures and its sweeps."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import yaml

from groklab.analysis.run_events import run_events
from groklab.config import changes_from_preset
from groklab.config.presets import flatten
from groklab.errors import GroklabError
from groklab.reports.curves import run_figures, sweep_figures
from groklab.reports.page import Page, table
from groklab.store import Store, SweepRecord
from groklab.store.records import preset_then
from groklab.sweeps.results import summarize


def _when(t: float | None) -> str:
    return "-" if t is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def _event_steps(store: Store, run_id: str) -> dict[str, int | None]:
    return {name: step for name, (step, _) in run_events(store, run_id).items()}


def run_page(store: Store, run_id: str) -> Page:
    """A run's report; refuses a run with no metrics yet (there would be nothing to show but its config)."""
    rec = store.get(run_id)
    metrics = store.metrics(rec.id)
    if not metrics:
        raise GroklabError(f"run {rec.id} has no metrics yet ({rec.status} at step {rec.step}); nothing to report")
    page = Page(f"run {rec.name} [{rec.id}]")
    page.text(
        f"preset {rec.preset} · {rec.status} at step {rec.step} · created {_when(rec.created)} · finished {_when(rec.finished)}"
        f" · device {rec.device} · trained with groklab {rec.version}" + (f" · {rec.message}" if rec.message else ""),
        "meta",
    )
    page.heading("Grokking events")
    events = run_events(store, rec.id)
    page.raw(table(["event", "step", "value"], [[k, s, v] for k, (s, v) in sorted(events.items())]))
    page.heading("Curves")
    page.figures(run_figures(metrics, {k: s for k, (s, _) in events.items()}))
    page.heading("Configuration")
    baseline = preset_then(store, rec.id)
    changes = changes_from_preset(rec.config, rec.preset, baseline)
    base = flatten(baseline) if baseline else {}
    if changes:
        page.raw(table(["key", "this run", "preset"], [[k, v, base.get(k)] for k, v in changes.items()]))
    else:
        page.text(f"the preset {rec.preset} as it is (no changes)")
    page.pre(yaml.safe_dump(rec.config, sort_keys=False), "the resolved config")
    page.heading("Final metrics")
    final = [[n, vs[-1], ss[-1]] for n, (ss, vs) in sorted(metrics.items())]
    page.raw(table(["metric", "value", "at step"], final))
    return page


def _sweep_body(page: Page, store: Store, sweep: SweepRecord, level: int = 2) -> None:
    linked = store.sweep_runs(sweep.id)
    spec = sweep.spec
    page.heading(f"Spec of sweep {sweep.name or sweep.id} [{sweep.id}]", level)
    rows = [["preset", spec.get("preset") or "(default)"], ["changes from the preset", " ".join(spec.get("overrides", [])) or "-"]]
    rows += [[f"grid {k}", ", ".join(map(str, v))] for k, v in spec.get("grid", {}).items()]
    rows += [["seeds", spec.get("seeds")], ["created", _when(sweep.created)]]
    page.raw(table(["", ""], rows))
    pending = len(sweep.points) - len(linked)
    if pending:
        page.text(f"{pending} of {len(sweep.points)} points have not started; the report shows the runs so far.", "meta")
    page.heading("Points", level)
    keys = list(sweep.points[0].values) if sweep.points else []
    point_rows, runs = [], []
    for i, point in enumerate(sweep.points):
        rid = linked.get(i)
        if rid is None:
            point_rows.append([i, *point.values.values(), "-", "pending", None, None, None, None])
            continue
        rec, ev = store.get(rid), _event_steps(store, rid)
        m = store.metrics(rid)
        last = {n: m[n][1][-1] if n in m else None for n in ("train_acc", "test_acc")}
        point_rows.append(
            [i, *point.values.values(), rid, rec.status, ev.get("t_fit"), ev.get("t_grok"), last["train_acc"], last["test_acc"]]
        )
        runs.append((f"{point.label} [{rid}]", m))
    page.raw(table(["point", *keys, "run", "status", "t_fit", "t_grok", "train_acc", "test_acc"], point_rows))
    page.heading("Across seeds (mean [95% CI])", level)
    summary_rows = []
    for row in summarize(store, sweep):
        label = " ".join(f"{k}={v}" for k, v in row["values"].items()) or "(all)"
        cells = [label, len(row["runs"])]
        for name in ("train_acc", "test_acc"):
            m = row["final"].get(name)
            cells.append("-" if not m else f"{m[0]:.3f} [{m[1]:.3f}, {m[2]:.3f}]")
        ev = row["events"]
        for name in ("t_fit", "t_grok"):
            e = ev[name]
            cells.append("-" if not e["mean_ci"] else f"{e['mean_ci'][0]:.0f} ({e['reached']}/{ev['n']})")
        cells.append(f"{ev['grokked_fraction']:.0%}" if ev["n"] else "-")
        summary_rows.append(cells)
    page.raw(table(["point", "runs", "final train_acc", "final test_acc", "t_fit (reached)", "t_grok (reached)", "grokked"], summary_rows))
    page.heading("Curves", level)
    page.figures(sweep_figures(runs))


def sweep_page(store: Store, sweep: SweepRecord) -> Page:
    """A sweep's report; refuses a sweep none of whose points has started."""
    if not store.sweep_runs(sweep.id):
        raise GroklabError(f"sweep {sweep.id} has no runs yet; nothing to report")
    page = Page(f"sweep {sweep.name or sweep.id} [{sweep.id}]")
    _sweep_body(page, store, sweep)
    return page


def sweep_ids(claims: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, sweep id) of a claims.json's sweeps (label -> id, as reproductions/runner.py writes them)."""
    sweeps = claims.get("sweeps")
    return [(label, sid) for label, sid in sweeps.items() if isinstance(sid, str)] if isinstance(sweeps, dict) else []


def reproduction_page(store: Store, out_dir: Path, title: str) -> Page:
    """A reproduction's report from its folder: claims.json, the figures beside it, and its sweeps."""
    claims_file = out_dir / "claims.json"
    try:
        data = json.loads(claims_file.read_text())
    except (OSError, ValueError) as exc:
        raise GroklabError(f"REPRODUCTION: cannot read {claims_file}: {exc}") from None
    page = Page(f"reproduction: {title}")
    meta = [f"folder {out_dir}"]
    if data.get("scale"):
        meta.append(f"{data['scale']} scale")
    if data.get("seeds"):
        meta.append(f"{data['seeds']} seed(s) per point")
    for key, label in (("commit", "commit"), ("device", "on"), ("wall_clock_s", "wall-clock (s)")):
        if data.get(key) is not None:
            meta.append(f"{label} {data[key]}")
    page.text(" · ".join(meta), "meta")
    page.heading("Claims")
    rows = [[c.get("result"), c.get("claim"), c.get("paper"), c.get("measured")] for c in data.get("claims", [])]
    page.raw(table(["result", "claim", "paper", "measured"], rows, classes={0: "result"}))
    counts = {r: sum(row[0] == r for row in rows) for r in ("PASS", "FAIL", "n/a")}
    page.text(", ".join(f"{n} {r}" for r, n in counts.items()))
    images = sorted(p for p in out_dir.iterdir() if p.suffix.lower() in (".png", ".svg"))
    if images:
        page.heading("Figures")
        for path in images:
            page.image(path)
    for label, sweep_id in sweep_ids(data):
        sweep = store.get_sweep(sweep_id)
        if store.sweep_runs(sweep.id):
            page.heading(f"Sweep {label or sweep.name or sweep.id}")
            _sweep_body(page, store, sweep, level=3)
    return page
