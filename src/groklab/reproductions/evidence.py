"""What a judge reads: the finished runs of the sweeps its claim needs, by the labels the claim gave them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from groklab.reproductions.claim import Need, Setting
from groklab.store import Store
from groklab.sweeps.finished import RunView, finished_runs


@dataclass
class Evidence:
    """The sweeps trained for this invocation (label -> stored id), read once each, on demand."""

    store: Store
    setting: Setting
    needs: dict[str, Need]
    sweeps: dict[str, str]
    _runs: dict[str, list[RunView]] = field(default_factory=dict)
    _configs: dict[str, Any] = field(default_factory=dict)

    def has(self, label: str) -> bool:
        return label in self.sweeps

    def runs(self, label: str) -> list[RunView]:
        """The finished runs of the sweep labelled so; none where this invocation did not train it."""
        if label not in self.sweeps:
            return []
        if label not in self._runs:
            self._runs[label] = finished_runs(self.store, self.sweeps[label])
        return self._runs[label]

    def config(self, label: str) -> Any:
        """The sweep's config before its grid (its budget, events, preset values), as an ExperimentConfig."""
        if label not in self._configs:
            from groklab.config import resolve_config

            need = self.needs[label]
            self._configs[label] = resolve_config(need.preset, list(need.overrides))
        return self._configs[label]

    def budget(self, label: str) -> int:
        """The sweep's steps per run."""
        return int(self.config(label).schedule.steps)
