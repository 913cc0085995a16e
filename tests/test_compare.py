"""compare-measures: correlations, change points and leads on synthetic curves with known answers, and the command."""

from __future__ import annotations

import itertools
import json
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from groklab.analysis.compare import change_point, compare, on_step_grid, pearson, ranks, spearman, step_grid, tracking
from groklab.cli.main import main
from helpers import TINY

STEPS = list(range(0, 5001, 50))


def sigmoid_down(at: float, width: float = 80.0) -> list[float]:
    return [1.0 / (1 + math.exp((s - at) / width)) for s in STEPS]


def test_pearson_and_spearman_known_values():
    assert pearson([1, 2, 3, 4, 5], [2, 4, 6, 8, 10]) == pytest.approx(1.0)
    assert pearson([1, 2, 3, 4, 5], [5, 4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 3, 4, 5], [1, 4, 9, 16, 25]) == pytest.approx(1.0)  # monotone, not linear
    assert pearson([1, 2, 3, 4, 5], [1, 4, 9, 16, 25]) < 0.99
    assert pearson([1, 2, 3, 4, 5], [3, 3, 3, 3, 3]) is None  # a constant curve has no correlation
    assert pearson([1, 2, 3], [1, 2, 3]) is None  # too few points to mean anything
    assert ranks([10, 20, 20, 30]) == [1.0, 2.5, 2.5, 4.0]  # ties share their mean rank


@settings(max_examples=40, deadline=None)
@given(at=st.integers(8, 90), low=st.floats(-5, 5), jump=st.floats(0.5, 10))
def test_change_point_of_a_step_is_the_step(at, low, jump):
    steps = list(range(0, 1000, 10))
    values = [low + (jump if i >= at else 0.0) for i in range(len(steps))]
    assert change_point(steps, values) == steps[at]


def test_uniform_steps_interpolate_between_evaluations():
    grid, (v,) = on_step_grid([0, 10, 40], [0.0, 1.0, 4.0], n=5)
    assert grid == [0.0, 10.0, 20.0, 30.0, 40.0]
    assert v == pytest.approx([0.0, 1.0, 2.0, 3.0, 4.0])
    grid, (v,) = on_step_grid(STEPS, sigmoid_down(2500))  # already uniform: read where it was logged
    assert grid == [float(s) for s in STEPS] and v == pytest.approx(sigmoid_down(2500))


@settings(max_examples=60, deadline=None)
@given(
    gaps=st.lists(st.integers(1, 500), min_size=1, max_size=40),
    values=st.lists(st.floats(-100, 100), min_size=41, max_size=41),
    n=st.integers(2, 80),
)
def test_uniform_steps_keep_the_ends_and_the_range(gaps, values, n):
    steps = [0]
    for g in gaps:
        steps.append(steps[-1] + g)
    curve = values[: len(steps)]
    grid, (v,) = on_step_grid(steps, curve, n=n)
    assert len(grid) == len(v) == n and grid[0] == steps[0] and grid[-1] == steps[-1]
    assert v[0] == curve[0] and v[-1] == pytest.approx(curve[-1])
    assert all(min(curve) - 1e-9 <= x <= max(curve) + 1e-9 for x in v)


@settings(max_examples=60, deadline=None)
@given(first=st.integers(0, 1000), span=st.integers(1, 10**6), n=st.integers(3, 200))
def test_log_grid_is_even_in_log_steps(first, span, n):
    grid = step_grid(first, first + span, n, "log")
    assert len(grid) == n and grid[0] == first and grid[-1] == first + span
    assert all(a < b for a, b in itertools.pairwise(grid))
    gaps = [math.log1p(b) - math.log1p(a) for a, b in itertools.pairwise(grid)]
    assert max(gaps) == pytest.approx(min(gaps), rel=1e-6, abs=1e-9)


def test_log_spacing_weighs_each_decade_alike():
    # Evaluations log-spaced over 1..30,000: measure and target agree over the first three decades and
    # disagree over the last, most of the run in steps. Read evenly in steps, the disagreement dominates;
    # read evenly in log steps, it is one decade of four.
    steps = sorted({round(10 ** (k / 25)) for k in range(0, 112)})
    target = [math.log10(s) for s in steps]
    measure = [math.log10(s) if s < 3000 else 3.5 + math.sin(s / 700) for s in steps]
    _, lin = tracking(steps, measure, target)
    _, log = tracking(steps, measure, target, spacing="log")
    assert lin < 0.5 < 0.9 < log
    fit = compare({"test_loss": (steps, target), "m": (steps, measure)}, spacing="log")[0]
    assert fit.spearman == pytest.approx(log)
    with pytest.raises(ValueError, match="spacing"):
        step_grid(0, 10, 5, "cubic")


def test_a_dense_early_schedule_does_not_outweigh_the_run():
    # 200 evaluations in the first 2,000 steps (where measure and target disagree), then 100 over the
    # remaining 28,000 (where they agree): the raw evaluations are dominated by the early phase.
    steps = list(range(0, 2000, 10)) + list(range(2000, 30001, 280))
    target = [10 + 3 * math.sin(s / 150) if s < 2000 else 10 - s / 3000 for s in steps]
    measure = [10 - 3 * math.sin(s / 150) if s < 2000 else 10 - s / 3000 for s in steps]
    assert spearman(measure, target) < 0.3
    _, rho = tracking(steps, measure, target)
    assert rho > 0.95
    fits = compare({"test_loss": (steps, target), "m": (steps, measure)})
    assert fits[0].spearman == pytest.approx(rho) and fits[0].points == len(steps)


def test_a_measure_that_moves_earlier_leads_by_the_shift():
    rng = random.Random(0)
    metrics = {
        "test_loss": (STEPS, sigmoid_down(2520)),
        "early": (STEPS, sigmoid_down(2020)),
        "mirror": (STEPS, [1 - v for v in sigmoid_down(2520)]),
        "noise": (STEPS, [rng.random() for _ in STEPS]),
        "test_acc": (STEPS, [0.0] * len(STEPS)),  # an outcome: never compared
    }
    fits = {f.measure: f for f in compare(metrics)}
    assert set(fits) == {"early", "mirror", "noise"}
    assert abs(fits["early"].lead - 500) <= 100 and fits["early"].spearman > 0.9  # within two evaluations
    assert fits["mirror"].lead == 0 and fits["mirror"].spearman == pytest.approx(-1.0)
    assert abs(fits["noise"].spearman) < 0.3
    assert [f.measure for f in compare(metrics)][-1] == "noise"  # ordered by |spearman|


def test_start_leaves_out_the_early_transient():
    transient = [100.0 if s < 200 else v for s, v in zip(STEPS, sigmoid_down(3000), strict=True)]
    metrics = {"test_loss": (STEPS, transient), "m": (STEPS, sigmoid_down(2800))}
    assert compare(metrics)[0].lead < 0  # the whole run: the transient is the target's change point
    assert abs(compare(metrics, start=500)[0].lead - 200) <= 100


def test_compare_measures_command(capsys, tmp_path):
    runs = str(tmp_path)
    assert main(["run", *TINY, "schedule.steps=200", "--quiet", "--runs-dir", runs]) == 0
    run_id = capsys.readouterr().out.strip()
    assert main(["compare-measures", run_id, "--from", "0", "--json", "--runs-dir", runs]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {r["measure"] for r in data["measures"]} >= {"weight_norm", "med"}
    assert all(-1 <= r["spearman"][0] <= 1 for r in data["measures"] if r["spearman"])
    assert data["figures"] and (tmp_path / "runs" / run_id / "measures.png").exists() and data["spacing"] == "linear"
    assert main(["compare-measures", run_id, "--from", "0", "--spacing", "log", "--json", "--runs-dir", runs]) == 0
    logged = json.loads(capsys.readouterr().out)
    assert logged["spacing"] == "log" and {r["measure"] for r in logged["measures"]} == {r["measure"] for r in data["measures"]}
    assert main(["compare-measures", run_id, "--spacing", "cubic", "--runs-dir", runs]) == 2
    err = capsys.readouterr().err
    assert "--spacing" in err and "linear" in err and "log" in err and err.count("\n") == 1
    bad = ((["--measures", "weight_norm,fourier"], "--measures"), (["--target", "nope"], "--target"), (["--from", "x"], "--from"))
    for argv, field in bad:
        assert main(["compare-measures", run_id, *argv, "--runs-dir", runs]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"groklab: error: {field}") and err.count("\n") == 1
