"""`groklab reproduce double-descent`: Davies, Langosco, Krueger (2023), "Unifying Grokking and Double
Descent", end to end: model-wise grokking over the embedding dimension, the early 0/b bump, and the
test loss's epoch-wise double descent.

Two stored sweeps (running the command again continues them): the embedding dimension d_model over
`dims` x seeds, and one d_model = 128 model with evaluations dense enough to see the 0/b bump (their
Fig. 7) and the epoch-wise double descent (Fig. 1). The paper's numbers live here, in PAPER, and nowhere
else; it reports one seed per dimension, this runs three.

The full version is the paper's setup (preset davies2023, the authors' model and equation format: a / b
mod 97, 50% train, 2 layers, one head, MLP 4 x d_model, dropout 0.1 on the MLP output, AdamW lr 1e-3,
wd 1e-5, batch 512, 400K steps; d_model 1..80), meant for a GPU. `--quick` is a scaled analog for a
2-core CPU (QUICK.analog, docs/fidelity.md): its transition dimensions are its own, so only the shape of
the picture is judged. Fitting is judged on the authors' train accuracy (`train_acc_batches`).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from groklab.analysis.width_curves import WidthCurves, by_width
from groklab.errors import ConfigError
from groklab.reproductions.claim import Claim, Need, Option, Recipe, Rows, Setting, register
from groklab.reproductions.common import claim_row, mean_ci_text, plan_of
from groklab.reproductions.evidence import Evidence
from groklab.store import Store

PRESET = "davies2023"

# Davies et al. 2023, arXiv 2303.06173 (../shared/reference/papers.md, section 3), Fig. 5 at 400K steps
# and Fig. 7; d_model ranges are where the decoded curves cross.
PAPER = {
    "train_fit_dims": (35, 39),  # train accuracy ~1.0 from d ~ 35-39
    "test_jump_dims": (39, 41),  # test accuracy near chance up to d ~ 39, ~1.0 from d >= 41
    "loss_peak_dims": (35, 38),  # test loss rises from d ~ 23 and peaks around d ~ 35-38
    "bump_dim": 128,
    "bump_correct": 96,  # Fig. 7: correct test answers peak at 96 (every 0/b right, the rest at chance)
}
TOLERANCE = 4  # full version: a transition dimension passes within this many of the paper's range
FIT, GENERALIZED, NEAR_CHANCE = 0.9, 0.9, 0.1  # accuracy levels that define the transitions
MIN_BAND = 2  # claim (a): consecutive widths of the grid that memorize
PAPER_STEPS = 400_000  # the paper's budget per model (Figs. 4-6)
SEEDS = 3  # per dimension, unless --seeds says otherwise (the paper shows one)
TRAIN = "train_acc_batches"  # the authors' train accuracy (train mode, the last epoch's minibatches): Fig. 5's measure


@dataclass(frozen=True)
class Plan:
    """What one version of the reproduction trains."""

    overrides: list[str]
    dims: tuple[int, ...]
    bump_dim: int = 128  # the wide model whose early 0/b bump (Fig. 7) and epoch-wise double descent (Fig. 1) are checked
    bump_overrides: list[str] = field(default_factory=list)
    judge_numbers: bool = True  # compare the transition dimensions with the paper's
    note: str = ""
    analog: list[str] = field(default_factory=list)  # what a scaled analog changes in the width sweep only (not in the bump run)


MEASURES = "measures.enabled=[loss_acc,weight_norm,division_subsets]"
FULL = Plan(
    overrides=[MEASURES],
    dims=tuple(range(1, 81)),
    bump_overrides=["schedule.eval_every=10", "schedule.eval_dense_until=2000"],
    note="the paper's setup (preset davies2023), d_model 1..80",
)
QUICK = Plan(
    overrides=[
        MEASURES,
        "schedule.eval_every=100",
        "schedule.eval_dense_until=1000",
        "schedule.eval_per_decade=40",
        "schedule.eval_max_gap=250",
        "schedule.checkpoint_every=2000",
    ],
    dims=(24, 48, 64, 96),
    bump_overrides=["schedule.steps=1000", "schedule.eval_every=10", "schedule.eval_dense_until=1000"],
    judge_numbers=False,
    note="quick: the paper's task and model at 10,000 steps (not 400K), d_model 24..96, the [a, b, =] format",
    # The search in docs/reproductions/double-descent.md found no setting where a CPU's 30 minutes show wider widths generalize beside a
    # stable memorizing band; this one shows the band, and claim (a) is n/a for the budget. The format costs 1.8x.
    analog=["schedule.steps=10000", "task.format=compact", "task.n_tokens=0"],
)


def plan_for(setting: Setting) -> Plan:
    """The setting's plan, with the embedding dimensions its `dims` option gives."""
    plan = plan_of(setting, FULL, QUICK)
    dims = setting.options.get("dims")
    if dims:
        plan = replace(plan, dims=dims, note=plan.note + f"; d_model {dims[0]}..{dims[-1]}")
    return plan


def parse_dims(text: str) -> tuple[int, ...]:
    """`--dims 1:80`, `1:149:2` or `8,16,32`: the embedding dimensions of the width sweep."""
    from groklab.sweeps.spec import parse_values

    values = parse_values("model.d_model", text)
    try:
        dims = tuple(sorted({int(str(v)) for v in values}))
    except ValueError:
        raise ConfigError("--dims", f"{text!r} must be integers, e.g. 1:80, 1:149:2 or 8,16,32") from None
    if not dims or min(dims) < 1:
        raise ConfigError("--dims", f"needs dimensions >= 1, got {list(dims)}")
    return dims


def check_dims(dims: tuple[int, ...], n_heads: int) -> None:
    """Every embedding dimension must split into the model's heads."""
    if not dims or min(dims) < 1:
        raise ConfigError("--dims", f"needs dimensions >= 1, got {list(dims)}")
    bad = [d for d in dims if d % n_heads]
    if bad:
        shown = ", ".join(map(str, bad[:5])) + (", ..." if len(bad) > 5 else "")
        raise ConfigError(
            "--dims", f"{shown} not divisible by model.n_heads={n_heads}; choose multiples of {n_heads} (e.g. {n_heads}:80:{n_heads})"
        )


def check(setting: Setting) -> None:
    """Dimensions the head count cannot split fail before anything is written."""
    from groklab.config import resolve_config

    plan = plan_for(setting)
    cfg = resolve_config(PRESET, [*plan.overrides, *plan.analog, *setting.overrides])
    check_dims(plan.dims, cfg.model.n_heads)  # type: ignore[attr-defined]


# ----- reading the runs ---------------------------------------------------------------------------


def finals(widths: list[WidthCurves], name: str) -> dict[int, float]:
    """Each dimension's final value, averaged over its seeds."""
    return {w.dim: statistics.fmean(w.finals(name)) for w in widths if w.finals(name)}


def transition(values: dict[int, float], level: float, share: float = 0.8) -> int | None:
    """The smallest dimension at or above `level` from which on at least `share` of the dimensions are
    too: the paper's sweeps have lone outliers (a high test accuracy at d = 13, a low one at d = 44)."""
    dims = sorted(values)
    for i, d in enumerate(dims):
        rest = [values[x] >= level for x in dims[i:]]
        if values[d] >= level and sum(rest) >= share * len(rest):
            return d
    return None


def train_measure(widths: list[WidthCurves]) -> str:
    """The authors' train accuracy where the runs logged it; eval-mode train_acc for runs from before it."""
    return TRAIN if any(w.finals(TRAIN) for w in widths) else "train_acc"


def longest_run(dims: list[int], grid: list[int]) -> list[int]:
    """The longest stretch of `dims` that are consecutive in `grid`."""
    best: list[int] = []
    run: list[int] = []
    for d in grid:
        run = [*run, d] if d in dims else []
        if len(run) > len(best):
            best = run
    return best


@dataclass
class Transitions:
    """Where the final-accuracy picture changes along the embedding dimension."""

    train_fit: int | None  # train accuracy >= 90% from here on
    test_jump: int | None  # test accuracy >= 90% from here on
    memorizing: list[int]  # train accuracy >= 90% while test accuracy stays near chance
    loss_peak: int | None  # the largest final test loss
    half_fit: int | None  # train accuracy >= 50% from here on
    band: list[int] = field(default_factory=list)  # the longest stretch of memorizing widths, consecutive in the grid, below test_jump

    @classmethod
    def of(cls, widths: list[WidthCurves], chance: float) -> Transitions:
        train, test, loss = finals(widths, train_measure(widths)), finals(widths, "test_acc"), finals(widths, "test_loss")
        memorizing = [d for d in sorted(train) if train[d] >= FIT and test.get(d, 1.0) <= chance + NEAR_CHANCE]
        jump = transition(test, GENERALIZED)
        below = [d for d in memorizing if jump is not None and d < jump]
        return cls(
            transition(train, FIT),
            jump,
            memorizing,
            max(loss, key=loss.__getitem__) if loss else None,
            transition(train, 0.5),
            longest_run(below, sorted(train)),
        )


def per_width(widths: list[WidthCurves], train: str) -> str:
    """Each dimension's final train / test accuracy: the mean and 95% CI over its seeds."""

    def show(values: list[float]) -> str:
        return mean_ci_text(values, "{:.2f}", (0.0, 1.0))

    return "; ".join(f"d={w.dim}: {show(w.finals(train))} / {show(w.finals('test_acc'))}" for w in widths if w.finals(train))


def budget(steps: int) -> str:
    return f"budget: {steps:,} of the paper's {PAPER_STEPS // 1000}K steps"


def bump(store: Store, run_id: str) -> dict[str, Any]:
    """The early 0/b bump of one run, read before memorization is under way (train accuracy < 50%) and
    before generalization (test accuracy < 20%): the peak count of correct test answers, what it would be
    with every 0/b right and the rest at chance, and the lowest count after the peak in that window."""
    m = store.metrics(run_id)
    if "test_correct" not in m:
        return {}
    steps, correct = m["test_correct"]
    acc = dict(zip(*m.get("test_acc", ([], [])), strict=True))
    train = dict(zip(*m.get("train_acc", ([], [])), strict=True))
    early = [i for i, s in enumerate(steps) if train.get(s, 0.0) < 0.5 and acc.get(s, 0.0) < 0.2]
    early = [i for n, i in enumerate(early) if i == n]  # the leading stretch only
    if not early:
        return {}
    peak_i = max(early, key=lambda i: correct[i])
    after = [correct[i] for i in early if i > peak_i]
    chance = m["test_chance_correct"][1][0]  # n_test / p
    zero = m.get("test_acc/zero_div", ([], []))
    n_zero, p = _zero_div_count(store, run_id), int(store.get(run_id).config["task"]["p"])
    return {
        "peak": correct[peak_i],
        "peak_step": steps[peak_i],
        "expected": n_zero + (chance * p - n_zero) / p,  # every 0/b right, the others at chance
        "zero_div_max": max(zero[1]) if zero[1] else None,
        "low_after": min(after) if after else None,
        "chance": chance,
        "window_end": steps[early[-1]],
    }


def _zero_div_count(store: Store, run_id: str) -> int:
    """How many test equations are 0/b, from the run's own split."""
    from groklab.config import from_dict
    from groklab.tasks import build_task

    task = build_task(from_dict(store.get(run_id).config).task)
    return int((task.build().test_x[:, task.spec.operand_positions[0]] == 0).sum())


# ----- the claims ---------------------------------------------------------------------------------


def undecided(t: Transitions, steps: int) -> str:
    """Why a budget of `steps` (< the paper's) that ends before any width generalizes decides nothing; '' if it does."""
    return f" (n/a: {budget(steps)}, and no width generalized within it)" if t.test_jump is None and steps < PAPER_STEPS else ""


def model_wise(store: Store, widths: list[WidthCurves], bump_runs: list[str], plan: Plan, p: int, steps: int) -> list[dict[str, str]]:
    """(a): a band of widths that memorize, and wider ones that generalize."""
    t = Transitions.of(widths, 1.0 / p)
    train = train_measure(widths)
    why = undecided(t, steps)
    return [
        claim_row(
            f"(a) model-wise grokking: >= {MIN_BAND} consecutive widths fit the train set (>= {FIT:.0%}, {train}) with test accuracy "
            f"within {NEAR_CHANCE} of chance, and wider models generalize (test >= {GENERALIZED:.0%})",
            "train ~1 from d ~ 35-39, test ~ chance up to d ~ 39 and ~1 from d >= 41 (Fig. 5)",
            f"fit at chance: d in {t.memorizing or 'none'}; band below the test jump: {t.band or 'none'}, test >= 90% from d = "
            f"{t.test_jump}; final {train} / test_acc, mean [95% CI]"
            f" over seeds: {per_width(widths, train)}{why}",
            None if why else len(t.band) >= MIN_BAND,
        )
    ]


def transition_dims(store: Store, widths: list[WidthCurves], bump_runs: list[str], plan: Plan, p: int, steps: int) -> list[dict[str, str]]:
    """(b): the dimensions where the picture changes, against the paper's (at the paper's plan only)."""
    t = Transitions.of(widths, 1.0 / p)
    lo, hi = PAPER["train_fit_dims"]
    jlo, jhi = PAPER["test_jump_dims"]
    numbers = f"train >= 90% from d = {t.train_fit}, test >= 90% from d = {t.test_jump}"
    if plan.judge_numbers:
        ok_b = (
            t.train_fit is not None
            and t.test_jump is not None
            and lo - TOLERANCE <= t.train_fit <= hi + TOLERANCE
            and jlo - TOLERANCE <= t.test_jump <= jhi + TOLERANCE
        )
        return [
            claim_row(
                f"(b) the transition dimensions (PASS within {TOLERANCE} of the paper's)",
                f"train fit d ~ {lo}-{hi}, test jump d ~ {jlo}-{jhi}",
                numbers,
                ok_b,
            )
        ]
    return [
        claim_row(
            "(b) the transition dimensions",
            f"train fit d ~ {lo}-{hi}, test jump d ~ {jlo}-{jhi}",
            numbers + " (n/a: a scaled analog's dimensions are its own)",
            None,
        )
    ]


def loss_peak(store: Store, widths: list[WidthCurves], bump_runs: list[str], plan: Plan, p: int, steps: int) -> list[dict[str, str]]:
    """(c): the final test loss peaks between the widths that start to fit and those that generalize."""
    t = Transitions.of(widths, 1.0 / p)
    why = undecided(t, steps)
    plo, phi = PAPER["loss_peak_dims"]
    ok_c = t.loss_peak is not None and t.test_jump is not None and (t.half_fit or 0) <= t.loss_peak < t.test_jump
    return [
        claim_row(
            "(c) the final test loss peaks between the widths that start to fit (train >= 50%) and those that generalize",
            f"rises from d ~ 23, peaks at d ~ {plo}-{phi}, ~0 from d >= 41 (Fig. 5)",
            f"peak at d = {t.loss_peak}; train >= 50% from d = {t.half_fit}, test >= 90% from d = {t.test_jump}{why}",
            None if why else ok_c,
        )
    ]


def zero_div_bump(store: Store, widths: list[WidthCurves], bump_runs: list[str], plan: Plan, p: int, steps: int) -> list[dict[str, str]]:
    """(d) and (e): the early 0/b bump of correct answers, then below chance while memorizing (Fig. 7)."""
    rows = Rows()
    bumps = [b for b in (bump(store, r) for r in bump_runs) if b]
    if bumps:
        b = bumps[0]
        falls = b["low_after"] is not None and b["low_after"] <= 0.9 * b["peak"]  # a bump, not a count still rising
        ok_d = falls and b["zero_div_max"] == 1.0 and abs(b["peak"] - b["expected"]) <= max(0.25 * b["expected"], 3)
        paper_d = f"{PAPER['bump_correct']} correct at d_model {PAPER['bump_dim']}, p = 97 (every 0/b right, the rest at chance; Fig. 7)"
        rows.add(
            "(d) early in training every 0/b test case is right and the rest at chance: correct answers peak near n(0/b) + chance",
            paper_d,
            f"peak {b['peak']:.0f} correct at step {b['peak_step']} (expected {b['expected']:.1f}); 0/b accuracy up to {b['zero_div_max']}",
            ok_d,
        )
        low = b["low_after"]
        rows.add(
            "(e) then, while memorizing, correct answers fall below chance",
            "below chance after the bump (Fig. 7)",
            f"lowest {low if low is None else f'{low:.0f}'} after the peak, chance {b['chance']:.1f}",
            low is not None and low < b["chance"],
        )
    else:
        rows.add("(d) the early 0/b bump", f"{PAPER['bump_correct']} correct (Fig. 7)", "no run with division_subsets", None)
        rows.add("(e) below chance while memorizing", "Fig. 7", "no run with division_subsets", None)
    return rows


def epoch_wise(store: Store, widths: list[WidthCurves], bump_runs: list[str], plan: Plan, p: int, steps: int) -> list[dict[str, str]]:
    """(f): the wide model's epoch-wise double descent."""
    return [claim_row(*double_descent_claim(store, bump_runs, plan))]


JUDGES = (model_wise, transition_dims, loss_peak, zero_div_bump, epoch_wise)


def claims(
    store: Store, widths: list[WidthCurves], bump_runs: list[str], plan: Plan, p: int, steps: int = PAPER_STEPS
) -> list[dict[str, str]]:
    """The paper's claims, each with what was measured and PASS / FAIL, or n/a where this plan cannot judge
    it: a budget of `steps` (< the paper's) that ends before any width generalizes decides nothing."""
    return [row for judge in JUDGES for row in judge(store, widths, bump_runs, plan, p, steps)]


def double_descent_claim(store: Store, bump_runs: list[str], plan: Plan) -> tuple[str, str, str, bool | None]:
    """Claim (f), on the run the paper shows it for (Fig. 1: d_model 128 in the Power setup), not on any run of
    the sweep. Absent within a budget shorter than the paper's it is n/a: the peak may simply come later."""
    claim = f"(f) epoch-wise double descent: the d_model = {plan.bump_dim} run's test loss falls, peaks and falls again"
    paper = "a slight epoch-wise double descent, clearest in the loss (Fig. 1)"
    if not bump_runs:
        return claim, paper, f"no d_model = {plan.bump_dim} run", None
    rid = bump_runs[0]
    steps = int(store.get(rid).config["schedule"]["steps"])
    events = store.events(rid)
    if "dd_peak" in events:
        (first, _), (peak, value), (second, _) = events["dd_first_min"], events["dd_peak"], events["dd_second_min"]
        return claim, paper, f"run {rid}: minimum at step {first}, peak {value:.3g} at step {peak}, minimum again at step {second}", True
    if steps < PAPER_STEPS:
        return claim, paper, f"run {rid}: none within {steps:,} steps (n/a: {budget(steps)})", None
    return claim, paper, f"run {rid}: none in {steps:,} steps", False


# ----- the declaration ----------------------------------------------------------------------------


def dims_need(setting: Setting) -> dict[str, Need]:
    plan = plan_for(setting)
    grid = (f"model.d_model={','.join(map(str, plan.dims))}",)
    return {"dims": Need("double-descent-dims", PRESET, (*plan.overrides, *plan.analog, *setting.overrides), grid)}


def bump_need(setting: Setting) -> dict[str, Need]:
    plan = plan_for(setting)
    overrides = (*plan.overrides, *plan.bump_overrides, *setting.overrides)
    return {"bump": Need("double-descent-bump", PRESET, overrides, (f"model.d_model={plan.bump_dim}",), seeds=1)}


Judge = Callable[[Store, list[WidthCurves], list[str], Plan, int, int], list[dict[str, str]]]


def _widths(ev: Evidence) -> list[WidthCurves]:
    from groklab.plots.model_wise import PANELS

    dims: dict[int, list[str]] = {}
    for v in ev.runs("dims"):
        dims.setdefault(v.key("model.d_model"), []).append(v.run_id)
    return by_width(ev.store, dims, (*(n for n, _ in PANELS), TRAIN))


def judge(of: Judge) -> Callable[[Evidence], list[dict[str, str]]]:
    def read(ev: Evidence) -> list[dict[str, str]]:
        label = "dims" if ev.has("dims") else "bump"
        bump_runs = [v.run_id for v in ev.runs("bump")]
        return of(ev.store, _widths(ev), bump_runs, plan_for(ev.setting), ev.config(label).task.p, ev.budget(label))

    return read


def figures(ev: Evidence, out_dir: Path) -> list[Path]:
    """The width sweep's heatmaps and final values by dimension; the bump run's division subsets."""
    from groklab.plots.model_wise import plot_final_vs_dim, plot_heatmaps, plot_subsets

    paths = []
    if ev.has("dims"):
        plan, widths = plan_for(ev.setting), _widths(ev)
        t = Transitions.of(widths, 1.0 / ev.config("dims").task.p)
        title = f"Davies et al. model-wise grokking — {plan.note}"
        marks = {"train fit": t.train_fit, "test jump": t.test_jump, "loss peak": t.loss_peak}
        train_name = train_measure(widths)
        paths += [
            plot_heatmaps(widths, out_dir / "heatmaps.png", title, train_name),
            plot_final_vs_dim(widths, out_dir / "final_vs_dim.png", title, marks, train_name),
        ]
    return paths + [plot_subsets(ev.store, v.run_id, out_dir / f"subsets_{v.run_id}.png") for v in ev.runs("bump")]


def _claim(name: str, statement: str, of: Judge, bump: bool = False) -> Claim:
    return Claim(name, statement, bump_need if bump else dims_need, judge(of))


RECIPE = register(
    Recipe(
        "double-descent",
        "Davies, Langosco, Krueger (2023), Unifying Grokking and Double Descent (a / b mod 97)",
        SEEDS,
        (
            _claim("model-wise", "grokking over model size: a band of widths memorizes, wider ones generalize (Fig. 5)", model_wise),
            _claim("transitions", "train fit from d ~ 35-39, test jump at d ~ 39-41 (Fig. 5)", transition_dims),
            _claim("loss-peak", "the final test loss peaks at d ~ 35-38, between fitting and generalizing (Fig. 5)", loss_peak),
            _claim("zero-div-bump", "early every 0/b answer is right, the rest at chance; then below chance (Fig. 7)", zero_div_bump, True),
            _claim("epoch-wise", "an epoch-wise double descent of the test loss at d_model 128 (Fig. 1)", epoch_wise, True),
        ),
        {"paper": FULL.note, "quick": QUICK.note},
        check=check,
        figures=figures,
        options={"dims": Option("double-descent: the embedding dimensions, e.g. 1:80 (default), 1:149 or 8,16,32", parse_dims)},
    )
)
