"""`groklab reproduce grokfast`: Grokfast (Lee et al. 2024) judged against a fair baseline, the comparison its
users ask for (ironjr/grokfast #12: AdamW beats Grokfast + Adam; lucidrains/grokfast-pytorch #4: λ = 2 acts
like a larger learning rate). On the paper's setting (preset `grokfast`: a · b mod 97, 50% train, a 2-layer
transformer, Adam with L2 0.005, batch 512), three arms, SEEDS seeds each:

  grokfast  Grokfast-EMA, α 0.98, λ 2 (the preset)
  baseline  the paper's baseline (their README's `python main.py`): Adam without the filter and without weight
            decay; 39,890 steps to 95% in their table, Grokfast-EMA 910 (×43.84)
  matched   without the filter, at the effective learning rate and weight decay the filter gives a gradient
            that changes slowly: the EMA then equals the gradient, the update direction is (1 + λ) g + wd·θ
            = (1 + λ)(g + wd/(1 + λ) θ), so lr × (1 + λ) and weight decay ÷ (1 + λ)

Each arm's time is the first step at which the test accuracy reaches GENERALIZED (the paper's 95%); the
speed-up of Grokfast over an arm is that arm's time over Grokfast's, per seed (same seed, same data), with a
95% CI over seeds. A seed whose comparison arm never got there within the budget gives a lower bound.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from groklab.reproductions.claim import Claim, Recipe, Setting, register
from groklab.reproductions.common import RunView, arm_judge, arm_needs, arms_figure, claim_row, mean_ci_text, plan_of

PRESET = "grokfast"
SEEDS = 3
GENERALIZED = 0.95
MEASURES = "measures.enabled=[loss_acc,weight_norm]"
PAPER = {
    "a": "95% validation accuracy at 910 steps with Grokfast-EMA, 39,890 for the baseline: ×43.84 (their README's table)",
    "b": "not in the paper: users ask whether a baseline at the filter's effective lr and weight decay does as well",
}


@dataclass(frozen=True)
class Plan:
    overrides: list[str]  # every arm's
    baseline_steps: int  # the two baselines' budget (Grokfast's is the preset's or overrides')
    note: str


FULL = Plan([MEASURES], 100_000, "the paper's setting; the baselines get 100,000 steps")
QUICK = Plan([MEASURES, "schedule.eval_every=20"], 4_000, "the paper's setting; Grokfast 3,000 steps, the baselines 4,000")


def arm_overrides(arm: str, setting: Setting) -> list[str]:
    """Every override of one arm's runs; the matched arm's lr and weight decay follow from the resolved ones."""
    from groklab.config import resolve_config

    plan, extra = plan_of(setting, FULL, QUICK), list(setting.overrides)
    base = [*plan.overrides, *extra]
    if arm == "grokfast":
        return base
    off = [*plan.overrides, f"schedule.steps={plan.baseline_steps}", *extra, "optim.grokfast.kind=none"]  # the user's steps win
    if arm == "baseline":
        return [*off, "optim.weight_decay=0"]
    cfg = resolve_config(PRESET, base)
    gain = 1.0 + cfg.optim.grokfast.lamb
    return [*off, f"optim.lr={cfg.optim.lr * gain!r}", f"optim.weight_decay={cfg.optim.weight_decay / gain!r}"]


ARMS = ("grokfast", "baseline", "matched")


def generalized_at(v: RunView) -> int | None:
    return v.first("test_acc", GENERALIZED)


def speedups(fast: list[RunView], slow: list[RunView], budget: int) -> tuple[list[float], list[float], list[bool]]:
    """Per seed present in both: (measured speed-ups, lower bounds where the slow arm never got there, whether
    Grokfast was sooner)."""
    by_seed = {v.seed: generalized_at(v) for v in slow}
    measured, bounds, sooner = [], [], []
    for v in fast:
        if v.seed not in by_seed:
            continue
        t_fast, t_slow = generalized_at(v), by_seed[v.seed]
        if t_fast is None:
            sooner.append(False)
            continue
        if t_slow is None:
            bounds.append(budget / max(t_fast, 1))
            sooner.append(True)
        else:
            measured.append(t_slow / max(t_fast, 1))
            sooner.append(t_fast < t_slow)
    return measured, bounds, sooner


def fast_text(fast: list[RunView], budget: int) -> str:
    t_fast = [generalized_at(v) for v in fast]
    reached = [float(t) for t in t_fast if t is not None]
    text = f"Grokfast at step {mean_ci_text(reached, '{:.0f}', within=(0.0, float(budget)), over='seeds') if reached else '-'}"
    if len(reached) < len(t_fast):
        text += f" ({len(t_fast) - len(reached)} of {len(t_fast)} seed(s) not within {budget} steps)"
    return text


def sooner_than(key: str, arm: str, claim: str) -> Callable[[dict[str, list[RunView]], dict[str, int]], list[dict[str, str]]]:
    """The judge of one comparison: Grokfast against `arm`, seed by seed."""

    def judge(arms: dict[str, list[RunView]], budgets: dict[str, int]) -> list[dict[str, str]]:
        fast, slow = arms.get("grokfast", []), arms.get(arm, [])
        if not fast or not slow:
            return [claim_row(claim, PAPER[key], f"no finished run in arm {'grokfast' if not fast else arm}", None)]
        t_fast = [generalized_at(v) for v in fast]
        measured, bounds, sooner = speedups(fast, slow, budgets[arm])
        t_slow = [generalized_at(v) for v in slow]
        if not any(t is not None for t in t_fast + t_slow):
            ok, why = None, f"neither arm reached {GENERALIZED:.0%} test accuracy within the budget"
        else:
            ok, why = bool(sooner) and all(sooner), ""
        slow_steps = mean_ci_text([float(t) for t in t_slow if t is not None], "{:.0f}", within=(0.0, float(budgets[arm])))
        text = fast_text(fast, budgets["grokfast"]) + f", {arm} at {slow_steps}"
        if t_slow.count(None):
            text += f" ({t_slow.count(None)} of {len(t_slow)} not within {budgets[arm]} steps)"
        parts = [f"×{mean_ci_text(measured, '{:.2f}', within=(0.0, float('inf')), over='seeds')}"] if measured else []
        if bounds:
            parts.append(f"≥ ×{min(bounds):.1f} in {len(bounds)} seed(s) where {arm} did not get there")
        text += f"; speed-up {', '.join(parts) or '-'}; Grokfast sooner in {sum(sooner)} of {len(sooner)} seed(s)"
        return [claim_row(claim, PAPER[key], why or text, ok)]

    return judge


sooner_than_baseline = sooner_than("a", "baseline", "(a) Grokfast-EMA generalizes sooner than the paper's baseline")
sooner_than_matched = sooner_than(
    "b", "matched", "(b) Grokfast-EMA generalizes sooner than a baseline at its effective lr and weight decay"
)


def claims(arms: dict[str, list[RunView]], budgets: dict[str, int]) -> list[dict[str, str]]:
    """Both claims' rows."""
    return sooner_than_baseline(arms, budgets) + sooner_than_matched(arms, budgets)


PANELS = [
    ("train_acc", "train accuracy"),
    ("test_acc", "test accuracy"),
    ("weight_norm", "weight norm"),
]  # the figure: (metric, title) per panel


RECIPE = register(
    Recipe(
        "grokfast",
        "Lee et al. (2024), Grokfast, judged against a fair baseline (a · b mod 97)",
        SEEDS,
        (
            Claim(
                "baseline",
                PAPER["a"],
                arm_needs("grokfast", PRESET, arm_overrides, "grokfast", "baseline"),
                arm_judge(sooner_than_baseline, "grokfast", "baseline"),
            ),
            Claim(
                "matched",
                PAPER["b"],
                arm_needs("grokfast", PRESET, arm_overrides, "grokfast", "matched"),
                arm_judge(sooner_than_matched, "grokfast", "matched"),
            ),
        ),
        {"paper": FULL.note, "quick": QUICK.note},
        figures=arms_figure("grokfast", PANELS),
    )
)
