"""`groklab reproduce deep-grokking`: Fan, Pascanu, Jaggi (2024), "Deep Grokking", end to end.

Runs the depth x training-size grid and the weight-decay ablation as stored sweeps (resumable:
running the command again continues them), draws the figures, and checks the paper's claims, each
with the measured value and PASS or FAIL. The paper's numbers live here, in PAPER, and nowhere
else; it reports one seed and no error bars, so with --seeds N the spread across seeds is shown.

The full version is the paper's setup (preset `fan2024`: width 400, alpha 8, AdamW 1e-3, wd 0.01,
MSE, batch 200, 1e5 steps, float64), meant for a GPU. `--quick` is a reduced version for a 2-core
CPU: width 128, 8,000 steps, float32, and weight decay 0.1 (10x the paper's: the decay of the
weight norm that drives grokking is set by lr x wd, so the paper's ~5e4-step dynamics fit in 8e3).
It runs the depth grid at N=2000 and 5000, which checks claims (a), (c) and (e).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from groklab.analysis.events import first_crossing
from groklab.analysis.stages import onset_of_fall, onset_of_rise, surges
from groklab.plots import plot_sweep
from groklab.reproduce.common import continue_or_create
from groklab.store import Store
from groklab.sweeps import run_sweep

# Fan et al. 2024, arXiv 2405.19454 v1 (../shared/reference/papers.md, section 1).
PAPER = {
    "depth_order_n": 5000,  # (a) Fig. 2a-c: the rise comes later as depth goes 4 -> 8 -> 12
    "two_stage_n": 7000,  # (b) Fig. 2d-f: 8 and 12 layers show a second surge, 4 layers do not
    "two_stage": {4: False, 8: True, 12: True},
    "tunnel": {5000: {4: 1, 8: 3, 12: 6}, 7000: {4: 1, 8: 5, 12: 6}},  # (d) Figs. 3-4, layers with rank < 300
    "tunnel_threshold": 300,
    "weight_decay": {  # (f) Figs. 6-7, depth 12
        2000: {0.005: "no generalization", 0.01: "grokking", 0.05: "two-stage"},
        5000: {0.005: "generalization without grokking", 0.01: "grokking", 0.05: "two-stage"},
    },
}

SEEDS = 1  # per point, unless --seeds says otherwise (the paper reports one)

@dataclass(frozen=True)
class Plan:
    """What one version of the reproduction trains."""

    overrides: list[str]
    depths: tuple[int, ...] = (4, 8, 12)
    sizes: tuple[int, ...] = (2000, 5000, 7000)
    wd_depth: int = 12
    wd_sizes: tuple[int, ...] = (2000, 5000)
    weight_decays: tuple[float, ...] = (0.005, 0.01, 0.05)
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


FULL = Plan(overrides=[], note="the paper's setup (preset fan2024)")
QUICK = Plan(
    overrides=[
        "model.width=128",
        "optim.weight_decay=0.1",
        "schedule.steps=8000",
        "schedule.eval_every=100",
        "schedule.eval_dense_until=1000",
        "schedule.eval_per_decade=30",
        "schedule.eval_max_gap=250",
        "schedule.checkpoint_every=1000",
        "run.dtype=float32",
        "measures.every.feature_rank=2",
        "measures.every.probe=8",
        "measures.tunnel_threshold=0.75",
    ],
    sizes=(2000, 5000),
    wd_sizes=(),
    weight_decays=(),
    note="quick: width 128, wd 0.1, 8,000 steps, float32, N=2000 and 5000",
)


@dataclass
class RunView:
    """One finished run, as the claims read it."""

    run_id: str
    depth: int
    n: int
    wd: float
    seed: int
    m: dict[str, tuple[list[int], list[float]]]
    width: int = 400

    def curve(self, name: str) -> tuple[list[int], list[float]]:
        return self.m.get(name, ([], []))

    def t_rise(self) -> int | None:
        """The onset of the test-accuracy rise: the first evaluation 10% of the way up its range."""
        return onset_of_rise(*self.curve("test_acc"), fraction=0.1)

    def t_half(self) -> int | None:
        """The grokking step: the first evaluation where test accuracy has covered half of its rise."""
        steps, acc = self.curve("test_acc")
        if not acc:
            return None
        target = acc[0] + 0.5 * (max(acc) - acc[0])
        return next((s for s, a in zip(steps, acc, strict=True) if a >= target), None)

    def n_stages(self, rise: float, window: int) -> int:
        return len(surges(*self.curve("test_acc"), rise=rise, window=window))

    def rank_layer(self) -> str:
        """The second-to-last layer's rank metric (the paper's Fig. 5 lens)."""
        return f"rank/L{self.depth - 1}"

    def final(self, name: str) -> float | None:
        values = self.curve(name)[1]
        return values[-1] if values else None


def collect(store: Store, sweep_id: str) -> list[RunView]:
    sweep = store.get_sweep(sweep_id)
    views = []
    for point, run_id in sorted(store.sweep_runs(sweep_id).items()):
        cfg = sweep["points"][point]["config"]
        if store.get(run_id).status not in ("finished", "stopped"):
            continue
        views.append(
            RunView(
                run_id,
                cfg["model"]["depth"],
                cfg["task"]["n_train"],
                cfg["optim"]["weight_decay"],
                cfg["run"]["seed"],
                store.metrics(run_id),
                cfg["model"]["width"],
            )
        )
    return views


def _spread(raw: list[Any]) -> str:
    """A value, or mean [min, max] over seeds; '-' where no run measured it."""
    values = [float(x) for x in raw if x is not None]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.4g}"
    return f"{statistics.mean(values):.4g} [{min(values):.4g}, {max(values):.4g}] over {len(values)} seeds"


def _by(views: list[RunView], **where: Any) -> list[RunView]:
    return [v for v in views if all(getattr(v, k) == x for k, x in where.items())]


def classify(view: RunView, rise: float, window: int) -> str:
    """The weight-decay table's vocabulary for one run's test-accuracy curve."""
    steps, acc = view.curve("test_acc")
    train_steps, train = view.curve("train_acc")
    if not acc or max(acc) < 0.5:
        return "no generalization"
    n = view.n_stages(rise, window)
    if n >= 2:
        return "two-stage"
    t_fit = first_crossing(train_steps, train, 0.99)
    at_fit = dict(zip(steps, acc, strict=True)).get(t_fit) if t_fit is not None else None
    if at_fit is not None and at_fit >= acc[0] + 0.8 * (max(acc) - acc[0]):
        return "generalization without grokking"  # test accuracy had already risen when the train set was fit
    return "grokking"


def claims(depth_views: list[RunView], wd_views: list[RunView], plan: Plan, rise: float, window: int) -> list[dict[str, str]]:
    """The paper's claims, each with what was measured and PASS / FAIL (or n/a when the plan lacks the runs)."""
    rows: list[dict[str, str]] = []

    def add(claim: str, paper: str, measured: str, ok: bool | None) -> None:
        rows.append({"claim": claim, "paper": paper, "measured": measured, "result": "n/a" if ok is None else ("PASS" if ok else "FAIL")})

    # (a) the grokking step grows with depth
    n_a = PAPER["depth_order_n"] if PAPER["depth_order_n"] in plan.sizes else plan.sizes[0]
    t = {d: [v.t_rise() for v in _by(depth_views, depth=d, n=n_a)] for d in plan.depths}
    means = {d: statistics.mean(x for x in ts if x is not None) if any(x is not None for x in ts) else None for d, ts in t.items()}
    ok_a = all(means[d] is not None for d in plan.depths) and all(
        means[a] < means[b]
        for a, b in zip(plan.depths, plan.depths[1:], strict=False)  # type: ignore[operator]
    )
    add(
        f"(a) N={n_a}: the test-accuracy rise (onset: 10% of the way up) comes later with depth {' -> '.join(map(str, plan.depths))}",
        "delayed with depth (Fig. 2a-c)",
        ", ".join(
            f"depth {d}: step {_spread([float(x) for x in ts if x is not None]) if any(x is not None for x in ts) else '-'}"
            for d, ts in t.items()
        ),
        ok_a,
    )

    # (b) two stages at N=7000 for 8 and 12 layers, not for 4
    n_b = PAPER["two_stage_n"]
    if n_b in plan.sizes:
        stages = {d: [v.n_stages(rise, window) for v in _by(depth_views, depth=d, n=n_b)] for d in plan.depths}
        ok_b = all(bool(s) and (statistics.mean(s) >= 2) == PAPER["two_stage"].get(d, statistics.mean(s) >= 2) for d, s in stages.items())
        add(
            f"(b) N={n_b}: two stages for depth 8 and 12, one for depth 4",
            "depth 4: 1, depth 8: 2, depth 12: 2 (Fig. 2d-f)",
            ", ".join(f"depth {d}: {_spread(s)} stages" for d, s in stages.items()),
            ok_b,
        )
    else:
        add("(b) two-stage generalization at N=7000 for depth 8 and 12", "Fig. 2d-f", "not in this plan", None)

    # (c) the test-accuracy rise coincides with a fall in rank (second-to-last layer)
    deepest = max(plan.depths)
    parts, ok_c = [], True
    for v in _by(depth_views, depth=deepest):
        steps, rank = v.curve(v.rank_layer())
        rise_at = v.t_half()
        if not rank or rise_at is None:
            ok_c = False
            parts.append(f"N={v.n} seed {v.seed}: no rank curve or no rise")
            continue
        peak = max(rank)
        fell = min(r for s, r in zip(steps, rank, strict=True) if s >= rise_at) if any(s >= rise_at for s in steps) else peak
        onset = onset_of_fall(steps, rank)
        falls = fell <= 0.9 * peak
        ok_c &= falls and onset is not None and onset <= rise_at
        parts.append(f"N={v.n} seed {v.seed}: rank {peak:.0f} -> {fell:.0f}, fall from step {onset}, test rise (half) at {rise_at}")
    add(
        f"(c) depth {deepest}: the second-to-last layer's rank falls (>= 10%, starting no later than test accuracy is half-way up)",
        "rank falls as test accuracy rises (Fig. 1)",
        "; ".join(parts),
        ok_c and bool(parts),
    )

    # (d) tunnel lengths: the paper's counts are at width 400 with rank < 300; at another width the
    # counts (with the run's own threshold) are shown, but not judged
    for n, table in PAPER["tunnel"].items():
        runs_n = [v for v in depth_views if v.n == n]
        if not runs_n:
            add(f"(d) tunnel lengths at N={n}", str(table), "not in this plan (needs N=5000/7000)", None)
            continue
        got = {d: [v.final("tunnel_length") for v in _by(depth_views, depth=d, n=n)] for d in table}
        measured = ", ".join(f"depth {d}: {_spread(vals)}" for d, vals in got.items())
        if any(v.width != 400 for v in runs_n):
            add(
                f"(d) tunnel lengths at N={n}", str(table), f"{measured} (width {runs_n[0].width}: indicative, not the paper's setup)", None
            )
            continue
        ok_d = all(vals and all(x is not None for x in vals) and abs(statistics.mean(vals) - table[d]) <= 1 for d, vals in got.items())  # type: ignore[arg-type]
        add(
            f"(d) tunnel lengths at N={n} (layers with rank < {PAPER['tunnel_threshold']}, final step; PASS within 1 layer)",
            ", ".join(f"depth {d}: {x}" for d, x in table.items()),
            measured,
            ok_d,
        )

    # (e) weight norms overlap across N while the second-to-last rank separates them
    if len(plan.sizes) > 1:
        parts, ok_e = [], True
        for d in plan.depths:
            views = _by(depth_views, depth=d, seed=0)
            if len(views) < 2:
                continue
            norm = _relative_spread([v.curve("weight_norm") for v in views])
            rank = _relative_spread([v.curve(v.rank_layer()) for v in views])
            ok_e &= rank > 2 * norm
            parts.append(f"depth {d}: weight-norm spread {norm:.1%}, rank spread {rank:.1%}")
        add(
            "(e) across N, weight norms overlap while the second-to-last layer's rank separates runs (PASS: rank spread > 2x norm's)",
            "Fig. 5",
            "; ".join(parts),
            ok_e and bool(parts),
        )
    else:
        add("(e) weight norm vs rank across N", "Fig. 5", "not in this plan (needs several N)", None)

    # (f) the weight-decay table
    if wd_views:
        for n, table in PAPER["weight_decay"].items():
            got = {wd: [classify(v, rise, window) for v in _by(wd_views, n=n, wd=wd)] for wd in table}
            ok_f = all(vals and all(x == table[wd] for x in vals) for wd, vals in got.items())
            add(
                f"(f) weight decay at N={n}, depth {plan.wd_depth}",
                "; ".join(f"{wd}: {x}" for wd, x in table.items()),
                "; ".join(f"{wd}: {', '.join(vals) or '-'}" for wd, vals in got.items()),
                ok_f,
            )
    else:
        add("(f) the weight-decay table", str(PAPER["weight_decay"]), "not in this plan", None)
    return rows


def _relative_spread(curves: list[tuple[list[int], list[float]]]) -> float:
    """Mean over the common evaluation steps of (max - min) / mean across runs."""
    common = set.intersection(*(set(steps) for steps, _ in curves)) if curves else set()
    spreads = []
    for s in sorted(common):
        vals = [dict(zip(steps, values, strict=True))[s] for steps, values in curves]
        mean = statistics.mean(vals)
        if mean:
            spreads.append((max(vals) - min(vals)) / abs(mean))
    return statistics.mean(spreads) if spreads else 0.0


def check(quick: bool, overrides: list[str]) -> None:
    """Fail early, writing nothing: bad overrides, or MNIST files that are missing or corrupt."""
    from groklab.config import resolve_config
    from groklab.data import mnist

    plan = QUICK if quick else FULL
    cfg = resolve_config("fan2024", [*plan.overrides, *overrides])
    mnist.load(mnist.resolve_dir(cfg.task.data_dir))


def reproduce(
    store: Store,
    quick: bool,
    seeds: int,
    out_dir: Path,
    train: Callable[[Store, str], Any] = lambda store, sweep_id: run_sweep(store, sweep_id),
    overrides: list[str] | None = None,
    echo: Callable[[str], Any] = print,
) -> list[dict[str, str]]:
    """Train (or continue) the sweeps, draw the figures into out_dir, and return the claim table."""
    from groklab.config import resolve_config

    plan = QUICK if quick else FULL
    extra = [*plan.overrides, *(overrides or [])]
    resolve_config("fan2024", extra)  # bad overrides fail before anything is written
    suffix = "-quick" if quick else ""
    echo(f"deep-grokking reproduction ({plan.note}); {seeds} seed(s)")
    depth_id = continue_or_create(
        store,
        "fan2024",
        f"deep-grokking{suffix}",
        extra,
        [f"model.depth={','.join(map(str, plan.depths))}", f"task.n_train={','.join(map(str, plan.sizes))}"],
        seeds,
        train,
    )
    wd_id = None
    if plan.weight_decays:
        wd_id = continue_or_create(
            store,
            "fan2024",
            f"deep-grokking-wd{suffix}",
            [*extra, f"model.depth={plan.wd_depth}"],
            [f"optim.weight_decay={','.join(map(str, plan.weight_decays))}", f"task.n_train={','.join(map(str, plan.wd_sizes))}"],
            seeds,
            train,
        )
    cfg = resolve_config("fan2024", extra)
    rise, window = cfg.events.surge_rise, cfg.events.surge_window
    depth_views = collect(store, depth_id)
    wd_views = collect(store, wd_id) if wd_id else []
    rows = claims(depth_views, wd_views, plan, rise, window)
    figures = draw(store, depth_views + wd_views, depth_id, out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "claims.json").write_text(json.dumps({"sweeps": [depth_id, wd_id], "claims": rows}, indent=2))
    echo(f"figures ({len(figures)}) and claims.json in {out_dir}")
    return rows


def draw(store: Store, views: list[RunView], depth_sweep: str, out_dir: Path) -> list[Path]:
    """The paper's figures: stages and rank heatmap per run, rank vs weight norm per depth across N, probes."""
    from groklab.plots.deep_figures import plot_probes, plot_rank_heatmap, plot_rank_vs_norm, plot_stages

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for v in views:
        tag = f"d{v.depth}_n{v.n}_wd{v.wd:g}_s{v.seed}"
        paths.append(plot_stages(store, v.run_id, out_dir / f"accuracy_{tag}.png"))
        if any(k.startswith("rank/") for k in v.m):
            paths.append(plot_rank_heatmap(store, v.run_id, out_dir / f"rank_{tag}.png"))
        if any(k.startswith("probe_acc/") for k in v.m):
            paths.append(plot_probes(store, v.run_id, out_dir / f"probes_{tag}.png"))
    for d in sorted({v.depth for v in views}):
        runs = [v.run_id for v in views if v.depth == d and v.seed == 0]
        if len(runs) > 1 and all(v.rank_layer() in v.m for v in views if v.run_id in runs):
            paths.append(plot_rank_vs_norm(store, runs, out_dir / f"rank_vs_norm_d{d}.png"))
    paths.append(plot_sweep(store, store.get_sweep(depth_sweep), "model.depth", out_dir / "depth_sweep.png"))
    return paths
