"""The double-descent reproduction: its transition and bump checks on known curves, and the command end
to end on a tiny budget (the real sweeps are the reproduction itself, not a test)."""

from __future__ import annotations

import json

import pytest

from groklab.analysis.width_curves import WidthCurves
from groklab.cli.main import main
from groklab.config import resolve_config, to_dict
from groklab.reproductions.double_descent import FULL, QUICK, SEEDS, Transitions, _zero_div_count, claims, transition
from groklab.store import Store

P = 97
CHANCE = 1 / P


def width(dim: int, train: float, test: float, loss: float, seeds: int = 1) -> WidthCurves:
    """A dimension whose runs end at the given values (curves of two evaluations)."""
    w = WidthCurves(dim, [f"r{dim}s{s}" for s in range(seeds)])
    for name, final in (("train_acc", train), ("test_acc", test), ("train_loss", 0.01), ("test_loss", loss)):
        w.curves[name] = [([0, 100], [CHANCE if name.endswith("acc") else 4.6, final]) for _ in range(seeds)]
    return w


def fig5_like() -> list[WidthCurves]:
    """Fig. 5's shape: underfit, then a memorizing band with a loss peak, then generalization (one outlier)."""
    out = []
    for d in range(1, 81, 2):
        if d < 21:
            out.append(width(d, 0.2, CHANCE, 4.6))
        elif d < 35:
            out.append(width(d, 0.7, CHANCE, 6.0 + d / 10))
        elif d < 41:
            out.append(width(d, 1.0, CHANCE, 12.0 - (d - 35) * 0.1))
        else:
            out.append(width(d, 1.0, 0.34 if d == 45 else 1.0, 0.01))
    return out


def test_transition_tolerates_a_lone_outlier_but_not_a_band():
    assert transition({1: 0.0, 3: 0.95, 5: 0.0, 7: 0.95, 9: 0.95, 11: 0.2, 13: 0.95, 15: 0.95, 17: 0.95}, 0.9) == 7
    assert transition({1: 0.0, 3: 0.95, 5: 0.0, 7: 0.0, 9: 0.0}, 0.9) is None
    assert transition({}, 0.9) is None


def test_fig5_like_sweep_passes_the_full_claims():
    t = Transitions.of(fig5_like(), CHANCE)
    assert (t.train_fit, t.test_jump, t.loss_peak, t.half_fit) == (35, 41, 35, 21)
    assert t.memorizing == [35, 37, 39]
    rows = {r["claim"][:3]: r for r in claims(Store(None), fig5_like(), [], FULL, P)}
    assert [rows[k]["result"] for k in ("(a)", "(b)", "(c)")] == ["PASS", "PASS", "PASS"]
    assert rows["(d)"]["result"] == "n/a"  # no bump run


def test_claims_fail_without_a_memorizing_band_or_at_other_dimensions():
    no_band = [width(d, 1.0 if d >= 21 else 0.2, 1.0 if d >= 21 else CHANCE, 0.01 if d >= 21 else 4.6) for d in range(1, 81, 2)]
    rows = {r["claim"][:3]: r for r in claims(Store(None), no_band, [], FULL, P)}
    assert rows["(a)"]["result"] == "FAIL"  # generalizes as soon as it fits: no model-wise grokking
    assert rows["(b)"]["result"] == "FAIL"  # transitions at 21, far from 35-41
    assert rows["(c)"]["result"] == "FAIL"  # the loss is highest where nothing fits
    quick_rows = {r["claim"][:3]: r for r in claims(Store(None), fig5_like(), [], QUICK, P)}
    assert quick_rows["(b)"]["result"] == "n/a"  # a reduced setting's dimensions are its own


def test_bump_claims_read_the_division_subsets(tmp_path):
    store = Store(tmp_path / "s")

    cfg = resolve_config("davies2023", ["task.p=31", "model.d_model=8"])
    rid = store.create_run(to_dict(cfg), "", "davies2023", "test", "cpu")
    n_test = 31 * 30 - int(0.5 * 31 * 30)  # p = 31: 930 pairs, half of them in training
    n_zero = _zero_div_count(store, rid)  # the 0/b equations the split put in the test set
    assert 0 < n_zero <= 30
    chance = n_test / 31
    expected = n_zero + (n_test - n_zero) / 31
    steps = [0, 10, 20, 30, 40, 50]
    correct = [chance, expected, expected - 1, chance - 5, chance - 80, n_test]
    train = [0.01, 0.05, 0.2, 0.4, 0.6, 1.0]  # memorization under way from step 40: the window ends at 30
    for s, c, a, t in zip(steps, correct, [0.03, 0.06, 0.06, 0.02, 0.01, 1.0], train, strict=True):
        metrics = {"test_correct": c, "test_chance_correct": chance, "test_acc": a, "train_acc": t, "test_acc/zero_div": 1.0 if s else 0.0}
        store.log_metrics(rid, s, metrics)
    store.set_status(rid, "finished", 50, "")
    rows = {r["claim"][:3]: r for r in claims(store, [width(8, 1.0, 1.0, 0.01)], [rid], QUICK, 31)}
    assert rows["(d)"]["result"] == "PASS" and f"peak {expected:.0f} correct at step 10" in rows["(d)"]["measured"]
    assert rows["(e)"]["result"] == "PASS"  # fell to chance - 5 before memorization took over
    assert f"lowest {chance - 5:.0f} after the peak" in rows["(e)"]["measured"]  # not the later chance - 80
    flat = Store(tmp_path / "flat")
    rid2 = flat.create_run(to_dict(cfg), "", "davies2023", "test", "cpu")
    for s in steps:
        flat.log_metrics(rid2, s, {"test_correct": chance, "test_chance_correct": chance, "test_acc": 0.03, "test_acc/zero_div": 0.0})
    rows = {r["claim"][:3]: r for r in claims(flat, [width(8, 1.0, 1.0, 0.01)], [rid2], QUICK, 31)}
    assert rows["(d)"]["result"] == "FAIL" and rows["(e)"]["result"] == "FAIL"


def test_bad_input_writes_nothing(capsys, tmp_path):
    runs = tmp_path / "runs"
    assert main(["reproduce", "double-descent", "--quick", "--dims", "3,4", "model.n_heads=2", "--runs-dir", str(runs)]) == 2
    err = capsys.readouterr().err.strip()
    assert "--dims" in err and "3 not divisible by model.n_heads=2" in err and len(err.splitlines()) == 1
    assert main(["reproduce", "deep-grokking", "--quick", "--dims", "1:4", "--runs-dir", str(runs)]) == 2
    assert "--dims: only for double-descent" in capsys.readouterr().err
    assert main(["reproduce", "double-descent", "--dims", "a,b", "--runs-dir", str(runs)]) == 2
    assert not runs.exists()


def test_quick_reproduction_runs_end_to_end_on_a_tiny_budget(capsys, tmp_path):
    runs, out = tmp_path / "runs", tmp_path / "out"
    args = [
        "reproduce",
        "double-descent",
        "--quick",
        "--dims",
        "2,8",
        "schedule.steps=30",
        "--quiet",
        "--runs-dir",
        str(runs),
        "--out",
        str(out),
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert (
        "estimated wall-clock on cpu (" in printed and "for 7 of 7 runs x 30 steps" in printed
    )  # before it trains (2 widths x 3 seeds, the bump run)
    for claim in ("(a)", "(b)", "(c)", "(d)", "(e)", "(f)"):
        assert f"] {claim}" in printed
    saved = json.loads((out / "claims.json").read_text())
    assert len(saved["claims"]) == 6 and len(saved["sweeps"]) == 2
    assert (out / "heatmaps.png").stat().st_size > 0 and (out / "final_vs_dim.png").stat().st_size > 0
    assert list(out.glob("subsets_*.png"))
    assert main(args) == 0  # a second call continues the stored sweeps: nothing is trained twice
    assert "estimated wall-clock" not in capsys.readouterr().out  # nothing left to estimate
    store = Store(runs, create=False)
    assert len(store.runs()) == 2 * SEEDS + 1  # two widths x the default seeds, and the bump run


@pytest.mark.parametrize("plan", [FULL, QUICK])
def test_plans_resolve(plan):
    """Each plan's overrides land in the config it checks, every width splits into the heads, and a head
    count that does not divide the widths is refused."""
    import yaml

    from groklab.errors import ConfigError
    from groklab.reproductions.claim import Setting
    from groklab.reproductions.double_descent import PRESET, check

    setting = Setting("quick" if plan is QUICK else "paper", 1)
    check(setting)
    cfg = resolve_config(PRESET, [*plan.overrides, *plan.analog])
    assert cfg.preset == PRESET
    data = to_dict(cfg)
    for item in [*plan.overrides, *plan.analog]:
        key, value = item.split("=", 1)
        node = data
        for part in key.split("."):
            node = node[part]
        assert node == yaml.safe_load(value), item
    assert all(d % cfg.model.n_heads == 0 for d in plan.dims)
    with pytest.raises(ConfigError, match="not divisible"):
        check(Setting(setting.scale, 1, ("model.n_heads=7",)))


# ----- the quick analog's claim logic, on stored-like synthetic sweeps ---------------------------


def seeded(dim: int, train: list[float], test: list[float], train_batches: list[float] | None = None) -> WidthCurves:
    """A dimension whose seeds end at the given train/test accuracies; train_acc_batches as given (else = train)."""
    w = WidthCurves(dim, [f"r{dim}s{s}" for s in range(len(train))])
    batches = train_batches or train
    for name, finals_ in (("train_acc", train), ("train_acc_batches", batches), ("test_acc", test)):
        w.curves[name] = [([0, 100], [CHANCE, v]) for v in finals_]
    w.curves["test_loss"] = [([0, 100], [4.6, 0.01 if t >= 0.9 else 8.0 + dim / 100]) for t in test]
    w.curves["train_loss"] = [([0, 100], [4.6, 0.01]) for _ in test]
    return w


def band_sweep() -> list[WidthCurves]:
    """Underfit at 8, a memorizing band at 16-24, generalized from 32: three seeds each."""
    return [
        seeded(8, [0.3, 0.35, 0.4], [0.02, 0.02, 0.03]),
        seeded(16, [0.93, 0.95, 0.97], [0.03, 0.05, 0.04]),
        seeded(24, [0.99, 1.0, 1.0], [0.06, 0.02, 0.08]),
        seeded(32, [1.0, 1.0, 1.0], [0.97, 0.99, 0.95]),
        seeded(48, [1.0, 1.0, 1.0], [1.0, 1.0, 0.99]),
    ]


def rows_of(widths: list[WidthCurves], steps: int, plan=QUICK, store: Store | None = None, bump: list[str] | None = None) -> dict:
    return {r["claim"][:3]: r for r in claims(store or Store(None), widths, bump or [], plan, P, steps)}


def test_quick_band_present_passes_with_the_seeds_mean_and_ci():
    rows = rows_of(band_sweep(), 3000)
    a = rows["(a)"]
    assert a["result"] == "PASS"
    assert "band below the test jump: [16, 24]" in a["measured"] and "from d = 32" in a["measured"]
    assert "d=16: 0.95 [0.90, 1.00] / 0.04 [0.02, 0.06]" in a["measured"]  # mean [95% CI] over the 3 seeds
    assert rows["(c)"]["result"] == "PASS"  # the loss peaks in the band (24), below the jump (32)


def test_quick_band_absent_or_one_width_fails():
    no_band = [seeded(8, [0.3] * 3, [0.02] * 3), seeded(16, [1.0] * 3, [0.95] * 3), seeded(24, [1.0] * 3, [1.0] * 3)]
    assert rows_of(no_band, 3000)["(a)"]["result"] == "FAIL"  # fits and generalizes at once
    lone = [seeded(8, [0.3] * 3, [0.02] * 3), seeded(16, [1.0] * 3, [0.03] * 3), seeded(24, [1.0] * 3, [1.0] * 3)]
    rows = rows_of(lone, 3000)
    assert rows["(a)"]["result"] == "FAIL" and "band below the test jump: [16]" in rows["(a)"]["measured"]  # one width is not a band


def test_a_budget_that_ends_before_any_width_generalizes_is_na_not_fail():
    short = [seeded(d, [1.0] * 3, [0.02] * 3) for d in (16, 24, 32)]
    rows = rows_of(short, 3000)
    assert rows["(a)"]["result"] == "n/a" and "budget: 3,000 of the paper's 400K steps" in rows["(a)"]["measured"]
    assert rows["(c)"]["result"] == "n/a"
    full = rows_of(short, 400_000, FULL)  # at the paper's budget the same picture is a FAIL
    assert full["(a)"]["result"] == "FAIL" and full["(c)"]["result"] == "FAIL"


def test_fitting_is_judged_on_the_authors_train_accuracy():
    """Eval-mode train accuracy >= 0.9 at d = 16 and 24, but the authors' train-mode measure is below 0.9 there."""
    widths = band_sweep()
    widths[1] = seeded(16, [0.95] * 3, [0.03] * 3, train_batches=[0.8] * 3)
    widths[2] = seeded(24, [1.0] * 3, [0.03] * 3, train_batches=[0.85] * 3)
    rows = rows_of(widths, 3000)
    assert rows["(a)"]["result"] == "FAIL" and "train_acc_batches" in rows["(a)"]["claim"]


def test_epoch_wise_double_descent_is_judged_on_the_d128_run(tmp_path):
    store = Store(tmp_path / "s")
    plain = []
    for steps in (3000, 400_000):
        cfg = resolve_config("davies2023", ["model.d_model=128", f"schedule.steps={steps}"])
        plain.append(store.create_run(to_dict(cfg), "", "davies2023", "test", "cpu"))
    with_dd = store.create_run(to_dict(cfg), "", "davies2023", "test", "cpu")
    store.set_events(with_dd, {"dd_first_min": (200, 0.5), "dd_peak": (900, 2.0), "dd_second_min": (5000, 0.1)})
    widths = band_sweep()
    assert rows_of(widths, 3000, store=store, bump=[plain[0]])["(f)"]["result"] == "n/a"  # 3,000 steps: the peak may come later
    assert rows_of(widths, 3000, store=store, bump=[plain[1]])["(f)"]["result"] == "FAIL"  # none in the paper's 400K
    f = rows_of(widths, 3000, store=store, bump=[with_dd])["(f)"]
    assert f["result"] == "PASS" and "peak 2 at step 900" in f["measured"]


def test_ctrl_c_ends_the_reproduction_instead_of_starting_its_next_sweep(tmp_path):
    from groklab.reproductions import RECIPES
    from groklab.reproductions.runner import prepare, reproduce, setting_for
    from groklab.sweeps import run_sweep
    from helpers import InterruptAt

    store = Store(tmp_path / "runs")

    def train(store, sweep_id):
        run_sweep(store, sweep_id, reporter=lambda points, label: InterruptAt(5))

    recipe = RECIPES.get("double-descent")
    setting = setting_for(recipe, "quick", 1, ["schedule.steps=30"], {"dims": "2"})
    with pytest.raises(KeyboardInterrupt):
        reproduce(prepare(recipe, setting, None), store, tmp_path / "out", train=train, echo=lambda _: None)
    assert [sw.name for sw in store.sweeps()] == ["double-descent-dims-quick"]  # the bump sweep never started
    assert [r.status for r in store.runs()] == ["interrupted"]
