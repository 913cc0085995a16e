"""`groklab reproduce numerical-stability`: Prieto et al. (ICLR 2025), "Grokking at the edge of numerical
stability", on their setting (preset `prieto2025`: a + b mod 113 as one-hot pairs, 40% train, a bias-free
MLP 226-200-200-113, full batch, AdamW without weight decay), one stored sweep per arm:

  float32    softmax cross-entropy in float32 (their default), lr 0.01 (Fig. 1)
  float64    the same loss computed in float64 (their --cross_entropy_dtype float64)
  stablemax  StableMax cross-entropy in float64, beta2 0.999 (Fig. 1)
  orthograd  ⊥AdamW, lr 0.005, 500 steps (Fig. 6, MLP)
  baseline   AdamW, lr 0.005, 500 steps: Fig. 6's comparison for ⊥AdamW

Their claims, judged per seed and over seeds:
  (a) without weight decay, float32 training stalls with Softmax Collapse and does not grok;
  (b) float64 delays Softmax Collapse;
  (c) StableMax, which cannot collapse, generalizes without any regularization;
  (d) ⊥Grad generalizes without weight decay, and sooner than the baseline.
"Generalizes" is test accuracy >= GENERALIZED; "collapsed" is at least COLLAPSED of the training examples
at exactly zero loss (measure softmax_collapse). The paper reports no seeds and no error bars; we run SEEDS.

The full version is their budget: 80,000 steps for the first three arms (Fig. 1), 500 for the last two.
`--quick` keeps the model, optimizer, data fraction and every arm's settings, and takes p = 59 and 6,000
steps for the first three arms, so that they fit a 2-core CPU; the ⊥Grad arms run as in the paper.
"""

from __future__ import annotations

from dataclasses import dataclass

from groklab.reproductions.claim import Claim, Recipe, Setting, register
from groklab.reproductions.common import ArmsJudge, RunView, arm_judge, arm_needs, arms_figure, claim_row, mean_ci_text, plan_of

PRESET = "prieto2025"
SEEDS = 3
GENERALIZED = 0.9  # test accuracy that counts as generalized
COLLAPSED = 0.5  # share of training examples at exactly zero loss that counts as Softmax Collapse
SC_MEASURES = "measures.enabled=[loss_acc,weight_norm,softmax_collapse,nlm_alignment]"
FIG1 = ["optim.lr=0.01"]
FIG6 = ["optim.lr=0.005", "schedule.steps=500", "schedule.eval_every=10", "schedule.eval_dense_until=500"]
ARMS: dict[str, list[str]] = {
    "float32": [*FIG1, "optim.loss_dtype=float32"],
    "float64": [*FIG1, "optim.loss_dtype=float64"],
    "stablemax": [*FIG1, "optim.loss=stablemax", "optim.loss_dtype=float64", "optim.betas=[0.9,0.999]"],
    "orthograd": [*FIG6, "optim.orthograd=true"],
    "baseline": FIG6,
}
LONG_ARMS = ("float32", "float64", "stablemax")  # the arms whose budget the plan sets
PAPER_STABLEMAX_STEPS = 80_000  # Fig. 1's StableMax run: a budget this long that does not generalize is a FAIL
PAPER = {
    "a": "float32, no weight decay: SC on the training set and test accuracy stuck near chance (Figs. 1-2)",
    "b": "the higher the loss's precision, the later SC and the higher the test accuracy reached (Fig. 2)",
    "c": "StableMax groks with no regularization (Fig. 1, 80,000 epochs; Fig. 4)",
    "d": "⊥AdamW generalizes within 300-500 epochs, AdamW without weight decay does not (Figs. 1 and 6)",
}


@dataclass(frozen=True)
class Plan:
    """What one version of the reproduction trains."""

    long: list[str]  # overrides of the float32, float64 and StableMax arms
    note: str


FULL = Plan(["schedule.steps=80000", "schedule.eval_max_gap=1000"], "the paper's setup: p = 113, 80,000 steps (Fig. 1), 500 (Fig. 6)")
QUICK = Plan(
    ["task.p=59", "schedule.steps=6000", "schedule.eval_dense_until=200", "schedule.eval_per_decade=20", "schedule.eval_max_gap=250"],
    "a CPU-scale analog: p = 59 and 6,000 steps for the float32, float64 and StableMax arms; ⊥Grad as in the paper",
)


def arm_overrides(arm: str, setting: Setting) -> list[str]:
    """Every override of one arm's runs: the arm's own, the plan's budget for the long arms, then the user's."""
    plan = plan_of(setting, FULL, QUICK)
    return [SC_MEASURES, *ARMS[arm], *(plan.long if arm in LONG_ARMS else []), *setting.overrides]


def generalized_at(v: RunView) -> int | None:
    return v.first("test_acc", GENERALIZED)


def collapsed_at(v: RunView) -> int | None:
    return v.first("sc_zero_loss", COLLAPSED)


def missing(arms: dict[str, list[RunView]], *names: str) -> str:
    empty = [n for n in names if not arms.get(n)]
    return f"no finished run in arm(s) {', '.join(empty)}" if empty else ""


def pct(values: list[float]) -> str:
    return mean_ci_text([100 * x for x in values], "{:.1f}", within=(0, 100), unit="%", over="seeds")


def collapse(arms: dict[str, list[RunView]], budgets: dict[str, int]) -> list[dict[str, str]]:
    """(a): float32 without weight decay collapses and does not grok."""
    f32 = arms.get("float32", [])
    why = missing(arms, "float32")
    sc = [v.final("sc_zero_loss") or 0.0 for v in f32]
    best = [v.best("test_acc") or 0.0 for v in f32]
    ok_a = None if why else all(s >= COLLAPSED for s in sc) and all(b < GENERALIZED for b in best)
    return [
        claim_row(
            "(a) without weight decay, float32 training stalls with Softmax Collapse and does not grok",
            PAPER["a"],
            why
            or f"train examples at exactly zero loss at the end {pct(sc)}; best test accuracy {pct(best)} "
            f"(SC: >= {COLLAPSED:.0%}; grokked: >= {GENERALIZED:.0%}) in {budgets['float32']} steps",
            ok_a,
        )
    ]


def delayed(arms: dict[str, list[RunView]], budgets: dict[str, int]) -> list[dict[str, str]]:
    """(b): float64 delays the collapse, seed by seed."""
    f32, f64 = arms.get("float32", []), arms.get("float64", [])
    why = missing(arms, "float32", "float64")
    onsets32 = [collapsed_at(v) for v in f32]
    onsets64 = [collapsed_at(v) for v in f64]
    ok_b = None
    if not why and any(t is None for t in onsets32):
        why = "float32 did not collapse in every seed, so there is no onset to delay"
    elif not why:
        by_seed = {v.seed: t for v, t in zip(f64, onsets64, strict=True)}
        matched = [(t32, by_seed[v.seed]) for v, t32 in zip(f32, onsets32, strict=True) if v.seed in by_seed]
        ok_b = bool(matched) and all(t64 is None or t64 > t32 for t32, t64 in matched)  # type: ignore[operator]
    return [
        claim_row(
            "(b) computing the loss in float64 delays Softmax Collapse",
            PAPER["b"],
            why
            or f"SC onset (>= {COLLAPSED:.0%} at zero loss): float32 {onset_text(onsets32, budgets['float32'])}, "
            f"float64 {onset_text(onsets64, budgets['float64'])}; zero-loss share at the end: float32 "
            f"{pct([v.final('sc_zero_loss') or 0.0 for v in f32])}, float64 {pct([v.final('sc_zero_loss') or 0.0 for v in f64])}",
            ok_b,
        )
    ]


def stablemax(arms: dict[str, list[RunView]], budgets: dict[str, int]) -> list[dict[str, str]]:
    """(c): StableMax generalizes without regularization."""
    f32, sm = arms.get("float32", []), arms.get("stablemax", [])
    best = [v.best("test_acc") or 0.0 for v in f32]
    why = missing(arms, "stablemax", "float32")
    ends = [v.final("test_acc") or 0.0 for v in sm]
    chance = max(best) if best else 0.0
    ok_c: bool | None = None
    if not why:
        if all(generalized_at(v) is not None for v in sm):
            ok_c = True
        elif budgets["stablemax"] >= PAPER_STABLEMAX_STEPS:
            ok_c = False  # the paper's own budget, and a seed did not generalize
        else:
            why = (
                f"undecided in {budgets['stablemax']} steps (the paper trains {PAPER_STABLEMAX_STEPS:,}): StableMax's test "
                f"accuracy ends at {pct(ends)}, float32's best was {100 * chance:.1f}%; run the full version"
            )
    return [
        claim_row(
            "(c) StableMax generalizes without regularization",
            PAPER["c"],
            why
            or f"steps to test accuracy >= {GENERALIZED:.0%}: {onset_text([generalized_at(v) for v in sm], budgets['stablemax'])}; "
            f"test accuracy at the end {pct(ends)} (float32's best {100 * chance:.1f}%)",
            ok_c,
        )
    ]


def orthograd(arms: dict[str, list[RunView]], budgets: dict[str, int]) -> list[dict[str, str]]:
    """(d): ⊥Grad generalizes without weight decay, sooner than AdamW."""
    ortho, base = arms.get("orthograd", []), arms.get("baseline", [])
    why = missing(arms, "orthograd", "baseline")
    t_ortho = [generalized_at(v) for v in ortho]
    t_base = {v.seed: generalized_at(v) for v in base}
    ok_d = None
    if not why:
        ok_d = all(t is not None for t in t_ortho) and all(
            t_base.get(v.seed) is None or t_base[v.seed] > t  # type: ignore[operator]
            for v, t in zip(ortho, t_ortho, strict=True)
            if t is not None
        )
    return [
        claim_row(
            "(d) ⊥Grad generalizes without weight decay, and sooner than the baseline",
            PAPER["d"],
            why
            or f"steps to test accuracy >= {GENERALIZED:.0%}: ⊥AdamW {onset_text(t_ortho, budgets['orthograd'])}, AdamW "
            f"{onset_text(list(t_base.values()), budgets['baseline'])}; best test accuracy ⊥AdamW "
            f"{pct([v.best('test_acc') or 0.0 for v in ortho])}, AdamW {pct([v.best('test_acc') or 0.0 for v in base])}",
            ok_d,
        )
    ]


def claims(arms: dict[str, list[RunView]], budgets: dict[str, int]) -> list[dict[str, str]]:
    """The claim table from each arm's finished runs; `budgets`: each arm's steps, for censored times."""
    return [row for judge in (collapse, delayed, stablemax, orthograd) for row in judge(arms, budgets)]


def onset_text(steps: list[int | None], budget: int) -> str:
    """The steps at which seeds got there, 'not within N steps' for those that did not."""
    reached = [float(t) for t in steps if t is not None]
    text = mean_ci_text(reached, "{:.0f}", within=(0.0, float(budget))) if reached else ""
    missed = len(steps) - len(reached)
    if missed:
        text += ("; " if text else "") + f"{missed} of {len(steps)} seed(s) not within {budget} steps"
    elif reached:
        text += f" over {len(reached)} seeds" if len(reached) > 1 else ""
    return text or "-"


PANELS = [
    ("test_acc", "test accuracy"),
    ("sc_zero_loss", "train examples at exactly zero loss (SC)"),
]  # the figure: (metric, title) per panel


def _claim(name: str, statement: str, judge: ArmsJudge, *arms: str) -> Claim:
    return Claim(name, statement, arm_needs("numerical-stability", PRESET, arm_overrides, *arms), arm_judge(judge, *arms))


RECIPE = register(
    Recipe(
        "numerical-stability",
        "Prieto et al. (ICLR 2025), Grokking at the edge of numerical stability",
        SEEDS,
        (
            _claim("collapse", PAPER["a"], collapse, "float32"),
            _claim("float64", PAPER["b"], delayed, "float32", "float64"),
            _claim("stablemax", PAPER["c"], stablemax, "stablemax", "float32"),
            _claim("orthograd", PAPER["d"], orthograd, "orthograd", "baseline"),
        ),
        {"paper": FULL.note, "quick": QUICK.note},
        figures=arms_figure("numerical-stability", PANELS),
    )
)
