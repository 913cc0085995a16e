"""The grokking events of a stored run, computed from its curves."""

from __future__ import annotations

from groklab.analysis.double_descent import loss_dd_events
from groklab.analysis.events import grokking_events
from groklab.analysis.stages import stage_events
from groklab.config.loading import from_dict
from groklab.schema import ExperimentConfig
from groklab.store.protocol import RunStore


def events_of(store: RunStore, run_id: str, cfg: ExperimentConfig) -> dict[str, tuple[int | None, float | None]]:
    """t_fit, t_grok and the delay; the generalization stages (test-accuracy surges); per layer, rank double
    descent and the lag between the rank's fall and the test-accuracy rise; the test loss's double descent
    (dd_*), if it has one."""
    m = store.metrics(run_id)
    empty: tuple[list[int], list[float]] = ([], [])
    e = cfg.events
    events = grokking_events(m.get("train_acc", empty), m.get("test_acc", empty), e.fit_threshold, e.grok_threshold)
    curves = {k: v for k, v in m.items() if k == "test_acc" or k.startswith("rank/")}
    dd = loss_dd_events(m.get("test_loss", empty), e.loss_peak_prominence, peak_before=events["t_grok"][0], train=m.get("train_loss"))
    return {**events, **stage_events(curves, e.surge_rise, e.surge_window, e.rank_prominence), **dd}


def run_events(store: RunStore, run_id: str) -> dict[str, tuple[int | None, float | None]]:
    """The events stored with a run, or, for a run still training (none stored yet), computed from its curves."""
    return store.events(run_id) or events_of(store, run_id, from_dict(store.get(run_id).config))
