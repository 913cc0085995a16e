"""Grokking events from accuracy curves: when the model fits, when it generalizes, and the delay."""

from __future__ import annotations

from collections.abc import Sequence

Event = tuple[int | None, float | None]  # (step, value)


def first_crossing(steps: Sequence[int], values: Sequence[float], threshold: float) -> int | None:
    """The first step whose value is >= threshold, or None if it never gets there."""
    for s, v in zip(steps, values, strict=True):
        if v >= threshold:
            return s
    return None


def grokking_events(
    train_acc: tuple[Sequence[int], Sequence[float]],
    test_acc: tuple[Sequence[int], Sequence[float]],
    fit_threshold: float = 0.99,
    grok_threshold: float = 0.99,
) -> dict[str, Event]:
    """t_fit (train acc >= fit_threshold), t_grok (test acc >= grok_threshold), delay = t_grok − t_fit,
    and the test accuracy at t_fit (a grokking run sits near chance there)."""
    t_fit = first_crossing(*train_acc, fit_threshold)
    t_grok = first_crossing(*test_acc, grok_threshold)
    events: dict[str, Event] = {"t_fit": (t_fit, fit_threshold), "t_grok": (t_grok, grok_threshold)}
    events["delay"] = (t_grok - t_fit, None) if t_fit is not None and t_grok is not None else (None, None)
    if t_fit is not None:
        steps, values = test_acc
        at = dict(zip(steps, values, strict=True)).get(t_fit)
        events["test_acc_at_fit"] = (t_fit, at)
    return events
