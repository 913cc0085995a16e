"""A sweep over model size read per width: every run of one embedding dimension, as curves (Davies et al.'s
model-wise figures and claims read it)."""

from __future__ import annotations

from dataclasses import dataclass, field

from groklab.analysis.aggregate import aggregate_curves
from groklab.store import Store


@dataclass
class WidthCurves:
    """Every run of one embedding dimension, as curves on the steps they share."""

    dim: int
    run_ids: list[str] = field(default_factory=list)
    curves: dict[str, list[tuple[list[int], list[float]]]] = field(default_factory=dict)

    def mean(self, name: str) -> tuple[list[int], list[float]]:
        """The seeds' mean on the evaluation steps every seed has."""
        steps, stats = aggregate_curves(self.curves.get(name, []))
        return steps, [mean for mean, _, _ in stats]

    def finals(self, name: str) -> list[float]:
        """Each seed's last value."""
        return [v[-1] for _, v in self.curves.get(name, []) if v]


def by_width(store: Store, run_ids_by_dim: dict[int, list[str]], names: tuple[str, ...]) -> list[WidthCurves]:
    """Per embedding dimension, ascending, the curves `names` of its runs."""
    out = []
    for dim in sorted(run_ids_by_dim):
        w = WidthCurves(dim, list(run_ids_by_dim[dim]))
        for rid in w.run_ids:
            m = store.metrics(rid)
            for name in names:
                if name in m:
                    w.curves.setdefault(name, []).append(m[name])
        out.append(w)
    return out
