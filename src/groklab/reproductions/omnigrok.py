"""`groklab reproduce omnigrok`: Liu, Michaud, Tegmark (ICLR 2023), "Omnigrok: grokking beyond algorithmic
data", on their MNIST setting (preset `liu2023-omnigrok`: the first 1000 images, MLP 784-200-200-10, every
parameter ×8 at init, AdamW lr 1e-3 weight decay 0.01, MSE, batch 200, float64). Two arms, SEEDS seeds each:

  free   the preset: a large initialization, the weight norm free (and slowly decayed)
  fixed  the same initialization, the total weight norm held after every step at FIXED_NORM times its initial
         value (their landscape notebooks' renormalization; weight decay 0, as there), i.e. at the norm of
         PyTorch's default initialization

Their claims (Fig. 1 and Sec. 3):
  (a) from a large initialization the network fits the training set early and generalizes much later;
  (b) held at a small weight norm it generalizes as it fits: the delay is gone.
"Generalized" is test accuracy >= GENERALIZED; "much later" is at least LATE times t_fit; "as it fits" is
within PROMPT times t_fit.
"""

from __future__ import annotations

from dataclasses import dataclass

from groklab.reproductions.claim import Claim, Recipe, Setting, register
from groklab.reproductions.common import RunView, arm_judge, arm_needs, arms_figure, claim_row, mean_ci_text, mnist_files, plan_of

PRESET = "liu2023-omnigrok"
SEEDS = 3
GENERALIZED = 0.85  # test accuracy on all 10,000 test images that counts as generalized (the plateau is ~0.9)
FIXED_NORM = 0.125  # ×1/8: the ×8 initialization brought back to the default init's norm
LATE = 10.0  # (a): generalizing at least this many times t_fit counts as "much later"
PROMPT = 2.0  # (b): within this many times t_fit counts as "as it fits"
PAPER_STEPS = 100_000  # their budget: a free run that has not generalized by then fails (a)
EVENTS = ["events.fit_threshold=0.99", f"events.grok_threshold={GENERALIZED}"]
ARMS: dict[str, list[str]] = {
    "free": [],
    "fixed": [f"optim.fixed_norm={FIXED_NORM}", "optim.weight_decay=0"],
}
PAPER = {
    "a": "MNIST, 1000 images, ×8 init: train accuracy 100% early, test accuracy rises long after (Fig. 1; 1e5 steps)",
    "b": "with the weight norm held small, train and test accuracy rise together (Sec. 3, the landscape runs)",
}


@dataclass(frozen=True)
class Plan:
    steps: dict[str, int]  # per arm
    note: str


FULL = Plan({"free": PAPER_STEPS, "fixed": 10_000}, "the paper's budget: 100,000 steps free, 10,000 at fixed norm")
QUICK = Plan({"free": 60_000, "fixed": 5_000}, "60,000 steps free, 5,000 at fixed norm")


def arm_overrides(arm: str, setting: Setting) -> list[str]:
    plan = plan_of(setting, FULL, QUICK)
    return [*EVENTS, *ARMS[arm], f"schedule.steps={plan.steps[arm]}", *setting.overrides]


def generalized_at(v: RunView) -> int | None:
    return v.first("test_acc", GENERALIZED)


def pct(values: list[float]) -> str:
    return mean_ci_text([100 * x for x in values], "{:.1f}", within=(0, 100), unit="%", over="seeds")


def describe(views: list[RunView], budget: int) -> str:
    fits = [v.event("t_fit") for v in views]
    gens = [generalized_at(v) for v in views]
    at_fit = [v.at("test_acc", t) or 0.0 for v, t in zip(views, fits, strict=True) if t is not None]
    reached = [float(g) for g in gens if g is not None]
    within = (0.0, float(budget))
    text = f"t_fit {mean_ci_text([float(t) for t in fits if t is not None], '{:.0f}', within=within)}; "
    text += f"test accuracy at t_fit {pct(at_fit)}; "
    text += f"test >= {GENERALIZED:.0%} at step {mean_ci_text(reached, '{:.0f}', within=within) if reached else '-'}"
    missed = gens.count(None)
    return text + (f" ({missed} of {len(gens)} seed(s) not within {budget} steps)" if missed else "")


def late(arms: dict[str, list[RunView]], budgets: dict[str, int]) -> list[dict[str, str]]:
    """(a): from the ×8 initialization, fitted early and generalized much later."""
    free = arms.get("free", [])
    why = "" if free else "no finished run in arm free"
    ok_a: bool | None = None
    if not why:
        ratios = []
        for v in free:
            t_fit, t_gen = v.event("t_fit"), generalized_at(v)
            if t_fit is None:
                ok_a = False  # never fitted: not the paper's picture
                break
            ratios.append(None if t_gen is None else t_gen / max(t_fit, 1))
        else:
            if any(r is not None and r < LATE for r in ratios):
                ok_a = False
            elif all(r is not None for r in ratios):
                ok_a = True
            elif budgets["free"] >= PAPER_STEPS:
                ok_a = False
            else:
                why = (
                    f"undecided in {budgets['free']} steps: fitted early but not at {GENERALIZED:.0%} test accuracy yet "
                    f"(the paper trains {PAPER_STEPS:,}); {describe(free, budgets['free'])}"
                )
    return [
        claim_row(
            f"(a) from a ×8 initialization the network fits early and generalizes much later (>= {LATE:g}× t_fit)",
            PAPER["a"],
            why or describe(free, budgets["free"]),
            ok_a,
        )
    ]


def fixed_norm(arms: dict[str, list[RunView]], budgets: dict[str, int]) -> list[dict[str, str]]:
    """(b): held at a small weight norm, generalized as it fits."""
    fixed = arms.get("fixed", [])
    why = "" if fixed else "no finished run in arm fixed"
    ok_b: bool | None = None
    if not why:
        prompt = []
        for v in fixed:
            t_fit, t_gen = v.event("t_fit"), generalized_at(v)
            prompt.append(t_fit is not None and t_gen is not None and t_gen <= PROMPT * max(t_fit, 1))
        ok_b = all(prompt)
    return [
        claim_row(
            f"(b) at a fixed small weight norm ({FIXED_NORM:g}× the initial) it generalizes as it fits (within {PROMPT:g}× t_fit)",
            PAPER["b"],
            why or describe(fixed, budgets["fixed"]),
            ok_b,
        )
    ]


def claims(arms: dict[str, list[RunView]], budgets: dict[str, int]) -> list[dict[str, str]]:
    """Both claims' rows."""
    return late(arms, budgets) + fixed_norm(arms, budgets)


PANELS = [
    ("train_acc", "train accuracy"),
    ("test_acc", "test accuracy"),
    ("weight_norm", "weight norm"),
]  # the figure: (metric, title) per panel


def _check(setting: Setting) -> None:
    from groklab.config import resolve_config

    mnist_files(resolve_config(PRESET, arm_overrides("free", setting)))


RECIPE = register(
    Recipe(
        "omnigrok",
        "Liu, Michaud, Tegmark (ICLR 2023), Omnigrok: grokking beyond algorithmic data (MNIST)",
        SEEDS,
        (
            Claim("late", PAPER["a"], arm_needs("omnigrok", PRESET, arm_overrides, "free"), arm_judge(late, "free")),
            Claim("fixed-norm", PAPER["b"], arm_needs("omnigrok", PRESET, arm_overrides, "fixed"), arm_judge(fixed_norm, "fixed")),
        ),
        {"paper": FULL.note, "quick": QUICK.note},
        check=_check,
        figures=arms_figure("omnigrok", PANELS),
    )
)
