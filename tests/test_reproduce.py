"""The deep-grokking reproduction: its claim checks on runs with known curves, and the command end to end
on a tiny budget (the real runs are the reproduction itself, not a test)."""

from __future__ import annotations

import json
import math

import pytest

from groklab.cli.main import main
from groklab.reproduce.deep_grokking import FULL, QUICK, RunView, claims, classify
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
    code = main(["reproduce", "omnigrok", "--runs-dir", str(tmp_path / "r")])
    assert code == 2 and capsys.readouterr().err.startswith("groklab: error: paper: unknown paper 'omnigrok'")
    assert not (tmp_path / "r").exists()


@needs_real
def test_quick_reproduction_runs_end_to_end_on_a_tiny_budget(capsys, tmp_path):
    tiny = [f"task.data_dir={REAL}", "model.width=8", "schedule.steps=30", "schedule.eval_every=10", "task.n_test=300"]
    tiny.append("measures.probe_epochs=1")
    argv = ["reproduce", "deep-grokking", "--quick", "--seeds", "1", *tiny, "--quiet", "--runs-dir", str(tmp_path), "--out", str(tmp_path / "out")]
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
    from groklab.reproduce.progress_measures import Outcome

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
    from groklab.reproduce.progress_measures import QUICK, holdout_rows

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
    from groklab.reproduce.progress_measures import toeplitz_rows

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


def test_progress_measures_runs_end_to_end_on_a_tiny_budget(capsys, tmp_path):
    tiny = ["schedule.steps=20", "schedule.eval_every=10", "model.d_model=16", "model.n_heads=2", "model.d_mlp=32"]
    argv = ["reproduce", "progress-measures", "--quick", "--seeds", "1", *tiny, "--quiet", "--runs-dir", str(tmp_path), "--out", str(tmp_path / "out")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "Table 1 square:30" in out and "MED traces the test loss" in out and "Toeplitz" in out
    data = json.loads((tmp_path / "out" / "claims.json").read_text())
    assert len(data["sweeps"]) == 6 and (tmp_path / "out" / "gu2025-holdout-quick.png").exists()
    assert "b tokens offset 60" in out and "x²+xy+y²" in out and "polygon grids" in out and "MED tracks the test loss more closely" in out


def test_the_toeplitz_baseline_is_the_med_run_not_a_second_copy(capsys, tmp_path, monkeypatch):
    import groklab.reproduce.progress_measures as pm
    from groklab.store import Store

    seen = []
    real = pm.toeplitz_rows
    monkeypatch.setattr(pm, "toeplitz_rows", lambda runs, budget: seen.extend(runs) or real(runs, budget))
    tiny = ["schedule.steps=10", "schedule.eval_every=10", "model.d_model=16", "model.n_heads=2", "model.d_mlp=32"]
    argv = ["reproduce", "progress-measures", "--quick", "--seeds", "1", *tiny, "--quiet", "--runs-dir", str(tmp_path), "--out", str(tmp_path / "out")]
    assert main(argv) == 0
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
