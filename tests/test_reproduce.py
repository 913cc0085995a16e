"""The deep-grokking reproduction: its claim checks on runs with known curves, and the command end to end
on a tiny budget (the real runs are the reproduction itself, not a test)."""

from __future__ import annotations

import json
import math

import pytest

from groklab.cli.main import main
from groklab.reproductions.deep_grokking import FULL, QUICK, RunView, claims, classify
from test_mnist import REAL, needs_real


def sigmoid_curve(at: float, lo: float = 0.1, hi: float = 0.95, width: float = 150.0, steps: range = range(0, 8001, 100)):
    s = list(steps)
    return s, [lo + (hi - lo) / (1 + math.exp(-(x - at) / width)) for x in s]


def two_stage_curve(first: float, second: float):
    s = list(range(0, 8001, 100))
    a, b = sigmoid_curve(first, 0.1, 0.55)[1], sigmoid_curve(second, 0.0, 0.4)[1]
    return s, [x + y for x, y in zip(a, b, strict=True)]


def view(depth: int, n: int, test, rank=None, wd: float = 0.01, seed: int = 0, train_at: float = 500.0) -> RunView:
    m = {"test_acc": test, "train_acc": sigmoid_curve(train_at, 0.1, 1.0, 50.0)}
    if rank is not None:
        m[f"rank/L{depth - 1}"] = rank
    return RunView(f"r{depth}{n}{wd}{seed}", depth, n, wd, seed, m)


def falling_rank(at: float, hi: float = 120.0, lo: float = 40.0):
    s, up = sigmoid_curve(at, 0.0, 1.0)
    return s, [hi - (hi - lo) * u for u in up]


def test_claim_a_passes_when_the_rise_is_delayed_with_depth_and_fails_otherwise():
    ordered = [view(d, 5000, sigmoid_curve(at), falling_rank(at - 200)) for d, at in ((4, 1000), (8, 2500), (12, 4000))]
    rows = {r["claim"][:3]: r for r in claims(ordered, [], QUICK, 0.1, 10)}
    assert rows["(a)"]["result"] == "PASS" and rows["(c)"]["result"] == "PASS"
    swapped = [view(d, 5000, sigmoid_curve(at), falling_rank(at + 1500)) for d, at in ((4, 1000), (8, 4000), (12, 2500))]
    rows = {r["claim"][:3]: r for r in claims(swapped, [], QUICK, 0.1, 10)}
    assert rows["(a)"]["result"] == "FAIL"
    assert rows["(c)"]["result"] == "FAIL"  # the rank falls only after the test accuracy has risen
    assert rows["(d)"]["result"] == "n/a" and rows["(f)"]["result"] == "n/a"


def test_claim_b_counts_stages_per_depth():
    views = [view(4, 7000, sigmoid_curve(1000)), view(8, 7000, two_stage_curve(1500, 5000)), view(12, 7000, two_stage_curve(2500, 6000))]
    views += [view(d, 5000, sigmoid_curve(1000 * d)) for d in (4, 8, 12)]
    rows = {r["claim"][:3]: r for r in claims(views, [], FULL, 0.1, 10)}
    assert rows["(b)"]["result"] == "PASS", rows["(b)"]
    views[0] = view(4, 7000, two_stage_curve(1000, 5000))  # now the 4-layer net shows two stages too
    rows = {r["claim"][:3]: r for r in claims(views, [], FULL, 0.1, 10)}
    assert rows["(b)"]["result"] == "FAIL"


def test_weight_decay_vocabulary():
    assert classify(view(12, 2000, sigmoid_curve(3000, hi=0.3)), 0.1, 10) == "no generalization"
    assert classify(view(12, 2000, two_stage_curve(1500, 5000)), 0.1, 10) == "two-stage"
    assert classify(view(12, 2000, sigmoid_curve(3000), train_at=500), 0.1, 10) == "grokking"
    assert classify(view(12, 2000, sigmoid_curve(400), train_at=1500), 0.1, 10) == "generalization without grokking"


def test_bad_reproduce_input_writes_nothing(capsys, tmp_path):
    for argv, field in (
        (["--seeds", "0"], "--seeds"),
        (["model.depthh=3"], "model.depthh"),
        (["task.data_dir=/nonexistent"], "task.data_dir"),
        (["bogus"], "unrecognized arguments: bogus"),
    ):
        code = main(["reproduce", "deep-grokking", "--quick", *argv, "--runs-dir", str(tmp_path / "r")])
        err = capsys.readouterr().err
        assert code == 2 and err.startswith(f"groklab: error: {field}") and err.count("\n") == 1, err
    code = main(["reproduce", "deep-grokking", "bogus", "--runs-dir", str(tmp_path / "r")])
    assert code == 2 and capsys.readouterr().err.startswith("groklab: error: overrides: 'bogus' must look like key=value")
    code = main(["reproduce", "no-such-paper", "--runs-dir", str(tmp_path / "r")])
    assert code == 2 and capsys.readouterr().err.startswith("groklab: error: paper: unknown paper 'no-such-paper'")
    assert not (tmp_path / "r").exists()


def quick_argv(recipe: str, overrides: list[str], tmp_path) -> list[str]:
    """`reproduce RECIPE --quick` with one seed and the overrides, stored and drawn under tmp_path."""
    return [
        "reproduce",
        recipe,
        "--quick",
        "--seeds",
        "1",
        *overrides,
        "--quiet",
        "--runs-dir",
        str(tmp_path),
        "--out",
        str(tmp_path / "out"),
    ]


@needs_real
def test_quick_reproduction_runs_end_to_end_on_a_tiny_budget(capsys, tmp_path):
    tiny = [f"task.data_dir={REAL}", "model.width=8", "schedule.steps=30", "schedule.eval_every=10", "task.n_test=300"]
    tiny.append("measures.probe_epochs=1")
    argv = quick_argv("deep-grokking", tiny, tmp_path)
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "(a) N=5000" in out and ("PASS" in out or "FAIL" in out)
    data = json.loads((tmp_path / "out" / "claims.json").read_text())
    assert [r["claim"][:4].strip() for r in data["claims"]] == ["(a)", "(b)", "(b2)", "(c)", "(d)", "(d)", "(e)", "(f)", "(g)"]
    assert data["seeds"] == 1
    assert (tmp_path / "out" / "rank_d12_n2000_wd0.1_s0.png").stat().st_size > 0
    assert (tmp_path / "out" / "depth_sweep.png").exists()
    assert main(argv) == 0  # run again: the stored sweep is reused, nothing trains twice
    from groklab.store import Store

    assert len(Store(tmp_path, create=False).runs()) == 9  # depth 4, 8, 12 x N 2000, 5000, 7000


# ----- progress-measures (Gu et al. 2025) -----------------------------------------------------------


def test_table1_outcome_reads_u_acc_l_acc_and_the_start():
    from groklab.reproductions.progress_measures import Outcome

    steps = list(range(0, 4000, 100))
    # a small early rise while the train set is memorized (fit at step 500), a plateau, the climb to 95%, a fall to 80%
    acc = [0.01, 0.1, 0.2] + [0.2] * 12 + [0.3, 0.6, 0.9, 0.95] + [0.8] * 5 + [0.85] * 16
    train = (steps, [min(1.0, s / 500) for s in steps])
    out = Outcome.of(steps, acc, train)
    assert out.u_acc == pytest.approx(95.0) and out.l_acc == pytest.approx(80.0)
    assert out.go == 1500  # the climb after the fit (0.2 -> 0.3 covers 10% of its range), not the early rise
    assert Outcome.of(steps, acc, (steps, [0.5] * len(steps))).go is None  # never fits the train set
    assert Outcome.of(steps, [0.02] * len(steps), train).go is None  # no climb: no grokking


def test_holdout_claims_against_table1():
    from groklab.reproductions.progress_measures import QUICK, holdout_rows

    steps = list(range(0, 2500, 100))

    def run(split: str, ceiling: float):
        acc = [min(ceiling, 0.01 + max(0, s - 1000) / 500) for s in steps]
        return {"task": {"split": split}}, {"test_acc": (steps, acc)}

    ceilings = {"square:30": 0.99, "square:40": 0.85, "square:50": 0.7, "strip:40": 0.9, "strip:50": 0.8, "strip:60": 0.3, "strip:67": 0.05}
    rows = holdout_rows([run(s, c) for s, c in ceilings.items()], QUICK)
    by_claim = {r["claim"]: r for r in rows}
    assert by_claim["Table 1 square:30"]["measured"].startswith("U-Acc 99.00% (-0.04)")
    ordering = [r for r in rows if r["claim"].startswith("the larger the")]
    assert [r["result"] for r in ordering] == ["PASS", "PASS"]
    assert next(r for r in rows if "widest strip" in r["claim"])["result"] == "PASS"
    ceilings["square:50"] = 1.0  # the ceiling no longer falls with k
    rows = holdout_rows([run(s, c) for s, c in ceilings.items()], QUICK)
    assert next(r for r in rows if r["claim"].startswith("the larger the square"))["result"] == "FAIL"


def test_toeplitz_ratio_claim_is_the_median_of_per_seed_ratios():
    from groklab.reproductions.progress_measures import toeplitz_rows

    def run(init: str, at: int | None, seed: int):
        steps = list(range(0, 4000, 100))
        acc = [1.0 if at is not None and s >= at else 0.1 for s in steps]
        return {"task": {"train_frac": 0.3}, "model": {"embed_init": init}, "run": {"seed": seed}}, {"test_acc": (steps, acc)}

    def judged(default: list[int | None], toeplitz: list[int | None]) -> dict[str, str]:
        runs = [run("default", t, k) for k, t in enumerate(default)] + [run("toeplitz", t, k) for k, t in enumerate(toeplitz)]
        (row,) = toeplitz_rows(runs, budget=4000)
        return row

    row = judged([2000, 3000, 1000], [1000, 1800, 700])  # ratios 0.5, 0.6, 0.7: median 0.6
    assert row["result"] == "PASS" and "ratio median 0.60 over 3 seeds" in row["measured"]
    assert judged([2000, 3000, 1000], [1000, 2000, 700])["result"] == "FAIL"  # ratios 0.5, 0.67, 0.7: median 0.67 > 0.6
    assert judged([2000, 2000, 2000], [1000, 1000, 1900])["result"] == "PASS"  # one slow seed does not sway the median
    row = judged([2000, None, None], [1000, 1000, None])  # only seed 0 grokked in both arms
    assert row["result"] == "n/a" and "only 1 of 3 seeds grokked in both arms within 4000 steps" in row["measured"]


def gu_quick_argv(tmp_path, steps: int) -> list[str]:
    """`reproduce progress-measures --quick` on a tiny transformer."""
    tiny = [f"schedule.steps={steps}", "schedule.eval_every=10", "model.d_model=16", "model.n_heads=2", "model.d_mlp=32"]
    return quick_argv("progress-measures", tiny, tmp_path)


def test_progress_measures_runs_end_to_end_on_a_tiny_budget(capsys, tmp_path):
    assert main(gu_quick_argv(tmp_path, steps=20)) == 0
    out = capsys.readouterr().out
    assert "Table 1 square:30" in out and "MED traces the test loss" in out and "Toeplitz" in out
    data = json.loads((tmp_path / "out" / "claims.json").read_text())
    assert len(data["sweeps"]) == 6 and (tmp_path / "out" / "gu2025-holdout-quick.png").exists()
    assert "b tokens offset 60" in out and "x²+xy+y²" in out and "polygon grids" in out and "MED tracks the test loss more closely" in out


def test_the_toeplitz_baseline_is_the_med_run_not_a_second_copy(capsys, tmp_path, monkeypatch):
    import groklab.reproductions.progress_measures as pm
    from groklab.store import Store

    seen = []
    real = pm.toeplitz_rows
    monkeypatch.setattr(pm, "toeplitz_rows", lambda runs, budget: seen.extend(runs) or real(runs, budget))
    assert main(gu_quick_argv(tmp_path, steps=10)) == 0
    arms = sorted((cfg["model"]["embed_init"], cfg["task"]["p"], cfg["task"]["train_frac"]) for cfg, _ in seen)
    assert arms == [("default", 97, 0.3), ("toeplitz", 97, 0.3)]
    with Store(tmp_path) as store:  # splits (both layouts) + MED at p=47 and 97 + the Toeplitz run + Fig. 4: nothing trained twice
        configs = [json.dumps(store.get(r.id).config, sort_keys=True) for r in store.runs()]
    q = pm.QUICK
    assert len(configs) == len(q.splits) + len(q.separate_strips) + len(q.med_primes) + 1 + 2 * len(q.fig4_fracs) == len(set(configs))


def test_tunnel_lengths_are_judged_only_at_the_papers_width():
    def with_tunnel(depth: int, tunnel: int, width: int) -> RunView:
        v = view(depth, 5000, sigmoid_curve(1000 * depth))
        v.m["tunnel_length"] = ([0, 8000], [0.0, float(tunnel)])
        v.width = width
        return v

    paper = [with_tunnel(4, 1, 400), with_tunnel(8, 3, 400), with_tunnel(12, 6, 400)]
    rows = [r for r in claims(paper, [], FULL, 0.1, 10) if r["claim"].startswith("(d) tunnel lengths at N=5000")]
    assert rows[0]["result"] == "PASS"
    off = [with_tunnel(4, 1, 400), with_tunnel(8, 6, 400), with_tunnel(12, 6, 400)]  # depth 8 off by 3
    assert next(r for r in claims(off, [], FULL, 0.1, 10) if r["claim"].startswith("(d) tunnel lengths at N=5000"))["result"] == "FAIL"
    narrow = [with_tunnel(d, t, 128) for d, t in ((4, 1), (8, 3), (12, 6))]
    row = next(r for r in claims(narrow, [], QUICK, 0.1, 10) if r["claim"].startswith("(d) tunnel lengths at N=5000"))
    assert row["result"] == "n/a" and "indicative" in row["measured"]


# ----- the claims added for issue 16: each on synthetic runs where it must PASS and where it must FAIL ----------------


def rank_dd_curve(first: float, second: float, steps: range = range(0, 8001, 100)):
    """120 -> 50 (falling from the start), back up to 100 at the first surge, down to 30 with the second."""
    s = list(steps)
    fall = [120 - 70 / (1 + math.exp(-(x - 300) / 100)) for x in s]
    up = [50 / (1 + math.exp(-(x - first) / 150)) for x in s]
    down = [-70 / (1 + math.exp(-(x - second) / 150)) for x in s]
    return s, [a + b + c for a, b, c in zip(fall, up, down, strict=True)]


def with_events(v: RunView) -> RunView:
    """The events the trainer stores, computed from the view's curves as it would."""
    from groklab.analysis.stages import stage_events

    v.events = stage_events(v.m, 0.1, 10, 0.1)
    return v


def claim(rows: list[dict[str, str]], tag: str) -> dict[str, str]:
    return next(r for r in rows if r["claim"].startswith(tag + " "))


def test_b_is_na_in_a_reduced_setting_that_never_shows_a_second_surge_but_judged_once_any_run_does():
    views = [view(d, 7000, sigmoid_curve(1000 * d)) for d in (4, 8, 12)] + [view(d, 5000, sigmoid_curve(1000 * d)) for d in (4, 8, 12)]
    row = claim(claims(views, [], QUICK, 0.1, 10), "(b)")
    assert row["result"] == "n/a" and "no run of this reduced setting shows a second surge" in row["measured"]
    views[0] = view(4, 7000, two_stage_curve(1000, 5000))  # a second surge, at the wrong depth
    assert claim(claims(views, [], QUICK, 0.1, 10), "(b)")["result"] == "FAIL"
    assert claim(claims(views[:3], [], FULL, 0.1, 10), "(b)")["result"] == "FAIL"  # the paper's setup: never n/a


def test_b2_rank_double_descent_aligned_with_the_two_stages():
    def run(depth: int, rank_second: float) -> RunView:
        v = view(depth, 7000, two_stage_curve(2000, 5500), rank_dd_curve(2000, rank_second))
        return with_events(v)

    good = [run(8, 5500), run(12, 5500), view(4, 7000, sigmoid_curve(1000))]
    row = claim(claims(good, [], FULL, 0.1, 10), "(b2)")
    assert row["result"] == "PASS", row
    flat = [with_events(view(12, 7000, two_stage_curve(2000, 5500), falling_rank(300)))]  # two stages, a rank that only falls
    assert claim(claims(flat, [], FULL, 0.1, 10), "(b2)")["result"] == "FAIL"
    late = [run(12, 7800)]  # the rank's second fall comes after the second surge has started: the peak is past it
    assert claim(claims(late, [], FULL, 0.1, 10), "(b2)")["result"] == "FAIL"
    single = [with_events(view(12, 7000, sigmoid_curve(2000), rank_dd_curve(2000, 5500)))]
    assert claim(claims(single, [], FULL, 0.1, 10), "(b2)")["result"] == "n/a"


def test_c_fails_for_a_rank_that_falls_from_step_zero():
    views = [view(12, n, sigmoid_curve(4000), falling_rank(50)) for n in (2000, 5000)]  # rank collapses at once, test rises late
    row = claim(claims(views, [], QUICK, 0.1, 10), "(c)")
    assert row["result"] == "FAIL" and "steepest rank fall at step" in row["measured"]
    views = [view(12, n, sigmoid_curve(4000), falling_rank(4100)) for n in (2000, 5000)]
    assert claim(claims(views, [], QUICK, 0.1, 10), "(c)")["result"] == "PASS"


def test_g_probe_accuracy_must_rise_in_every_layer():
    def run(flat_layer: int | None, seed: int) -> RunView:
        v = view(12, 5000, sigmoid_curve(4000), seed=seed)
        steps = list(range(0, 8001, 800))
        for i in range(1, 13):
            v.m[f"probe_acc/L{i}"] = (steps, [0.85 if i == flat_layer else (0.3 if s < 4000 else 0.9) for s in steps])
        return v

    row = claim(claims([run(None, k) for k in range(3)], [], QUICK, 0.1, 10), "(g)")
    assert row["result"] == "PASS" and "L12: +0.600" in row["measured"]
    row = claim(claims([run(1, k) for k in range(3)], [], QUICK, 0.1, 10), "(g)")
    assert row["result"] == "FAIL" and "L1: +0.000" in row["measured"]
    assert claim(claims([view(12, 5000, sigmoid_curve(4000))], [], QUICK, 0.1, 10), "(g)")["result"] == "n/a"


def test_d_judges_the_count_with_the_output_layer_and_shows_the_hidden_count():
    def run(depth: int, tunnel: int) -> RunView:
        v = view(depth, 5000, sigmoid_curve(1000 * depth))
        v.m["tunnel_length"] = ([8000], [float(tunnel)])
        v.m["tunnel_length_hidden"] = ([8000], [float(tunnel - 1)])
        return v

    row = claim(claims([run(4, 1), run(8, 3), run(12, 6)], [], FULL, 0.1, 10), "(d)")
    assert row["result"] == "PASS" and "depth 8: 3 (hidden layers only: 2)" in row["measured"]


def test_steepest_change_finds_the_largest_move_between_evaluations():
    from groklab.analysis.stages import steepest_change

    steps = [0, 10, 20, 100, 1000, 2000, 3000]
    acc = [0.1, 0.12, 0.14, 0.2, 0.3, 0.9, 0.95]
    assert steepest_change(steps, acc, 1) == 2000
    assert steepest_change(steps, acc, -1) is None  # it never falls
    assert steepest_change(steps, [5, 4, 4, 4, 1, 1, 1], -1) == 1000
    with pytest.raises(ValueError, match="sign"):
        steepest_change(steps, acc, 0)


def gu_run(**cfg_and_curves):
    cfg = {"task": {"p": 97, "train_frac": 0.3, "split": "random"}, "model": {"embed_init": "default"}, "run": {"seed": 0}}
    for key in ("split", "train_frac", "p"):
        if key in cfg_and_curves:
            cfg["task"][key] = cfg_and_curves.pop(key)
    if "seed" in cfg_and_curves:
        cfg["run"]["seed"] = cfg_and_curves.pop("seed")
    return cfg, cfg_and_curves


def test_med_ranked_against_the_prior_measures_by_their_tracking_of_the_test_loss():
    from groklab.reproductions.progress_measures import med_rank_rows

    steps = list(range(0, 2000, 20))
    loss = [3 * math.exp(-(((s - 600) / 300) ** 2)) + 0.1 for s in steps]  # rises, then falls as it groks
    follows = loss
    monotone = [1 - s / 2000 for s in steps]  # a steady fall: tracks only the falling half
    noisy = [math.sin(s / 37.0) for s in steps]

    def runs(med, norm, fourier):
        return [
            gu_run(seed=k, test_loss=(steps, loss), med=(steps, med), weight_norm=(steps, norm), fourier_sparsity=(steps, fourier))
            for k in range(3)
        ]

    (row,) = med_rank_rows(runs(follows, monotone, noisy))
    assert row["result"] == "PASS" and "closest: med" in row["measured"]
    (row,) = med_rank_rows(runs(noisy, monotone, [-x for x in follows]))  # the Fourier sparsity mirrors the loss: it tracks it best
    assert row["result"] == "FAIL" and "closest: fourier_sparsity" in row["measured"]
    (row,) = med_rank_rows([gu_run(test_loss=(steps, loss), med=(steps, follows))])
    assert row["result"] == "n/a"


def test_fig4_constant_covered_accuracy_and_an_mlp_at_chance():
    from groklab.reproductions.progress_measures import fig4_rows

    steps = [0, 2500]

    def arm(acc_of, train=1.0):
        return [
            gu_run(train_frac=f, seed=k, test_acc=(steps, [0.01, acc_of(f)]), train_acc=(steps, [0.0, train]))
            for f in (0.5, 0.6, 0.7)
            for k in range(3)
        ]

    constant = lambda f: 0.3 / (1 - f)  # noqa: E731  acc x (1 - frac) = 0.3 at every fraction
    tf, mlp = fig4_rows(arm(constant), arm(lambda f: 0.011))
    assert tf["result"] == "PASS" and "max / min 1.00" in tf["measured"] and mlp["result"] == "PASS"
    tf, mlp = fig4_rows(arm(lambda f: 1.0), arm(lambda f: 0.4))  # full generalization: acc x (1 - frac) falls 0.5 -> 0.3
    assert tf["result"] == "FAIL" and mlp["result"] == "FAIL"
    tf, _ = fig4_rows(arm(constant, train=0.8), [])
    assert tf["result"] == "n/a" and "not every run fit" in tf["measured"]


def test_separate_token_strips_beside_the_paper_and_the_shared_layout():
    from groklab.reproductions.progress_measures import QUICK, separate_rows

    steps = list(range(0, 2500, 100))

    def runs(ceilings):
        return [
            gu_run(split=s, seed=k, test_acc=(steps, [min(c, 0.01 + s_ / 2500) for s_ in steps]))
            for s, c in ceilings.items()
            for k in range(3)
        ]

    paper_like = {"strip:40": 0.9, "strip:50": 0.8, "strip:60": 0.33, "strip:67": 0.075}
    shared_like = {"strip:40": 0.95, "strip:50": 0.9, "strip:60": 0.8, "strip:67": 0.6}
    rows = separate_rows(runs(shared_like), runs(paper_like), QUICK)
    by = {r["claim"].split(":")[0]: r for r in rows if "reach the paper's ceilings" in r["claim"]}
    assert by["b tokens offset 60"]["result"] == "PASS" and by["shared tokens"]["result"] == "FAIL"
    assert next(r for r in rows if r["claim"].startswith("the widest strip"))["result"] == "PASS"
    assert any(r["claim"] == "Table 1 strip:60 (b tokens offset 60, as str.py)" and "3 seeds" in r["measured"] for r in rows)


def test_polygon_claim_is_na_without_the_gpu_runs_and_judged_with_them():
    from groklab.reproductions.progress_measures import polygon_rows

    (row,) = polygon_rows(None)
    assert row["result"] == "n/a" and "run.device=cuda" in row["measured"]
    steps = list(range(0, 60000, 1000))
    train = (steps, [min(1.0, s / 2000) for s in steps])
    grokked = (steps, [0.35 if s < 50000 else 0.97 for s in steps])
    stuck = (steps, [0.35 for _ in steps])
    (row,) = polygon_rows([gu_run(seed=k, train_acc=train, test_acc=grokked) for k in range(3)])
    assert row["result"] == "PASS"
    (row,) = polygon_rows([gu_run(seed=0, train_acc=train, test_acc=grokked), gu_run(seed=1, train_acc=train, test_acc=stuck)])
    assert row["result"] == "FAIL"
