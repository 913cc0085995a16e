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

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from groklab.analysis.stages import steepest_change
from groklab.reproductions.claim import Claim, Need, Recipe, Setting, register
from groklab.reproductions.common import RunView, claim_row, mean_ci_text, plan_of
from groklab.reproductions.evidence import Evidence

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


def _grokked(views: list[RunView]) -> tuple[list[RunView], str, str]:
    """The runs that grokked, why none can be judged (if so), and the words for how many there are."""
    grokked = [v for v in views if v.event("t_grok") is not None]
    return grokked, f"no run grokked ({len(views)} finished)" if not grokked else "", f"of {len(grokked)} grokked seed(s)"


def key_frequencies(views: list[RunView]) -> list[dict[str, str]]:
    grokked, why, _ = _grokked(views)
    keys = [v.final("fourier_key_freqs") for v in grokked]
    lo, hi = KEY_HANDFUL
    ok_a = None if not grokked or None in keys else all(lo <= k <= hi for k in keys)
    return [
        claim_row(
            f"(a) after grokking a handful ({lo}-{hi}) of key frequencies carry the circuit",
            PAPER["key_freqs"],
            why
            or f"final key frequencies {mean_ci_text([float(k) for k in keys], '{:.1f}', over='seeds')}; Gini of the embedding's "
            f"frequency norms {mean_ci_text([v.final('fourier_gini_embed') or 0.0 for v in grokked], '{:.2f}')}",
            ok_a,
        )
    ]


def restricted_loss(views: list[RunView]) -> list[dict[str, str]]:
    grokked, why, seeds = _grokked(views)
    leads = []
    for v in grokked:
        _, formed, cleaned = phases(v)
        if formed is not None and cleaned is not None:
            leads.append(cleaned - formed)
    ok_b = None if not grokked or len(leads) < len(grokked) else all(d > 0 for d in leads)
    lead_text = mean_ci_text([float(d) for d in leads], "{:.0f}", unit=" steps", over="seeds")
    return [
        claim_row(
            "(b) the restricted loss falls before the test loss does",
            "restricted loss falls during circuit formation, the test loss only in the cleanup",
            why or f"test accuracy's steepest rise minus the restricted loss's steepest fall: {lead_text} {seeds}",
            ok_b,
        )
    ]


def excluded_loss(views: list[RunView]) -> list[dict[str, str]]:
    grokked, why, seeds = _grokked(views)
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
    return [
        claim_row(
            "(c) the excluded loss rises during circuit formation (from t_fit to the cleanup)",
            "excluded loss rises while the train loss stays low",
            why or f"excluded loss at the cleanup minus at t_fit: {mean_ci_text(rises, '{:.3g}', over='seeds')} {seeds}",
            ok_c,
        )
    ]


def three_phases(views: list[RunView]) -> list[dict[str, str]]:
    grokked, why, seeds = _grokked(views)
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
    return [
        claim_row(
            "(d) memorization, circuit formation, cleanup in that order, the weight norm falling from the formation on",
            PAPER["phases"],
            why or f"{text} (steps); in order in {sum(ordered)}, weight norm falls in {sum(norms)} {seeds}",
            ok_d,
        )
    ]


def claims(views: list[RunView]) -> list[dict[str, str]]:
    """Every claim's rows from the finished runs."""
    return [row for judge in (key_frequencies, restricted_loss, excluded_loss, three_phases) for row in judge(views)]


def needs(setting: Setting) -> dict[str, Need]:
    return {"runs": Need("fourier-circuits", PRESET, (*plan_of(setting, FULL, QUICK).overrides, *setting.overrides))}


def judge(of: Callable[[list[RunView]], list[dict[str, str]]]) -> Callable[[Evidence], list[dict[str, str]]]:
    return lambda ev: of(ev.runs("runs"))


def figures(ev: Evidence, out_dir: Path) -> list[Path]:
    """Each run's circuit figure."""
    from groklab.plots.fourier_figure import plot_circuit

    return [plot_circuit(ev.store, v.run_id, out_dir / f"circuit_s{v.seed}.png") for v in ev.runs("runs")]


RECIPE = register(
    Recipe(
        "fourier-circuits",
        "Nanda et al. (2023), Progress measures for grokking via mechanistic interpretability",
        SEEDS,
        (
            Claim("key-frequencies", PAPER["key_freqs"], needs, judge(key_frequencies)),
            Claim(
                "restricted-loss", "the restricted loss falls during circuit formation, before the test loss", needs, judge(restricted_loss)
            ),
            Claim("excluded-loss", "the excluded loss rises during circuit formation", needs, judge(excluded_loss)),
            Claim("phases", PAPER["phases"], needs, judge(three_phases)),
        ),
        {"paper": FULL.note, "quick": QUICK.note},
        figures=figures,
    )
)
