"""Generalization stages and rank moves on synthetic curves whose answers are known."""

from __future__ import annotations

import itertools
import math
import random

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from groklab.analysis.stages import (
    DoubleDescent,
    Surge,
    double_descent,
    layer_metrics,
    onset_of_fall,
    onset_of_rise,
    rank_lag,
    stage_events,
    surges,
)


def schedule(dense_every: int = 10, dense_until: int = 1000, per_decade: int = 50, last: int = 1_000_000) -> list[int]:
    """The trainer's kind of evaluation steps: every `dense_every` up to `dense_until`, then log-spaced."""
    steps = list(range(0, dense_until, dense_every))
    k = 0
    while (t := round(dense_until * 10 ** (k / per_decade))) <= last:
        if t > steps[-1]:
            steps.append(t)
        k += 1
    return steps


def sigmoid(t: float, mid: float, width: float) -> float:
    """A logistic step in log10(step) centred on `mid`, `width` decades wide (scale)."""
    z = (math.log10(max(t, 1)) - math.log10(mid)) / width
    return 0.5 * (1 + math.tanh(z / 2))


STEPS = schedule()


def one_stage(t: float) -> float:
    return 0.1 + 0.85 * sigmoid(t, 20_000, 0.1)


def two_stage(t: float) -> float:
    return 0.1 + 0.5 * sigmoid(t, 3_000, 0.05) + 0.35 * sigmoid(t, 200_000, 0.08)


# ----- surges ------------------------------------------------------------------------------------


def test_one_sigmoid_is_one_surge_starting_left_of_its_midpoint():
    (s,) = surges(STEPS, [one_stage(t) for t in STEPS])
    assert isinstance(s, Surge)
    assert 20_000 / 10**0.4 < s.start < 20_000 < s.end < 20_000 * 10**0.4
    assert s.level == pytest.approx(0.95, abs=0.01) and s.rise == pytest.approx(0.85, abs=0.02) and s.low == pytest.approx(0.1, abs=0.01)


def test_two_sigmoids_separated_by_a_plateau_are_two_surges_in_order():
    first, second = surges(STEPS, [two_stage(t) for t in STEPS])
    assert first.start < 3_000 < first.end < second.start < 200_000 < second.end
    assert first.level == pytest.approx(0.6, abs=0.01) and first.rise == pytest.approx(0.5, abs=0.02)
    assert second.level == pytest.approx(0.95, abs=0.01) and second.rise == pytest.approx(0.35, abs=0.02)


def test_the_second_stage_is_lost_when_its_rise_is_below_the_threshold():
    values = [two_stage(t) for t in STEPS]
    assert len(surges(STEPS, values, rise=0.3, window=25)) == 2
    assert len(surges(STEPS, values, rise=0.4, window=25)) == 1  # the 0.35 stage does not count
    assert len(surges(STEPS, values, rise=0.3, window=10)) == 1  # nor is it steep enough to gain 0.3 in 10 evaluations


def test_flat_and_noisy_flat_curves_have_no_surge():
    rng = random.Random(0)
    assert surges(STEPS, [0.1] * len(STEPS)) == []
    noisy = [0.5 + rng.uniform(-0.045, 0.045) for _ in STEPS]
    assert surges(STEPS, noisy) == []
    stepped = [v + (0.15 if i >= len(noisy) // 2 else 0.0) for i, v in enumerate(noisy)]
    (s,) = surges(STEPS, stepped)  # the same noise around one jump of 0.15: the jump is found
    half = len(noisy) // 2  # start and end are fuzzy by the noise, but within a window of the jump
    assert STEPS[half - 10] <= s.start < STEPS[half] <= s.end <= STEPS[half + 10]


@settings(max_examples=60, deadline=None)
@given(
    base=st.floats(0, 0.9),
    noise=st.lists(st.floats(0, 0.0999), min_size=1, max_size=200),
    window=st.integers(1, 20),
)
def test_any_swing_below_rise_is_not_a_surge(base, noise, window):
    assert surges(list(range(len(noise))), [base + x for x in noise], rise=0.1, window=window) == []


def test_a_one_evaluation_spike_or_dip_is_not_a_surge():
    values = [0.1] * 40 + [0.9] + [0.1] * 40
    assert surges(range(81), values) == []
    values = [0.1] * 20 + [0.9] * 30 + [0.5] + [0.9] * 30  # one bad evaluation after the stage
    assert [(s.start, s.end) for s in surges(range(81), values)] == [(19, 20)]


def test_a_slow_drift_is_not_a_surge_until_it_gains_rise_within_the_window():
    drift = [0.1 + 0.004 * i for i in range(200)]  # 0.04 per 10 evaluations, 0.8 in all
    assert surges(range(200), drift, rise=0.1, window=10) == []
    assert len(surges(range(200), drift, rise=0.1, window=30)) == 1  # 0.12 per 30 evaluations
    assert len(surges(range(70), [0.1 + 0.012 * i for i in range(70)], rise=0.1, window=10)) == 1


def test_a_dip_and_recovery_is_not_a_new_stage():
    values = [0.1] * 20 + [0.9] * 30 + [0.6] * 20 + [0.92] * 30
    (s,) = surges(range(100), values)
    assert (s.start, s.end, s.level) == (19, 20, 0.9)


def test_a_collapse_then_a_higher_level_is_a_new_stage():
    values = [0.1] * 20 + [0.5] * 30 + [0.2] * 20 + [0.95] * 30
    assert [(s.start, s.level) for s in surges(range(100), values)] == [(19, 0.5), (69, 0.95)]


def test_non_finite_values_are_dropped():
    values = [one_stage(t) for t in STEPS]
    holed = list(values)
    holed[10] = holed[200] = math.nan
    holed[150] = math.inf
    assert surges(STEPS, holed) == surges(
        [t for i, t in enumerate(STEPS) if i not in (10, 150, 200)], [v for v in holed if math.isfinite(v)]
    )
    assert len(surges(STEPS, holed)) == 1
    assert surges([], []) == []


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError):
        surges([0, 1], [0.0, 1.0], rise=0)
    with pytest.raises(ValueError):
        surges([0, 1], [0.0, 1.0], window=0)


@settings(max_examples=150, deadline=None)
@given(
    per_decade=st.integers(5, 120),
    dense_every=st.sampled_from([1, 5, 10, 50]),
    scale=st.floats(0.05, 4.0),  # the sigmoid's width in evaluations, roughly
    position=st.floats(0.0, 1.0),
    height=st.floats(0.2, 0.9),
    base=st.floats(0.0, 1.0),
    window=st.integers(2, 20),
)
def test_one_clean_sigmoid_of_twice_the_rise_is_always_exactly_one_surge(per_decade, dense_every, scale, position, height, base, window):
    steps = schedule(dense_every, 100 * dense_every, per_decade, last=10**7)
    width = scale / per_decade  # decades
    lo_mid, hi_mid = math.log10(steps[1]) + 5 * width, math.log10(steps[-1]) - 5 * width
    assume(lo_mid < hi_mid)
    mid = 10 ** (lo_mid + position * (hi_mid - lo_mid))
    base *= 1 - height
    values = [base + height * sigmoid(t, mid, width) for t in steps]
    # Steep enough in evaluations: the middle half of the jump (height/2 >= rise) lies within one window.
    quarter, three_quarters = mid * 10 ** (-math.log(3) * width), mid * 10 ** (math.log(3) * width)
    first = max(i for i, t in enumerate(steps) if t <= quarter)
    last = min(i for i, t in enumerate(steps) if t >= three_quarters)
    assume(last - first <= window)
    found = surges(steps, values, rise=0.1, window=window)
    assert len(found) == 1
    (s,) = found
    assert s.start < mid < s.end
    assert s.rise >= 0.5 * height and s.level >= base + 0.75 * height


@settings(max_examples=100, deadline=None)
@given(
    per_decade=st.integers(5, 120),
    dense_every=st.sampled_from([1, 5, 10, 50]),
    scale=st.floats(0.05, 60.0),
    position=st.floats(0.0, 1.0),
    height=st.floats(0.2, 0.9),
    window=st.integers(1, 20),
)
def test_one_sigmoid_of_any_steepness_is_never_split(per_decade, dense_every, scale, position, height, window):
    steps = schedule(dense_every, 100 * dense_every, per_decade, last=10**7)
    width = scale / per_decade
    lo_mid, hi_mid = math.log10(steps[1]) + 5 * width, math.log10(steps[-1]) - 5 * width
    assume(lo_mid < hi_mid)
    mid = 10 ** (lo_mid + position * (hi_mid - lo_mid))
    assert len(surges(steps, [height * sigmoid(t, mid, width) for t in steps], rise=0.1, window=window)) <= 1


@pytest.mark.parametrize(
    ("per_decade", "dense_every", "scale", "mid", "height", "window"),
    [(32, 50, 3.99, 3742, 0.53, 16), (31, 10, 7.48, 496, 0.87, 11)],
)
def test_a_sigmoid_whose_sampling_thins_out_midway_is_one_surge(per_decade, dense_every, scale, mid, height, window):
    # In evaluations these rise fast, then slowly (dense linear sampling), then fast again (log-spaced).
    steps = schedule(dense_every, 100 * dense_every, per_decade, last=10**7)
    (s,) = surges(steps, [height * sigmoid(t, mid, scale / per_decade) for t in steps], rise=0.1, window=window)
    assert s.start < mid < s.end and s.level > 0.9 * height


def test_two_stages_survive_plateau_noise():
    rng = random.Random(1)
    for _ in range(20):
        noisy = [two_stage(t) + rng.uniform(-0.03, 0.03) for t in STEPS]
        first, second = surges(STEPS, noisy)
        assert first.start < 3_000 < first.end < second.start < 200_000 < second.end


# ----- double descent ----------------------------------------------------------------------------


def piecewise(points: list[tuple[int, float]]) -> list[float]:
    """Linear interpolation through (index, value) knots, one value per index."""
    out = []
    for (i0, v0), (i1, v1) in itertools.pairwise(points):
        out += [v0 + (v1 - v0) * (i - i0) / (i1 - i0) for i in range(i0, i1)]
    return [*out, points[-1][1]]


def test_fall_rise_fall_is_found_at_its_turning_points():
    values = piecewise([(0, 100), (30, 40), (60, 80), (100, 10), (130, 10)])
    dd = double_descent(STEPS[:131], values)
    assert dd == DoubleDescent(STEPS[30], STEPS[60], STEPS[100], 40.0, 80.0, 10.0)


def test_double_descent_of_smooth_rank_curves_peaks_between_the_stages():
    rank = [100 - 60 * sigmoid(t, 3_000, 0.05) + 40 * sigmoid(t, 30_000, 0.05) - 70 * sigmoid(t, 200_000, 0.08) for t in STEPS]
    dd = double_descent(STEPS, rank)
    assert dd is not None
    assert 3_000 < dd.first_min < 30_000 < dd.peak < 200_000 < dd.second_min
    assert dd.peak_value == pytest.approx(80, abs=0.5) and dd.second_min_value == pytest.approx(10, abs=0.5)


def test_monotone_falls_and_small_bumps_are_not_double_descent():
    assert double_descent(STEPS[:101], piecewise([(0, 100), (100, 10)])) is None
    assert double_descent(STEPS[:131], piecewise([(0, 100), (30, 10), (130, 10)])) is None
    assert double_descent(STEPS[:91], piecewise([(0, 100), (30, 50), (60, 55), (90, 10)])) is None  # bump of 5 < 9
    assert double_descent(STEPS[:91], piecewise([(0, 100), (30, 50), (60, 55), (90, 10)]), prominence=0.05) is not None
    assert double_descent(STEPS[:10], [5.0] * 10) is None


@settings(max_examples=80, deadline=None)
@given(values=st.lists(st.floats(0, 1000), min_size=0, max_size=100), prominence=st.floats(0.01, 1.0))
def test_a_non_increasing_curve_is_never_double_descent(values, prominence):
    values.sort(reverse=True)
    assert double_descent(range(len(values)), values, prominence) is None


@settings(max_examples=80, deadline=None)
@given(
    legs=st.lists(st.integers(1, 30), min_size=4, max_size=4),
    top=st.floats(50, 100),
    fall1=st.floats(0.3, 0.6),
    rise_=st.floats(0.2, 0.5),
    fall2=st.floats(0.25, 1.0),
)
def test_double_descent_finds_the_turning_points_of_any_clear_zigzag(legs, top, fall1, rise_, fall2):
    # top -> m1 -> peak -> m2 -> flat, every move well above 10% of the range (top - m2 <= top)
    m1 = top * (1 - fall1)
    peak = m1 + top * rise_
    m2 = peak - fall2 * peak
    knots, i = [], 0
    for leg, v in zip([0, *legs[:3]], [top, m1, peak, m2], strict=True):
        i += leg
        knots.append((i, v))
    knots.append((i + legs[3], m2))
    values = piecewise(knots)
    assume(min(top - m1, peak - m1, peak - m2) > 0.1 * (max(values) - min(values)))
    dd = double_descent(range(len(values)), values)
    assert dd is not None and (dd.first_min, dd.peak, dd.second_min) == (knots[1][0], knots[2][0], knots[3][0])


# ----- onsets and lag ----------------------------------------------------------------------------


def linear_sigmoid(t: float, mid: float, width: float = 10.0) -> float:
    return 0.5 * (1 + math.tanh((t - mid) / width / 2))


def test_onsets_are_where_a_tenth_of_the_range_is_covered():
    steps = list(range(0, 1000, 2))
    rank = [100 - 90 * linear_sigmoid(t, 300) for t in steps]
    acc = [0.1 + 0.85 * linear_sigmoid(t, 300) for t in steps]
    expected = next(t for t in steps if linear_sigmoid(t, 300) >= 0.1 - 1e-9)
    assert onset_of_fall(steps, rank) == expected == onset_of_rise(steps, acc)
    assert onset_of_rise(steps, rank) is None and onset_of_fall(steps, acc) is None
    assert onset_of_fall(steps, [3.0] * len(steps)) is None
    acc = [0.1 + 0.85 * linear_sigmoid(t, 301) for t in steps]
    assert onset_of_rise(steps, acc, fraction=0.5) == 302  # the first step past the midpoint


@settings(max_examples=60, deadline=None)
@given(lag=st.integers(-100, 100).map(lambda k: 2 * k), mid=st.integers(400, 800))
def test_rank_lag_recovers_a_known_shift(lag, mid):
    steps = list(range(0, 1400, 2))  # both sigmoids start and end flat
    rank = [200 - 150 * linear_sigmoid(t, mid) for t in steps]
    acc = [0.1 + 0.8 * linear_sigmoid(t, mid + lag) for t in steps]
    assert rank_lag((steps, rank), (steps, acc)) == lag


def test_rank_lag_is_none_when_a_curve_never_moves():
    steps = list(range(100))
    assert rank_lag((steps, [10.0] * 100), (steps, [0.1 + 0.008 * t for t in steps])) is None
    assert rank_lag((steps, [100.0 - t for t in steps]), (steps, [0.5] * 100)) is None


# ----- events ------------------------------------------------------------------------------------


def test_layer_metrics_order_and_names():
    names = ["rank/L10", "rank/L2", "erank/L1", "rank/L1", "rank/Lx", "probe_acc/L3", "rank"]
    assert layer_metrics(names, "rank") == [(1, "rank/L1"), (2, "rank/L2"), (10, "rank/L10")]
    assert layer_metrics(names, "probe_acc") == [(3, "probe_acc/L3")]


def test_stage_events_keys_and_values():
    acc = [two_stage(t) for t in STEPS]
    dd_rank = [100 - 60 * sigmoid(t, 3_000, 0.05) + 40 * sigmoid(t, 30_000, 0.05) - 70 * sigmoid(t, 200_000, 0.08) for t in STEPS]
    falling = [10 - 8 * sigmoid(t, 2_000, 0.05) for t in STEPS]
    metrics = {
        "test_acc": (STEPS, acc),
        "train_acc": (STEPS, [1.0] * len(STEPS)),
        "rank/L1": (STEPS, dd_rank),
        "rank/L2": (STEPS, falling),
        "erank/L1": (STEPS, falling),
    }
    events = stage_events(metrics)
    assert list(events) == ["n_stages", "stage1", "stage2", "rank_dd/L1", "rank_lag/L1", "rank_dd/L2", "rank_lag/L2"]
    first, second = surges(STEPS, acc)
    assert events["n_stages"] == (None, 2)
    assert events["stage1"] == (first.start, first.level) and events["stage2"] == (second.start, second.level)
    dd = double_descent(STEPS, dd_rank)
    assert dd is not None and events["rank_dd/L1"] == (dd.peak, None)
    assert events["rank_dd/L2"] == (None, None)
    assert events["rank_lag/L1"] == (rank_lag((STEPS, dd_rank), (STEPS, acc)), None)
    lag2 = events["rank_lag/L2"][0]
    assert lag2 is not None and lag2 > 0  # L2 falls around step 2000, accuracy rises around 3000
    assert stage_events(metrics, rise=0.3)["n_stages"] == (None, 1)


def test_stage_events_without_curves():
    assert stage_events({"train_acc": ([0, 1], [0.1, 1.0]), "rank/L1": ([0, 1], [5.0, 1.0])}) == {}
    flat = stage_events({"test_acc": ([0, 1, 2], [0.1, 0.1, 0.1])})
    assert flat == {"n_stages": (None, 0)}
