"""A sweep's finished runs as the claims, the phase diagram and the figures read them: one query for all of them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from groklab.analysis.events import first_crossing
from groklab.store import COMPLETED, Store


@dataclass
class RunView:
    """One finished (or early-stopped) run: its point's grid values and resolved config, its metrics and events."""

    run_id: str
    seed: int
    m: dict[str, tuple[list[int], list[float]]]
    events: dict[str, tuple[int | None, float | None]]
    config: dict[str, Any] | None = None
    values: dict[str, Any] | None = None

    def curve(self, name: str) -> tuple[list[int], list[float]]:
        return self.m.get(name, ([], []))

    def event(self, name: str) -> int | None:
        return self.events.get(name, (None, None))[0]

    def at(self, name: str, step: int) -> float | None:
        """The metric's value at the last evaluation at or before `step`."""
        steps, values = self.curve(name)
        before = [v for s, v in zip(steps, values, strict=True) if s <= step]
        return before[-1] if before else None

    def final(self, name: str) -> float | None:
        values = self.curve(name)[1]
        return values[-1] if values else None

    def first(self, name: str, threshold: float) -> int | None:
        """The first evaluated step where the metric is >= threshold, None if it never gets there."""
        return first_crossing(*self.curve(name), threshold)

    def best(self, name: str) -> float | None:
        values = self.curve(name)[1]
        return max(values) if values else None

    def key(self, dotted: str) -> Any:
        """A config value by its dotted key, e.g. `task.p`."""
        node: Any = self.config or {}
        for part in dotted.split("."):
            node = node[part]
        return node


def finished_runs(store: Store, sweep_id: str) -> list[RunView]:
    """The sweep's finished (or early-stopped) runs, in point order."""
    sweep = store.get_sweep(sweep_id)
    views = []
    for point, run_id in sorted(store.sweep_runs(sweep_id).items()):
        if store.get(run_id).status in COMPLETED:
            p = sweep.points[point]
            views.append(RunView(run_id, p.config["run"]["seed"], store.metrics(run_id), store.events(run_id), p.config, p.values))
    return views
