"""`groklab reproduce double-descent`: Davies, Langosco, Krueger (2023), "Unifying Grokking and Double
Descent", end to end: model-wise grokking over the embedding dimension, the early 0/b bump, and the
test loss's epoch-wise double descent.

Two stored sweeps (running the command again continues them): the embedding dimension d_model over
`dims` x seeds, and one wide model with evaluations dense enough to see the 0/b bump (their Fig. 7).
The paper's numbers live here, in PAPER, and nowhere else; it reports one seed per dimension.

The full version is the paper's setup (preset davies2023: a / b mod 97, 50% train, 2 layers, one head,
MLP 4 x d_model, dropout 0.1, AdamW lr 1e-3, wd 1e-5, batch 512, 400K steps; d_model 1..80 x 3 seeds),
meant for a GPU; the widths share padded vectorized ensembles there as on a CPU. `--quick` is for a 2-core CPU: see
QUICK's note. Its transition dimensions are its own, so only the shape of the picture is judged.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from groklab.config.schema import ExperimentConfig
from groklab.errors import ConfigError
from groklab.plots.model_wise import WidthCurves, by_width, plot_final_vs_dim, plot_heatmaps, plot_subsets
from groklab.reproduce.common import continue_or_create
from groklab.store import Store
from groklab.sweeps import run_sweep

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


@dataclass(frozen=True)
class Plan:
    """What one version of the reproduction trains."""

    overrides: list[str]
    dims: tuple[int, ...]
    bump_dim: int = 128  # the wide model whose early 0/b bump is checked
    bump_overrides: list[str] = field(default_factory=list)
    judge_numbers: bool = True  # compare the transition dimensions with the paper's
    note: str = ""


MEASURES = "measures.enabled=[loss_acc,weight_norm,division_subsets]"
FULL = Plan(
    overrides=[MEASURES],
    dims=tuple(range(1, 81)),
    bump_overrides=["schedule.steps=20000", "schedule.eval_every=10", "schedule.eval_dense_until=2000"],
    note="the paper's setup (preset davies2023), d_model 1..80",
)
QUICK = Plan(
    overrides=[
        MEASURES,
        "schedule.steps=3000",
        "schedule.eval_every=50",
        "schedule.eval_dense_until=1000",
        "schedule.eval_per_decade=40",
        "schedule.eval_max_gap=100",
        "schedule.checkpoint_every=1000",
    ],
    dims=(16, 24, 32, 48, 64, 96, 128),
    bump_overrides=["schedule.steps=1000", "schedule.eval_every=10", "schedule.eval_dense_until=1000"],
    judge_numbers=False,
    note="quick: the paper's setup stopped at 3,000 steps (not 400K), d_model 16..128",
)


def plan_for(quick: bool, dims: tuple[int, ...] | None = None) -> Plan:
    plan = QUICK if quick else FULL
    if dims:
        plan = Plan(
            plan.overrides, dims, plan.bump_dim, plan.bump_overrides, plan.judge_numbers, plan.note + f"; d_model {dims[0]}..{dims[-1]}"
        )
    return plan


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


def check(quick: bool, overrides: list[str], dims: tuple[int, ...] | None = None) -> ExperimentConfig:
    """Fail early, writing nothing: bad overrides, or dimensions the head count cannot split.
    Returns the sweep's config (at the preset's d_model)."""
    from groklab.config import resolve_config

    plan = plan_for(quick, dims)
    cfg = resolve_config(PRESET, [*plan.overrides, *overrides])
    check_dims(plan.dims, cfg.model.n_heads)  # type: ignore[attr-defined]
    resolve_config(PRESET, [*plan.overrides, *plan.bump_overrides, *overrides, f"model.d_model={plan.bump_dim}"])
    return cfg


# ----- reading the runs ---------------------------------------------------------------------------


def runs_by_dim(store: Store, sweep_id: str) -> dict[int, list[str]]:
    """The finished runs of a sweep, by their d_model."""
    sweep = store.get_sweep(sweep_id)
    out: dict[int, list[str]] = {}
    for point, run_id in sorted(store.sweep_runs(sweep_id).items()):
        if store.get(run_id).status in ("finished", "stopped"):
            out.setdefault(sweep["points"][point]["config"]["model"]["d_model"], []).append(run_id)
    return out


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


@dataclass
class Transitions:
    """Where the final-accuracy picture changes along the embedding dimension."""

    train_fit: int | None  # train accuracy >= 90% from here on
    test_jump: int | None  # test accuracy >= 90% from here on
    memorizing: list[int]  # train accuracy >= 90% while test accuracy stays near chance
    loss_peak: int | None  # the largest final test loss
    half_fit: int | None  # train accuracy >= 50% from here on

    @classmethod
    def of(cls, widths: list[WidthCurves], chance: float) -> Transitions:
        train, test, loss = finals(widths, "train_acc"), finals(widths, "test_acc"), finals(widths, "test_loss")
        band = [d for d in sorted(train) if train[d] >= FIT and test.get(d, 1.0) <= chance + NEAR_CHANCE]
        return cls(
            transition(train, FIT),
            transition(test, GENERALIZED),
            band,
            max(loss, key=loss.__getitem__) if loss else None,
            transition(train, 0.5),
        )


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

    cfg = from_dict(store.get(run_id).config)
    data = build_task(cfg.task).build()
    return int((data.test_x[:, 0] == 0).sum())


# ----- the claims ---------------------------------------------------------------------------------


def claims(store: Store, widths: list[WidthCurves], bump_runs: list[str], plan: Plan, p: int) -> list[dict[str, str]]:
    """The paper's claims, each with what was measured and PASS / FAIL (n/a where this plan cannot judge)."""
    rows: list[dict[str, str]] = []

    def add(claim: str, paper: str, measured: str, ok: bool | None) -> None:
        rows.append({"claim": claim, "paper": paper, "measured": measured, "result": "n/a" if ok is None else ("PASS" if ok else "FAIL")})

    t = Transitions.of(widths, 1.0 / p)
    train, test = finals(widths, "train_acc"), finals(widths, "test_acc")
    shown = ", ".join(f"d={d}: {train[d]:.2f}/{test.get(d, float('nan')):.2f}" for d in sorted(train))
    ok_a = bool(t.memorizing) and t.test_jump is not None and max(t.memorizing) < t.test_jump
    add(
        "(a) model-wise grokking: a band of widths fits the train set (>= 90%) with test accuracy near chance, and wider models generalize",
        "train ~1 from d ~ 35-39, test ~ chance up to d ~ 39 and ~1 from d >= 41 (Fig. 5)",
        f"memorizing band d in {t.memorizing or 'none'}, test >= 90% from d = {t.test_jump}; final train/test: {shown}",
        ok_a,
    )

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
        add(
            f"(b) the transition dimensions (PASS within {TOLERANCE} of the paper's)",
            f"train fit d ~ {lo}-{hi}, test jump d ~ {jlo}-{jhi}",
            numbers,
            ok_b,
        )
    else:
        add(
            "(b) the transition dimensions",
            f"train fit d ~ {lo}-{hi}, test jump d ~ {jlo}-{jhi}",
            numbers + " (reduced setting: not comparable)",
            None,
        )

    plo, phi = PAPER["loss_peak_dims"]
    ok_c = t.loss_peak is not None and t.test_jump is not None and (t.half_fit or 0) <= t.loss_peak < t.test_jump
    add(
        "(c) the final test loss peaks between the widths that start to fit (train >= 50%) and those that generalize",
        f"rises from d ~ 23, peaks at d ~ {plo}-{phi}, ~0 from d >= 41 (Fig. 5)",
        f"peak at d = {t.loss_peak}; train >= 50% from d = {t.half_fit}, test >= 90% from d = {t.test_jump}",
        ok_c,
    )

    bumps = [b for b in (bump(store, r) for r in bump_runs) if b]
    if bumps:
        b = bumps[0]
        falls = b["low_after"] is not None and b["low_after"] <= 0.9 * b["peak"]  # a bump, not a count still rising
        ok_d = falls and b["zero_div_max"] == 1.0 and abs(b["peak"] - b["expected"]) <= max(0.25 * b["expected"], 3)
        paper_d = f"{PAPER['bump_correct']} correct at d_model {PAPER['bump_dim']}, p = 97 (every 0/b right, the rest at chance; Fig. 7)"
        add(
            "(d) early in training every 0/b test case is right and the rest at chance: correct answers peak near n(0/b) + chance",
            paper_d,
            f"peak {b['peak']:.0f} correct at step {b['peak_step']} (expected {b['expected']:.1f}); 0/b accuracy up to {b['zero_div_max']}",
            ok_d,
        )
        low = b["low_after"]
        add(
            "(e) then, while memorizing, correct answers fall below chance",
            "below chance after the bump (Fig. 7)",
            f"lowest {low if low is None else f'{low:.0f}'} after the peak, chance {b['chance']:.1f}",
            low is not None and low < b["chance"],
        )
    else:
        add("(d) the early 0/b bump", f"{PAPER['bump_correct']} correct (Fig. 7)", "no run with division_subsets", None)
        add("(e) below chance while memorizing", "Fig. 7", "no run with division_subsets", None)

    with_dd = [(w.dim, rid) for w in widths for rid in w.run_ids if "dd_peak" in store.events(rid)]
    n_runs = sum(len(w.run_ids) for w in widths)
    add(
        "(f) epoch-wise double descent: some runs' test loss falls, peaks and falls again",
        "a slight epoch-wise double descent, clearest in the loss (Fig. 1)",
        f"{len(with_dd)} of {n_runs} runs (d = {sorted({d for d, _ in with_dd}) or 'none'})",
        bool(with_dd),
    )
    return rows


# ----- the command --------------------------------------------------------------------------------


def reproduce(
    store: Store,
    quick: bool,
    seeds: int,
    out_dir: Path,
    train: Callable[[Store, str], Any] = lambda store, sweep_id: run_sweep(store, sweep_id),
    overrides: list[str] | None = None,
    echo: Callable[[str], Any] = print,
    dims: tuple[int, ...] | None = None,
) -> list[dict[str, str]]:
    """Train (or continue) the sweeps, draw the figures into out_dir, and return the claim table."""
    plan = plan_for(quick, dims)
    extra = [*plan.overrides, *(overrides or [])]
    p = check(quick, overrides or [], dims).task.p  # type: ignore[attr-defined]  # bad overrides fail before anything is written
    suffix = "-quick" if quick else ""
    echo(f"double-descent reproduction ({plan.note}); {seeds} seed(s) per dimension")
    dims_sweep = continue_or_create(
        store, PRESET, f"double-descent-dims{suffix}", extra, [f"model.d_model={','.join(map(str, plan.dims))}"], seeds, train
    )
    bump_sweep = continue_or_create(
        store,
        PRESET,
        f"double-descent-bump{suffix}",
        [*plan.overrides, *plan.bump_overrides, *(overrides or [])],
        [f"model.d_model={plan.bump_dim}"],
        1,
        train,
    )
    widths = by_width(store, runs_by_dim(store, dims_sweep))
    bump_runs = [rid for rids in runs_by_dim(store, bump_sweep).values() for rid in rids]
    rows = claims(store, widths, bump_runs, plan, p)
    t = Transitions.of(widths, 1.0 / p)
    title = f"Davies et al. model-wise grokking — {plan.note}"
    figures = [
        plot_heatmaps(widths, out_dir / "heatmaps.png", title),
        plot_final_vs_dim(
            widths, out_dir / "final_vs_dim.png", title, {"train fit": t.train_fit, "test jump": t.test_jump, "loss peak": t.loss_peak}
        ),
    ]
    figures += [plot_subsets(store, rid, out_dir / f"subsets_{rid}.png") for rid in bump_runs]
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "claims.json").write_text(json.dumps({"sweeps": [dims_sweep, bump_sweep], "claims": rows}, indent=2))
    echo(f"figures ({len(figures)}) and claims.json in {out_dir}")
    return rows
