"""The pattern-learning model (Davies et al. 2023), its fit to accuracy curves, and `groklab patterns`."""

from __future__ import annotations

import json
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from groklab.analysis.pattern_fit import fit_patterns, fit_run, min_points
from groklab.analysis.patterns import (
    MAX_PATTERNS,
    PRESETS,
    Pattern,
    PatternModel,
    accuracy_vs_capacity,
    curve_features,
    subset_probs,
)
from groklab.cli.main import main
from groklab.errors import ConfigError, GroklabError
from helpers import TINY

# ----- the model against hand-computed values ---------------------------------------------------------

# At t = 10: pattern A has b = 10, so p = gamma / 2 = 0.4; pattern B has alpha (t - b) = ln 3, so
# sigmoid = 3/4 and p = 0.8 * 3/4 = 0.6; pattern C has b = 10, p = 0.5 / 2 = 0.25.
A = Pattern(gamma=0.8, alpha=0.3, b=10, g=1.0)
B = Pattern(gamma=0.8, alpha=math.log(3) / 5, b=5, g=0.0)
C = Pattern(gamma=0.5, alpha=2.0, b=10, g=0.6)


def test_two_patterns_by_hand():
    m = PatternModel((A, B))
    assert m.probs(10.0).tolist() == pytest.approx([0.4, 0.6], abs=1e-12)
    assert float(m.train_acc(10.0)) == pytest.approx(1 - (1 - 0.4) * (1 - 0.6), abs=1e-12)  # 0.76
    p_none, p_a, p_b, p_ab = 0.6 * 0.4, 0.4 * 0.4, 0.6 * 0.6, 0.4 * 0.6
    assert p_none + p_a + p_b + p_ab == pytest.approx(1.0)
    # G(empty) = 0, G({A}) = 1, G({B}) = 0, G({A, B}) = mean(1, 0)
    assert float(m.test_acc(10.0)) == pytest.approx(p_none * 0 + p_a * 1 + p_b * 0 + p_ab * 0.5, abs=1e-12)  # 0.28
    # B preferred: G({A, B}) = g_B = 0; A preferred: G({A, B}) = g_A = 1
    assert float(PatternModel((A, B), preferred=1).test_acc(10.0)) == pytest.approx(p_a, abs=1e-12)  # 0.16
    assert float(PatternModel((A, B), preferred=0).test_acc(10.0)) == pytest.approx(p_a + p_ab, abs=1e-12)  # 0.40
    # G(empty) = chance
    assert float(PatternModel((A, B), chance=0.5).test_acc(10.0)) == pytest.approx(0.28 + 0.5 * p_none, abs=1e-12)


def test_three_patterns_by_hand():
    pa, pb, pc = 0.4, 0.6, 0.25
    qa, qb, qc = 1 - pa, 1 - pb, 1 - pc
    subsets = {  # P_A and the mean g over A (g = 1, 0, 0.6)
        (): (qa * qb * qc, 0.0),
        ("A",): (pa * qb * qc, 1.0),
        ("B",): (qa * pb * qc, 0.0),
        ("C",): (qa * qb * pc, 0.6),
        ("A", "B"): (pa * pb * qc, (1.0 + 0.0) / 2),
        ("A", "C"): (pa * qb * pc, (1.0 + 0.6) / 2),
        ("B", "C"): (qa * pb * pc, (0.0 + 0.6) / 2),
        ("A", "B", "C"): (pa * pb * pc, (1.0 + 0.0 + 0.6) / 3),
    }
    assert sum(p for p, _ in subsets.values()) == pytest.approx(1.0)
    m = PatternModel((A, B, C))
    assert float(m.train_acc(10.0)) == pytest.approx(1 - qa * qb * qc, abs=1e-12)  # 0.82
    expected = sum(p * g for p, g in subsets.values())
    assert expected == pytest.approx(0.337)
    assert float(m.test_acc(10.0)) == pytest.approx(expected, abs=1e-12)
    # C preferred: every subset holding C counts g_C = 0.6
    with_pref = sum(p * (0.6 if "C" in k else g) for k, (p, g) in subsets.items())
    assert with_pref == pytest.approx(0.36)
    assert float(PatternModel((A, B, C), preferred=2).test_acc(10.0)) == pytest.approx(with_pref, abs=1e-12)
    # vectorized over t: the same numbers at t = 10 in a batch
    assert PatternModel((A, B, C)).test_acc([0.0, 10.0, 50.0])[1].item() == pytest.approx(expected, abs=1e-12)


def test_empty_set_generalises_at_chance_only():
    never = Pattern(gamma=0.0, alpha=1.0, b=0.0, g=1.0)  # p = 0: the empty set has probability 1
    assert float(PatternModel((never,)).test_acc(5.0)) == 0.0
    assert float(PatternModel((never,), chance=0.1).test_acc(5.0)) == pytest.approx(0.1)


def test_shapes_and_scalar():
    m = PRESETS["double-descent"].model
    assert m.train_acc(5.0).shape == () and m.test_acc(5).shape == ()
    assert m.test_acc(torch.zeros(4, 3)).shape == (4, 3) and m.probs([1.0, 2.0]).shape == (2, 3)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"gamma": 1.2, "alpha": 1, "b": 0, "g": 1}, "pattern gamma"),
        ({"gamma": -0.1, "alpha": 1, "b": 0, "g": 1}, "pattern gamma"),
        ({"gamma": 0.5, "alpha": 0, "b": 0, "g": 1}, "pattern alpha"),
        ({"gamma": 0.5, "alpha": 1, "b": 0, "g": 1.5}, "pattern g"),
        ({"gamma": 0.5, "alpha": 1, "b": math.inf, "g": 1}, "pattern b"),
        ({"gamma": 0.5, "alpha": 1, "b": 0, "g": 1, "kappa": -1}, "pattern kappa"),
    ],
)
def test_pattern_validation(kwargs, field):
    with pytest.raises(ConfigError) as err:
        Pattern(**kwargs)
    assert err.value.field == field


def test_model_validation():
    with pytest.raises(ConfigError, match="at most 12"):
        PatternModel(tuple(A for _ in range(MAX_PATTERNS + 1)))
    with pytest.raises(ConfigError) as err:
        PatternModel((A, B), preferred=2)
    assert err.value.field == "preferred"
    with pytest.raises(ConfigError):
        PatternModel(())
    with pytest.raises(ConfigError):
        PatternModel((A,)).train_acc(1.0, capacity=0.0)
    PatternModel(tuple(A for _ in range(MAX_PATTERNS))).test_acc([1.0, 2.0])  # 4096 subsets are fine


# ----- the paper's two cases --------------------------------------------------------------------------


def test_double_descent_preset_rises_dips_rises():
    case = PRESETS["double-descent"]
    t = torch.arange(case.steps + 1, dtype=torch.float64)
    train, test = case.model.train_acc(t), case.model.test_acc(t)
    peak = int(torch.argmax(test[:80]))
    dip = peak + int(torch.argmin(test[peak:]))
    assert 30 <= peak <= 60 and float(test[peak]) > 0.5  # the heuristic pattern generalises early
    assert 80 <= dip <= 150 and float(test[dip]) < float(test[peak]) - 0.15  # memorisation takes over
    assert float(test[-1]) > float(test[dip]) + 0.1  # the slow preferred pattern brings it back
    assert float(train[dip]) > 0.99  # while the training set is already fitted
    f = curve_features(t.tolist(), train.tolist(), test.tolist())
    assert f["peak"][0] == peak and f["dip"][0] == dip and f["rise"] > dip


def test_grokking_preset_low_test_while_train_fitted_then_rises():
    case = PRESETS["grokking"]
    t = torch.arange(case.steps + 1, dtype=torch.float64)
    train, test = case.model.train_acc(t), case.model.test_acc(t)
    assert float(train[100]) > 0.99 and float(test[100]) < 0.02
    assert float(test[-1]) > 0.99
    assert bool((test[1:] >= test[:-1]).all())  # no dip: plain grokking
    f = curve_features(t.tolist(), train.tolist(), test.tolist())
    assert f["peak"] is None and f["train_90"] < 80 and 180 <= f["rise"] <= 220


def test_capacity_is_a_clock():
    m = PRESETS["grokking"].model
    train, test = accuracy_vs_capacity(m, [0.5, 1.0, 2.0], 100)
    for i, c in enumerate([0.5, 1.0, 2.0]):  # kappa = 1: capacity c at step t is capacity 1 at step c t
        assert float(test[i]) == pytest.approx(float(m.test_acc(100 * c)), abs=1e-12)
        assert float(train[i]) == pytest.approx(float(m.train_acc(100 * c)), abs=1e-12)
    memo = Pattern(1.0, 0.15, 50, 0.0, kappa=2.0)  # memorisation depends more strongly on capacity
    m2 = PatternModel((memo, m.patterns[2]), preferred=1)
    assert float(m2.probs(100.0, capacity=0.5)[0]) == pytest.approx(float(m2.probs(25.0)[0]), abs=1e-12)
    assert float(m2.probs(100.0, capacity=0.5)[1]) == pytest.approx(float(m2.probs(50.0)[1]), abs=1e-12)


# ----- properties -------------------------------------------------------------------------------------

unit = st.floats(0.0, 1.0)
pattern_st = st.builds(Pattern, gamma=unit, alpha=st.floats(1e-3, 5.0), b=st.floats(-100.0, 500.0), g=unit)
patterns_st = st.lists(pattern_st, min_size=1, max_size=5)
times = st.lists(st.floats(-200.0, 1000.0), min_size=1, max_size=20)


@settings(max_examples=60, deadline=None)
@given(patterns=patterns_st, t=times, chance=unit, data=st.data())
def test_accuracies_are_probabilities(patterns, t, chance, data):
    preferred = data.draw(st.none() | st.integers(0, len(patterns) - 1))
    m = PatternModel(tuple(patterns), preferred, chance)
    for acc in (m.train_acc(t), m.test_acc(t)):
        assert bool(((acc >= -1e-12) & (acc <= 1 + 1e-12)).all())
    assert subset_probs(m.probs(t)).sum(-1).tolist() == pytest.approx([1.0] * len(t))


@settings(max_examples=60, deadline=None)
@given(patterns=patterns_st, t=times)
def test_train_accuracy_is_monotone(patterns, t):
    acc = PatternModel(tuple(patterns)).train_acc(sorted(t))
    assert bool((acc[1:] >= acc[:-1] - 1e-12).all())


@settings(max_examples=60, deadline=None)
@given(patterns=patterns_st, t=times, data=st.data())
def test_all_generalising_patterns_give_test_equal_train(patterns, t, data):
    # sum over nonempty A of P_A * 1 = 1 - P_empty = 1 - prod(1 - p_i), whichever pattern is preferred
    ones = tuple(Pattern(p.gamma, p.alpha, p.b, 1.0) for p in patterns)
    preferred = data.draw(st.none() | st.integers(0, len(ones) - 1))
    m = PatternModel(ones, preferred)
    assert m.test_acc(t).tolist() == pytest.approx(m.train_acc(t).tolist(), abs=1e-12)


# ----- the fit ----------------------------------------------------------------------------------------

# Log-spaced evaluations like a real run's, and a grokking-like truth: memorise at 300, generalise at 2e4.
STEPS = sorted({0, *(round(10 ** (1 + 4 * i / 59)) for i in range(60)), 100_000})
TRUTH = PatternModel((Pattern(0.95, 8 / 300, 300, 0.0), Pattern(1.0, 6 / 2e4, 2e4, 1.0)), preferred=1)


def _assert_close(fit, truth, rel_b, rel_alpha, abs_p):
    assert len(fit.patterns) == len(truth.patterns) and fit.preferred == truth.preferred
    for got, want in zip(fit.patterns, truth.patterns, strict=True):
        assert got.b == pytest.approx(want.b, rel=rel_b)
        assert got.alpha == pytest.approx(want.alpha, rel=rel_alpha)
        assert got.gamma == pytest.approx(want.gamma, abs=abs_p)
        assert got.g == pytest.approx(want.g, abs=abs_p)


def test_fit_recovers_noise_free_patterns():
    fit = fit_patterns(STEPS, TRUTH.train_acc(STEPS).tolist(), TRUTH.test_acc(STEPS).tolist(), 2)
    _assert_close(fit, TRUTH, rel_b=1e-3, rel_alpha=1e-3, abs_p=1e-3)
    assert fit.rmse_train < 1e-5 and fit.rmse_test < 1e-5 and fit.n_points == len(STEPS)


def test_fit_recovers_noisy_patterns_and_no_preferred():
    truth = PatternModel((Pattern(0.6, 10 / 100, 100, 1.0), Pattern(0.9, 5 / 3000, 3000, 0.0)))
    gen = torch.Generator().manual_seed(0)
    train = truth.train_acc(STEPS) + 0.01 * torch.randn(len(STEPS), generator=gen, dtype=torch.float64)
    test = truth.test_acc(STEPS) + 0.01 * torch.randn(len(STEPS), generator=gen, dtype=torch.float64)
    fit = fit_patterns(STEPS, train.tolist(), test.tolist(), 2, preferred=None)
    _assert_close(fit, truth, rel_b=0.05, rel_alpha=0.15, abs_p=0.03)
    assert 0.005 < fit.rmse_train < 0.015 and 0.005 < fit.rmse_test < 0.015  # about the noise, not below it


def test_fit_errors():
    steps = list(range(0, 100, 10))  # 10 evaluations
    with pytest.raises(GroklabError, match=r"10 with finite train and test accuracy, need at least 24"):
        fit_patterns(steps, [0.5] * 10, [0.5] * 10, 2)
    assert min_points(3) == 36
    with pytest.raises(ConfigError) as err:
        fit_patterns(STEPS, [0.5] * len(STEPS), [0.5] * len(STEPS), 0)
    assert err.value.field == "n_patterns"

    class NoTest:
        def metrics(self, run_id, names=None):
            return {"train_acc": ([0, 1], [0.1, 0.2])}

    with pytest.raises(GroklabError, match="no test_acc curve"):
        fit_run(NoTest(), "abc")


# ----- the command ------------------------------------------------------------------------------------


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_default_draws_both_cases(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "patterns")
    assert code == 0, err
    png = tmp_path / "patterns.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert "double-descent: 300 steps" in out and "grokking: 300 steps" in out
    assert "dips to 0.351 at step 98" in out and "test never dips" in out


def test_cli_json_capacity_and_custom(capsys, tmp_path):
    out_file = tmp_path / "cap.svg"
    code, out, err = run_cli(capsys, "patterns", "--case", "double-descent", "--capacity", "log:0.1:10:21", "-o", str(out_file), "--json")
    assert code == 0, err
    data = json.loads(out)
    (row,) = data["cases"]
    assert row["case"] == "double-descent" and row["preferred"] == 3 and row["dip"]["step"] == 98
    cap = row["capacity"]
    assert len(cap["capacities"]) == 21 and cap["capacities"][0] == pytest.approx(0.1) and cap["peak"] is not None
    assert out_file.exists() and data["figure"] == str(out_file)

    code, out, err = run_cli(
        capsys,
        "patterns",
        "--pattern",
        "gamma=1,alpha=0.1,b=50,g=0",
        "--pattern",
        "gamma=1,alpha=0.02,b=400,g=1,kappa=2",
        "--preferred",
        "2",
        "-o",
        str(tmp_path / "c.png"),
        "--json",
    )
    assert code == 0, err
    (row,) = json.loads(out)["cases"]
    assert row["steps"] == 700 and row["preferred"] == 2 and row["patterns"][1]["kappa"] == 2.0  # 400 + 6 / 0.02
    assert row["final_train"] > 0.99 and row["final_test"] > 0.99 and row["train_90"] < row["rise"]


BAD = [
    (["--pattern", "gamma=1.5,alpha=0.1,b=5,g=1"], "--pattern 1 gamma: must be in [0, 1]"),
    (["--pattern", "gamma=0.5,alpha=0.1,b=5,g=1", "--pattern", "gamma=0.5,alpha=0,b=5,g=1"], "--pattern 2 alpha: must be > 0"),
    (["--pattern", "gamma=0.5,alpha=0.1,b=5,g=-0.1"], "--pattern 1 g: must be in [0, 1]"),
    (["--pattern", "gamma=0.5,alpha=0.1,b=5"], "--pattern 1: missing g"),
    (["--pattern", "gamma=0.5,alpha=0.1,b=5,g=1,beta=2"], "--pattern 1: unknown key 'beta'"),
    (["--pattern", "gamma=0.5;alpha=1"], "--pattern 1 gamma: not a number: '0.5;alpha=1'"),
    (["--pattern", "0.5,0.1,5,1"], "--pattern 1: expected gamma="),
    (["--pattern", "gamma=x,alpha=0.1,b=5,g=1"], "--pattern 1 gamma: not a number"),
    (["--pattern", "gamma=0.5,alpha=0.1,b=5,g=1", "--preferred", "2"], "--preferred: must be a pattern number 1..1"),
    (["--preferred", "1"], "--preferred and --chance go with --pattern"),
    (["--capacity", "log:0:10:5"], "--capacity: log range"),
    (["--capacity", "1,x"], "--capacity: not a number"),
    (["--steps", "0"], "--steps: must be in"),
    (["-o", "fig.txt"], "unknown figure format"),
    (["--case", "nope"], "invalid choice"),
    (["--case", "grokking", "--pattern", "gamma=0.5,alpha=0.1,b=5,g=1"], "exclude each other"),
    (["--fit", "abc", "--runs-dir", "no-runs-here"], "holds no runs"),
]


@pytest.mark.parametrize(("argv", "message"), BAD, ids=[" ".join(a)[:40] for a, _ in BAD])
def test_cli_bad_input_is_one_line_and_writes_nothing(capsys, tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "patterns", *argv)
    assert code == 2 and out == ""
    assert err.startswith("groklab: error: ") and err.count("\n") == 1 and message in err
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A real run with 31 evaluations: enough for 2 patterns (24), too few for 3 (36)."""
    runs_dir = tmp_path_factory.mktemp("patterns") / "runs"
    argv = ["run", *TINY, "schedule.steps=120", "schedule.eval_every=4", "measures.enabled=[loss_acc]", "--quiet"]
    assert main([*argv, "--runs-dir", str(runs_dir)]) == 0
    return runs_dir


def test_cli_fit_real_run(capsys, tiny_run, tmp_path):
    code, out, err = run_cli(capsys, "patterns", "--fit", "last", "--runs-dir", str(tiny_run))
    assert code == 0, err
    run_id = out.split()[1].rstrip(":")
    assert "2 pattern(s) fitted to 31 evaluations (steps 0..120)" in out
    assert "  pattern     gamma" in out and "rmse train" in out
    assert (tiny_run / "runs" / run_id / "patterns_fit.png").stat().st_size > 10_000

    code, out, err = run_cli(capsys, "patterns", "--fit", run_id, "--runs-dir", str(tiny_run), "--json", "-o", str(tmp_path / "f.pdf"))
    assert code == 0, err
    data = json.loads(out)
    assert data["run"] == run_id and data["n_points"] == 31 and len(data["patterns"]) == 2
    assert 0 <= data["rmse_train"] < 0.1 and 0 <= data["rmse_test"] < 0.1  # the tiny run memorises; two patterns follow it
    assert (tmp_path / "f.pdf").exists()

    target = tmp_path / "none.png"
    for argv, message in (
        (["--n-patterns", "3"], "31 with finite train and test accuracy, need at least 36"),
        (["--preferred", "3"], "--preferred: must be a pattern number 1..2"),
    ):
        code, out, err = run_cli(capsys, "patterns", "--fit", run_id, *argv, "--runs-dir", str(tiny_run), "-o", str(target))
        assert code == 2 and message in err and err.count("\n") == 1 and not target.exists()
    code, _, err = run_cli(capsys, "patterns", "--fit", "nosuchrun", "--runs-dir", str(tiny_run), "-o", str(target))
    assert code == 2 and "no such run" in err and not target.exists()


def test_fit_is_a_least_squares_minimum_scipy_cannot_improve():
    """scipy.optimize.least_squares as the oracle: started from groklab's fit it finds no lower cost, and
    started from random points (bounded, in the natural parameters) it does not beat it either."""
    from scipy.optimize import least_squares

    truth = PatternModel((Pattern(0.6, 10 / 100, 100, 1.0), Pattern(0.9, 5 / 3000, 3000, 0.0)))
    gen = torch.Generator().manual_seed(1)
    train = truth.train_acc(STEPS) + 0.01 * torch.randn(len(STEPS), generator=gen, dtype=torch.float64)
    test = truth.test_acc(STEPS) + 0.01 * torch.randn(len(STEPS), generator=gen, dtype=torch.float64)
    fit = fit_patterns(STEPS, train.tolist(), test.tolist(), 2, preferred=None)

    def residuals(x):
        model = PatternModel(tuple(Pattern(*x[4 * i : 4 * i + 4]) for i in range(2)))
        return torch.cat([model.train_acc(STEPS) - train, model.test_acc(STEPS) - test]).numpy()

    def cost(x):
        return float((residuals(x) ** 2).sum())

    x_fit = [v for p in fit.patterns for v in (p.gamma, p.alpha, p.b, p.g)]
    lower, upper = [0, 1e-9, 1e-3, 0] * 2, [1, 10, 1e6, 1] * 2
    clipped = [min(max(v, lo), hi) for v, lo, hi in zip(x_fit, lower, upper, strict=True)]
    ours = cost(x_fit)
    assert least_squares(residuals, clipped, bounds=(lower, upper), x_scale="jac").cost * 2 >= ours * (1 - 1e-3)
    rng = torch.Generator().manual_seed(2)
    for _ in range(8):
        u = torch.rand(8, generator=rng, dtype=torch.float64).tolist()
        start = [u[0], 10 ** (-4 + 3 * u[1]), 10 ** (1 + 3.5 * u[2]), u[3], u[4], 10 ** (-4 + 3 * u[5]), 10 ** (1 + 3.5 * u[6]), u[7]]
        assert least_squares(residuals, start, bounds=(lower, upper), x_scale="jac").cost * 2 >= ours * (1 - 1e-3)
