"""Statistics across seeds against direct computations, and the sweep figures end to end."""

from __future__ import annotations

import json
import math
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from groklab.analysis.aggregate import aggregate_curves, aggregate_events, mean_ci, metric_range, t95
from groklab.cli.main import main
from helpers import TINY


@settings(max_examples=60, deadline=None)
@given(xs=st.lists(st.floats(-1e3, 1e3), min_size=2, max_size=40))
def test_mean_ci_is_the_t_interval(xs):
    m, lo, hi = mean_ci(xs)
    assert m == pytest.approx(statistics.fmean(xs), abs=1e-9)
    half = t95(len(xs) - 1) * statistics.stdev(xs) / math.sqrt(len(xs))
    assert hi - m == pytest.approx(half, abs=1e-6) and m - lo == pytest.approx(half, abs=1e-6)


# Two-sided 95% quantiles of Student's t from a printed table (NIST/SEMATECH e-Handbook, 1.3.6.7.2).
T_TABLE = {1: 12.706, 2: 4.303, 5: 2.571, 10: 2.228, 30: 2.042, 40: 2.021, 50: 2.009, 60: 2.000, 100: 1.984}


def test_t95_matches_a_printed_table_for_any_degrees_of_freedom():
    for dof, t in T_TABLE.items():
        assert t95(dof) == pytest.approx(t, abs=6e-4), dof
    assert t95(10**6) == pytest.approx(1.95996, abs=1e-5)  # the normal quantile in the limit
    assert all(t95(d) > t95(d + 1) for d in range(1, 200))


def test_mean_ci_known_values():
    # n=3: mean 2, s=1, t(2)=4.303 (a table's 3 decimals) -> half-width 4.303/sqrt(3)
    m, lo, hi = mean_ci([1.0, 2.0, 3.0])
    half = pytest.approx(4.303 / math.sqrt(3), rel=1e-4)
    assert (m, hi - m, m - lo) == (2.0, half, half)
    assert mean_ci([5.0]) == (5.0, 5.0, 5.0)
    assert mean_ci([float("nan"), 4.0, 6.0])[0] == 5.0
    assert all(math.isnan(v) for v in mean_ci([]))


@settings(max_examples=60, deadline=None)
@given(xs=st.lists(st.floats(0, 1), min_size=1, max_size=10))
def test_accuracy_ci_stays_in_0_1(xs):
    m, lo, hi = mean_ci(xs, metric_range("test_acc"))
    free = mean_ci(xs)
    assert 0.0 <= lo <= m <= hi <= 1.0
    assert (lo, hi) == (max(free[1], 0.0), min(free[2], 1.0))  # clipped, not recomputed


def test_metric_ranges_by_name():
    assert metric_range("train_acc") == metric_range("test_acc/zero_div") == (0.0, 1.0)
    assert metric_range("test_loss") == (0.0, math.inf)
    assert metric_range("weight_norm") is None
    # two seeds at 0.98 and 1.0: the t interval reaches 1.107; the accuracy's is cut at 1
    assert mean_ci([0.98, 1.0])[2] > 1.1 and mean_ci([0.98, 1.0], (0.0, 1.0))[2] == 1.0


def test_aggregate_curves_clip_to_the_range():
    _, stats = aggregate_curves([([0, 10], [0.0, 0.98]), ([0, 10], [0.1, 1.0])], (0.0, 1.0))
    assert stats[0][1] == 0.0 and stats[1][2] == 1.0


def test_aggregate_curves_on_common_steps():
    steps, stats = aggregate_curves([([0, 10, 20], [0.0, 0.5, 1.0]), ([0, 10, 20, 30], [0.2, 0.7, 1.0, 1.0])])
    assert steps == [0, 10, 20]
    assert [s[0] for s in stats] == pytest.approx([0.1, 0.6, 1.0])


def test_aggregate_events_counts_what_was_reached():
    evs = [
        {"t_fit": (10, 0.99), "t_grok": (100, 0.99), "delay": (90, None)},
        {"t_fit": (20, 0.99), "t_grok": (300, 0.99), "delay": (280, None)},
        {"t_fit": (30, 0.99), "t_grok": (None, 0.99), "delay": (None, None)},
    ]
    agg = aggregate_events(evs)
    assert agg["n"] == 3 and agg["grokked_fraction"] == pytest.approx(2 / 3)
    assert agg["t_fit"]["reached"] == 3 and agg["t_fit"]["mean_ci"][0] == 20
    assert agg["t_grok"]["reached"] == 2 and agg["t_grok"]["mean_ci"][0] == 200
    assert agg["delay"]["mean_ci"][0] == 185


def test_sweep_summary_and_figures(capsys, tmp_path):
    runs = str(tmp_path / "runs")
    assert (
        main(
            [
                "sweep",
                *TINY,
                "--grid",
                "optim.weight_decay=0.1,1",
                "--grid",
                "model.d_mlp=32,64",
                "--seeds",
                "2",
                "--quiet",
                "--runs-dir",
                runs,
            ]
        )
        == 0
    )
    sweep_id = capsys.readouterr().out.strip()
    assert main(["show", sweep_id, "--json", "--runs-dir", runs]) == 0
    info = json.loads(capsys.readouterr().out)
    assert len(info["summary"]) == 4 and all(len(row["runs"]) == 2 for row in info["summary"])
    row = info["summary"][0]
    finals = [
        p["test_acc"]
        for p in info["points"]
        if p["optim.weight_decay"] == row["values"]["optim.weight_decay"] and p["model.d_mlp"] == row["values"]["model.d_mlp"]
    ]
    assert row["final"]["test_acc"][0] == pytest.approx(statistics.fmean(finals))
    out = tmp_path / "sweep.svg"
    assert main(["plot", sweep_id, "--x", "optim.weight_decay", "-o", str(out), "--runs-dir", runs]) == 0
    assert out.stat().st_size > 5000
    code = main(["plot", sweep_id, "--runs-dir", runs])  # two swept keys: --x is needed
    assert code == 2 and "--x" in capsys.readouterr().err
    code = main(["plot", sweep_id, "--x", "optim.lr", "--runs-dir", runs])
    assert code == 2 and "not a swept key" in capsys.readouterr().err


@pytest.mark.parametrize(
    "xs,log",
    [
        ([1e-4, 1e-3, 1e-2, 1e-1, 1.0], True),  # log:1e-4:1:5
        ([0.1, 1.0], True),
        ([0.1, 0.3, 1.0, 3.0], True),
        ([1, 2, 3, 4, 5, 6, 7, 8], False),  # an integer range
        ([0.1, 0.2, 0.3], False),
        ([0.0, 0.1, 1.0], False),  # zero cannot go on a log axis
        ([0.5, 1.0], False),
    ],
)
def test_sweep_figure_puts_geometric_grids_on_a_log_axis(xs, log):
    from groklab.plots.sweep_figures import log_spaced

    assert log_spaced(xs) is log
