"""The test-loss double-descent detector on synthetic curves whose answers are known, and its events."""

from __future__ import annotations

import itertools
import math

import matplotlib.pyplot as plt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from groklab.analysis.double_descent import EVENT_NAMES, LOSS_FLOOR, log_loss, loss_dd_events, loss_double_descent
from groklab.analysis.run_events import events_of
from groklab.analysis.stages import DoubleDescent
from groklab.cli.main import main
from groklab.config import resolve_config
from groklab.config.loading import to_dict
from groklab.errors import ConfigError
from groklab.plots.run_figure import _mark_double_descent, plot_run
from groklab.store import Store

STEPS = list(range(0, 501, 2))  # evaluations every 2 steps


def cosine(t: float, t0: float, t1: float, v0: float, v1: float) -> float:
    """A smooth monotone move from v0 at t0 to v1 at t1 (half a cosine)."""
    u = (t - t0) / (t1 - t0)
    return v0 + (v1 - v0) * (1 - math.cos(math.pi * u)) / 2


def piecewise(knots: list[tuple[float, float]]):
    """log10 of the loss through the (step, log10 loss) knots, by half-cosines; flat after the last knot."""

    def f(t: float) -> float:
        for (t0, v0), (t1, v1) in itertools.pairwise(knots):
            if t <= t1:
                return cosine(t, t0, t1, v0, v1)
        return knots[-1][1]

    return f


# descent 0.8 -> 0.6 (to step 40), peak 1.2 at step 150, second descent to -2 at step 350, flat after
CLEAN = piecewise([(0, 0.8), (40, 0.6), (150, 1.2), (350, -2.0)])


def curve(log_f, steps=STEPS) -> tuple[list[int], list[float]]:
    return list(steps), [10 ** log_f(t) for t in steps]


def test_clean_double_descent_is_found_at_its_turning_points():
    dd = loss_double_descent(*curve(CLEAN), prominence=0.1)
    assert dd is not None
    # the median of 3 may move a sharp extreme by one evaluation (2 steps here), never more
    assert abs(dd.first_min - 40) <= 2 and abs(dd.peak - 150) <= 2 and dd.second_min == 350
    steps, losses = curve(CLEAN)
    at = dict(zip(steps, losses, strict=True))
    for step, value in ((dd.first_min, dd.first_min_value), (dd.peak, dd.peak_value), (dd.second_min, dd.second_min_value)):
        near = sorted(at[t] for t in (step - 2, step, step + 2) if t in at)
        assert value == pytest.approx(near[1] if len(near) == 3 else at[step])  # the median of 3 around it
    assert dd.second_min_value == pytest.approx(0.01)


def test_events_are_named_and_carry_the_losses():
    events = loss_dd_events(curve(CLEAN), prominence=0.1)
    assert tuple(events) == EVENT_NAMES
    dd = loss_double_descent(*curve(CLEAN), prominence=0.1)
    assert events["dd_peak"] == (dd.peak, dd.peak_value)
    assert events["dd_first_min"] == (dd.first_min, dd.first_min_value)
    assert events["dd_second_min"] == (dd.second_min, dd.second_min_value)


@pytest.mark.parametrize(
    "knots",
    [
        [(0, 0.7), (400, -3.0)],  # a monotone descent
        [(0, 0.7), (100, 0.0), (200, 0.0), (400, -3.0)],  # descent, plateau, descent: no peak
        [(0, 0.7), (100, 1.5), (400, -2.0)],  # rises from its first evaluation, then falls: no first descent
        [(0, 0.7), (50, 0.5), (300, 1.5)],  # descent then a rise with no fall after it
        [(0, 0.7), (500, 0.7)],  # flat
    ],
)
def test_curves_without_a_double_descent_give_none(knots):
    c = curve(piecewise(knots))
    assert loss_double_descent(*c, prominence=0.1) is None
    assert loss_dd_events(c, prominence=0.1) == {}


def test_prominence_is_measured_on_both_sides_of_the_peak_in_decades():
    # a bump of 0.05 decades (x1.12) between two descents
    small = curve(piecewise([(0, 0.7), (50, 0.5), (100, 0.55), (150, 0.55 - 0.05), (400, -2.0)]))
    assert loss_double_descent(*small, prominence=0.1) is None
    dd = loss_double_descent(*small, prominence=0.04)
    assert dd is not None and abs(dd.peak - 100) <= 2
    # rises 0.5 decades above its minimum but falls only 0.05 after it before rising again: not a peak
    one_sided = curve(piecewise([(0, 0.7), (50, 0.5), (150, 1.0), (200, 0.95), (300, 1.6)]))
    assert loss_double_descent(*one_sided, prominence=0.1) is None
    # the same shape scaled in the loss by 1e-3 is the same double descent (a log scale)
    steps, losses = curve(CLEAN)
    scaled = loss_double_descent(steps, [v * 1e-3 for v in losses], prominence=0.1)
    assert scaled is not None and (scaled.first_min, scaled.peak, scaled.second_min) == (
        (d := loss_double_descent(steps, losses, prominence=0.1)).first_min,
        d.peak,
        d.second_min,
    )


def test_a_slight_first_descent_is_enough():
    """Davies et al.'s first descent is slight: any fall below the first evaluation counts."""
    dd = loss_double_descent(*curve(piecewise([(0, 0.66), (30, 0.655), (150, 1.3), (350, -2.0)])), prominence=0.1)
    assert dd is not None and abs(dd.first_min - 30) <= 2 and abs(dd.peak - 150) <= 2


@pytest.mark.parametrize("small_first", [True, False])
def test_of_two_peaks_the_most_prominent_wins(small_first):
    """Two qualifying peaks: the most prominent is returned, with the minima on either side of it."""
    small, big = (0.3, 1.0) if small_first else (1.0, 0.3)
    f = piecewise([(0, 0.8), (40, 0.5), (100, 0.5 + small), (160, 0.5), (260, 0.5 + big), (400, -2.0)])
    dd = loss_double_descent(*curve(f), prominence=0.1)
    assert dd is not None
    if small_first:  # the big peak at 260, between the trough at 160 and the final descent
        assert (abs(dd.first_min - 160) <= 2, abs(dd.peak - 260) <= 2, dd.second_min) == (True, True, 400)
    else:  # the big peak at 100, between the first descent's trough at 40 and the trough at 160
        assert (abs(dd.first_min - 40) <= 2, abs(dd.peak - 100) <= 2, abs(dd.second_min - 160) <= 2) == (True, True, True)


def test_equal_peaks_give_the_earliest():
    # plateaus of 3 evaluations, which the median of 3 keeps: both peaks rise and fall by log10(8 / 2) at least
    losses = [v for v in (4.0, 2.0, 8.0, 2.0, 8.0, 0.01) for _ in range(3)]
    dd = loss_double_descent(list(range(0, 180, 10)), losses, prominence=0.1)
    assert dd == DoubleDescent(30, 60, 90, 2.0, 8.0, 2.0)


def test_irregular_steps_nan_and_tiny_losses():
    # log-spaced evaluation steps, as the trainer takes them after its dense start
    steps = sorted({round(10 ** (k / 40)) for k in range(0, 161)})  # 1 .. 10_000
    f = piecewise([(1, 0.8), (30, 0.6), (1000, 1.2), (5000, -2.0)])
    losses = [10 ** f(t) for t in steps]
    losses[50] = float("nan")  # a diverged evaluation is dropped
    dd = loss_double_descent(steps, losses, prominence=0.1)
    assert dd is not None and dd.first_min <= 40 and 800 <= dd.peak <= 1200 and dd.second_min >= 4500
    # below the floor, float round-off (zeros and 1e-9 alternating) makes no decades-high peaks
    tail = curve(piecewise([(0, 0.7), (300, -6.0)]))
    noisy_tail = [0.0 if i % 2 and v < LOSS_FLOOR else v for i, v in enumerate(tail[1])]
    assert loss_double_descent(tail[0], noisy_tail, prominence=0.1) is None
    assert log_loss([0.0, 1.0])[0] == math.log10(LOSS_FLOOR)


def test_bad_arguments_raise():
    for prominence in (0.0, -0.1, math.inf, math.nan):
        with pytest.raises(ValueError, match="prominence"):
            loss_double_descent(*curve(CLEAN), prominence=prominence)
    with pytest.raises(ValueError, match="floor"):
        loss_double_descent(*curve(CLEAN), prominence=0.1, floor=0.0)
    assert loss_double_descent([0, 1], [1.0, 2.0]) is None and loss_double_descent([], []) is None


def _band(c: list[float], i: int) -> tuple[float, float]:
    """min and max of the clean log-curve over evaluation i and its neighbours (what the median of 3 sees)."""
    window = c[max(0, i - 1) : i + 2]
    return min(window), max(window)


PROMINENCE = 0.1
NOISE_BOUND = PROMINENCE / 5  # amplitude in decades; 2 x bound < prominence, so noise alone never makes a turn


@settings(max_examples=80, deadline=None)
@given(
    amplitude=st.floats(0.0, NOISE_BOUND),
    unit_noise=st.lists(st.floats(-1.0, 1.0), min_size=len(STEPS), max_size=len(STEPS)),
)
def test_noisy_double_descent_is_found_where_the_clean_one_is(amplitude, unit_noise):
    """Multiplicative noise on the loss (additive in log10, |noise| <= amplitude): still detected, and each
    turning point is where the clean curve is within 2 x amplitude of its extreme (the median of 3 and the
    noise can move it no further)."""
    clean = [CLEAN(t) for t in STEPS]
    noisy = [10 ** (c + amplitude * u) for c, u in zip(clean, unit_noise, strict=True)]
    dd = loss_double_descent(STEPS, noisy, prominence=PROMINENCE)
    assert dd is not None
    idx = {s: i for i, s in enumerate(STEPS)}
    i1, ip, i2 = idx[dd.first_min], idx[dd.peak], idx[dd.second_min]
    true_m1, true_p = clean.index(min(clean[: STEPS.index(150)])), clean.index(max(clean))
    tol = 2 * amplitude + 1e-12
    assert _band(clean, i1)[0] <= _band(clean, true_m1)[1] + tol  # as low as the true first minimum, up to noise
    assert _band(clean, ip)[1] >= _band(clean, true_p)[0] - tol  # as high as the true peak
    assert _band(clean, i2)[0] <= min(clean) + tol  # on the floor of the second descent
    assert 20 <= dd.first_min <= 60 and 130 <= dd.peak <= 170 and dd.second_min >= 330  # hence near 40, 150 and >= 350
    assert dd.peak_value == pytest.approx(sorted(noisy[ip - 1 : ip + 2])[1])  # the median of 3 at the peak


# ----- end to end: the stored run's events, the config field, `groklab show`, the figure --------------------------------


def _stored_run(tmp_path, log_f, overrides=(), test_acc=lambda t: 0.1):
    cfg = resolve_config(None, ["task.p=13", *overrides])
    store = Store(tmp_path / "runs")
    run_id = store.create_run(to_dict(cfg), "dd", "test", "0", "cpu")
    for t in STEPS:
        metrics = {"train_acc": min(1.0, t / 100), "test_acc": test_acc(t), "train_loss": 1.0, "test_loss": 10 ** log_f(t)}
        store.log_metrics(run_id, t, metrics)
    return store, run_id, cfg


# a grokked run's loss: down 4 decades by step 200, then a spike of 2 decades at step 300 (an lr instability), down again
SPIKE = piecewise([(0, 0.7), (200, -3.0), (300, -1.0), (400, -3.5)])


def test_a_loss_spike_after_grokking_is_not_a_double_descent():
    steps, losses = curve(SPIKE)
    assert abs(loss_double_descent(steps, losses).peak - 300) <= 2  # the shape alone is descent, peak, descent
    assert loss_double_descent(steps, losses, peak_before=250) is None  # but the network had generalized by then
    assert abs(loss_double_descent(steps, losses, peak_before=350).peak - 300) <= 2
    assert loss_dd_events((steps, losses), peak_before=250) == {}


def test_stored_events_count_only_peaks_before_t_grok(tmp_path):
    grokked = lambda t: 1.0 if t >= 180 else 0.1  # noqa: E731 - t_grok = 180, before the spike
    store, run_id, cfg = _stored_run(tmp_path, SPIKE, test_acc=grokked)
    events = events_of(store, run_id, cfg)
    assert events["t_grok"][0] == 180 and not set(EVENT_NAMES) & set(events)
    store.close()
    store, run_id, cfg = _stored_run(tmp_path / "b", SPIKE)  # never grokked: the same curve is a double descent
    assert abs(events_of(store, run_id, cfg)["dd_peak"][0] - 300) <= 2
    store.close()


def test_a_stored_runs_events_include_the_double_descent(tmp_path, capsys):
    store, run_id, cfg = _stored_run(tmp_path, CLEAN)
    events = events_of(store, run_id, cfg)
    assert set(EVENT_NAMES) <= set(events)
    assert abs(events["dd_peak"][0] - 150) <= 2 and events["dd_second_min"][0] == 350
    assert {"t_fit", "t_grok", "n_stages"} <= set(events)  # the other events are unchanged
    store.set_events(run_id, events)
    store.set_status(run_id, "finished", STEPS[-1])
    assert main(["show", run_id, "--runs-dir", str(store.root)]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.strip().startswith("dd_peak"))
    assert str(events["dd_peak"][0]) in line
    path = plot_run(store, run_id, tmp_path / "fig.png")
    assert path.stat().st_size > 1000
    store.close()


def test_no_double_descent_no_events_and_the_prominence_is_configurable(tmp_path):
    store, run_id, cfg = _stored_run(tmp_path, piecewise([(0, 0.7), (400, -3.0)]))
    assert not set(EVENT_NAMES) & set(events_of(store, run_id, cfg))
    store.close()
    store, run_id, cfg = _stored_run(tmp_path / "b", CLEAN, ["events.loss_peak_prominence=0.7"])  # the peak rises 0.6 decades
    assert cfg.events.loss_peak_prominence == 0.7
    assert not set(EVENT_NAMES) & set(events_of(store, run_id, cfg))
    store.close()


@pytest.mark.parametrize("value", ["0", "-0.5", "inf", "nan"])
def test_bad_loss_peak_prominence_names_the_field(value):
    with pytest.raises(ConfigError, match=r"^events\.loss_peak_prominence: must be (> 0|a finite number)"):
        resolve_config(None, [f"events.loss_peak_prominence={value}"])


def test_the_figure_marks_the_minima_and_the_peak():
    fig, ax = plt.subplots()
    dd = DoubleDescent(40, 150, 350, 4.0, 15.8, 0.01)
    _mark_double_descent(ax, {"dd_first_min": (40, 4.0), "dd_peak": (150, 15.8), "dd_second_min": (350, 0.01)})
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines["dd minima @ 40, 350"].get_xdata()) == [dd.first_min, dd.second_min]
    assert list(lines["dd peak @ 150"].get_ydata()) == [dd.peak_value]
    _mark_double_descent(ax, {})  # a run without one: nothing more drawn
    assert len(ax.get_lines()) == 2
    plt.close(fig)


# The default preset's run (`groklab run`, 2026-11-30), steps 1300..1600: the optimizer overshoots at 1430.
SPIKE_STEPS = list(range(1300, 1610, 10))
SPIKE_TEST = [2.188, 1.999, 1.819, 1.645, 1.487, 1.34, 1.208, 1.092, 0.9859, 0.8852, 0.7968, 0.7186, 0.7061, 1.339, 0.9121, 0.5945]
SPIKE_TEST += [0.4277, 0.3402, 0.305, 0.2817, 0.2606, 0.2367, 0.2131, 0.1901, 0.1696, 0.1511, 0.1344, 0.1194, 0.1061, 0.09424, 0.0837]
SPIKE_TRAIN = [2.43e-07, 2.34e-07, 2.25e-07, 2.17e-07, 2.12e-07, 2.06e-07, 1.98e-07, 1.93e-07, 1.86e-07, 1.78e-07, 1.68e-07]
SPIKE_TRAIN += [1.63e-07, 3.47e-06, 0.0471, 0.0068, 0.00304, 0.00285, 0.00369, 0.00551, 0.00721, 0.00786, 0.00756, 0.00689]
SPIKE_TRAIN += [0.00624, 0.00566, 0.00514, 0.00464, 0.00416, 0.00372, 0.00331, 0.00295]


def test_a_peak_the_train_loss_climbs_to_as_well_is_an_instability_not_a_double_descent():
    assert loss_double_descent(SPIKE_STEPS, SPIKE_TEST, prominence=0.1) is not None  # the test loss alone looks like one
    assert loss_double_descent(SPIKE_STEPS, SPIKE_TEST, prominence=0.1, train=(SPIKE_STEPS, SPIKE_TRAIN)) is None
    falling = [1e-3 * 0.9**i for i in range(len(SPIKE_STEPS))]  # a train loss that keeps falling: still a double descent
    assert loss_double_descent(SPIKE_STEPS, SPIKE_TEST, prominence=0.1, train=(SPIKE_STEPS, falling)) is not None
    assert loss_dd_events((SPIKE_STEPS, SPIKE_TEST), 0.1, train=(SPIKE_STEPS, SPIKE_TRAIN)) == {}
