"""`groklab reproduce fourier-circuits`: Nanda et al. (2023), "Progress measures for grokking via
mechanistic interpretability", on their setting (preset `nanda2023`: a + b mod 113, 30% train, a 1-layer
transformer without LayerNorm, full batch, AdamW, weight decay 1), with the Fourier circuit measures
logged through training (measures/fourier_circuit.py).

Their claims, each judged per seed and over seeds:
  (a) after grokking a handful of key frequencies carry the circuit (5 at p = 113);
  (b) the restricted loss falls before the test loss does (the circuit forms before it shows);
  (c) the excluded loss rises during circuit formation (the training fit comes to rest on the circuit);
  (d) three phases in order: memorization (train loss fitted, t_fit), circuit formation (the restricted
      loss's steepest fall), cleanup (the test accuracy's steepest rise, as the test loss collapses), with
      the weight norm falling from the circuit's formation to the end.
The quick version keeps the model, optimizer and data fraction and takes a smaller prime, so that three
seeds grok on a 2-core CPU.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from groklab.analysis.stages import steepest_change
from groklab.reproductions.common import RunView, claim_row, collect, continue_or_create, mean_ci_text
from groklab.store import Store
from groklab.sweeps import run_sweep

PRESET = "nanda2023"
MEASURES = "measures.enabled=[loss_acc,weight_norm,med,fourier,fourier_circuit]"  # med and the weight norm, for compare-measures
SNAPSHOTS = "schedule.snapshot_per_decade=5"  # weights kept for `groklab llc` and Run.model(step): about 1 MB each
SEEDS = 3
KEY_HANDFUL = (1, 8)  # (a): "a handful" of key frequencies: at least 1, at most 8
PAPER = {
    "key_freqs": "5 key frequencies (14, 35, 41, 42, 52) at p = 113",
    "phases": "memorization to ~1.4k epochs, circuit formation to ~9.4k, cleanup to ~13k (p = 113)",
}


@dataclass(frozen=True)
class Plan:
    """What one version of the reproduction trains."""

    overrides: list[str] = field(default_factory=list)
    note: str = ""


FULL = Plan([MEASURES, SNAPSHOTS], "the paper's setup (preset nanda2023, p = 113, 40,000 steps)")
QUICK = Plan(
    [
        MEASURES,
        SNAPSHOTS,
        "task.p=59",
        "schedule.steps=24000",
        "schedule.eval_every=50",
        "schedule.eval_max_gap=200",
        "measures.every.fourier_circuit=2",
    ],
    "a CPU-scale analog: p = 59, 24,000 steps, evaluations every 50 steps early and at most 200 apart",
)


def phases(v: RunView) -> tuple[int | None, int | None, int | None]:
    """(end of memorization: t_fit; circuit formation: the restricted loss's steepest fall; cleanup: the test
    accuracy's steepest rise, where the test loss collapses).

    The cleanup is read off the test accuracy, not the test loss: while the network memorizes, its test loss
    swings by many nats from one evaluation to the next, and its largest single fall can land there."""
    formed = steepest_change(*v.curve("fourier_restricted_loss"), sign=-1)
    return v.event("t_fit"), formed, steepest_change(*v.curve("test_acc"), sign=1)


def claims(views: list[RunView]) -> list[dict[str, str]]:
    grokked = [v for v in views if v.event("t_grok") is not None]
    why = f"no run grokked ({len(views)} finished)" if not grokked else ""
    seeds = f"of {len(grokked)} grokked seed(s)"
    rows = []

    keys = [v.final("fourier_key_freqs") for v in grokked]
    lo, hi = KEY_HANDFUL
    ok_a = None if not grokked or None in keys else all(lo <= k <= hi for k in keys)
    rows.append(
        claim_row(
            f"(a) after grokking a handful ({lo}-{hi}) of key frequencies carry the circuit",
            PAPER["key_freqs"],
            why
            or f"final key frequencies {mean_ci_text([float(k) for k in keys], '{:.1f}', over='seeds')}; Gini of the embedding's "
            f"frequency norms {mean_ci_text([v.final('fourier_gini_embed') or 0.0 for v in grokked], '{:.2f}')}",
            ok_a,
        )
    )

    leads = []
    for v in grokked:
        _, formed, cleaned = phases(v)
        if formed is not None and cleaned is not None:
            leads.append(cleaned - formed)
    ok_b = None if not grokked or len(leads) < len(grokked) else all(d > 0 for d in leads)
    lead_text = mean_ci_text([float(d) for d in leads], "{:.0f}", unit=" steps", over="seeds")
    rows.append(
        claim_row(
            "(b) the restricted loss falls before the test loss does",
            "restricted loss falls during circuit formation, the test loss only in the cleanup",
            why or f"test accuracy's steepest rise minus the restricted loss's steepest fall: {lead_text} {seeds}",
            ok_b,
        )
    )

    rises = []
    for v in grokked:
        t_fit, _, cleaned = phases(v)
        start, end = (
            (None, None)
            if t_fit is None or cleaned is None
            else (v.at("fourier_excluded_loss", t_fit), v.at("fourier_excluded_loss", cleaned))
        )
        if start is not None and end is not None:
            rises.append(end - start)
    ok_c = None if not grokked or len(rises) < len(grokked) else all(r > 0 for r in rises)
    rows.append(
        claim_row(
            "(c) the excluded loss rises during circuit formation (from t_fit to the cleanup)",
            "excluded loss rises while the train loss stays low",
            why or f"excluded loss at the cleanup minus at t_fit: {mean_ci_text(rises, '{:.3g}', over='seeds')} {seeds}",
            ok_c,
        )
    )

    ordered, norms, marks = [], [], []
    for v in grokked:
        t_fit, formed, cleaned = phases(v)
        if None in (t_fit, formed, cleaned):
            continue
        marks.append((t_fit, formed, cleaned))
        ordered.append(t_fit < formed < cleaned)
        before, after = v.at("weight_norm", formed), v.final("weight_norm")
        norms.append(before is not None and after is not None and after < before)
    ok_d = None if not grokked or len(marks) < len(grokked) else all(ordered) and all(norms)
    text = "; ".join(
        f"{name} {mean_ci_text([float(m[i]) for m in marks], '{:.0f}')}" for i, name in enumerate(("t_fit", "formation", "cleanup"))
    )
    rows.append(
        claim_row(
            "(d) memorization, circuit formation, cleanup in that order, the weight norm falling from the formation on",
            PAPER["phases"],
            why or f"{text} (steps); in order in {sum(ordered)}, weight norm falls in {sum(norms)} {seeds}",
            ok_d,
        )
    )
    return rows


def check(quick: bool, overrides: list[str]) -> None:
    """Bad overrides fail before anything is written."""
    from groklab.config import resolve_config

    resolve_config(PRESET, [*(QUICK if quick else FULL).overrides, *overrides])


def reproduce(
    store: Store,
    quick: bool,
    seeds: int,
    out_dir: Path,
    train: Callable[[Store, str], Any] = lambda store, sweep_id: run_sweep(store, sweep_id),
    overrides: list[str] | None = None,
    echo: Callable[[str], Any] = print,
) -> list[dict[str, str]]:
    """Train (or continue) the seeds, draw each run's figure, and return the claim table."""
    from groklab.plots.fourier_figure import plot_circuit

    plan = QUICK if quick else FULL
    extra = [*plan.overrides, *(overrides or [])]
    check(quick, overrides or [])
    echo(f"fourier-circuits reproduction ({plan.note}); {seeds} seed(s)")
    sweep_id = continue_or_create(store, PRESET, "fourier-circuits" + ("-quick" if quick else ""), extra, [], seeds, train)
    views = collect(store, sweep_id)
    rows = claims(views)
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = [plot_circuit(store, v.run_id, out_dir / f"circuit_s{v.seed}.png") for v in views]
    (out_dir / "claims.json").write_text(json.dumps({"sweeps": [sweep_id], "seeds": seeds, "claims": rows}, indent=2))
    echo(f"figures ({len(figures)}) and claims.json in {out_dir}")
    return rows
