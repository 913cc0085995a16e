"""How a training loop reports progress: the progress bars and the tracker sinks (TensorBoard, W&B) are
Reporters, and `Fanout` hands one loop's reports to several of them."""

from __future__ import annotations

from typing import Protocol


class Reporter(Protocol):
    """Receives progress; the CLI's progress bar and the tracker sinks implement it."""

    def start(self, run_ids: list[str], total: int, step: int) -> None:
        """The runs trained together (one for a lone run), the schedule's steps, and the step they start at."""

    def step(self, step: int) -> None: ...
    def evaluated(self, step: int, metrics: dict[str, dict[str, float]]) -> None:
        """The metrics logged at `step`, run id -> metrics, for each member still training (one for a lone run)."""

    def close(self) -> None: ...


class SilentReporter:
    def start(self, run_ids: list[str], total: int, step: int) -> None: ...
    def step(self, step: int) -> None: ...
    def evaluated(self, step: int, metrics: dict[str, dict[str, float]]) -> None: ...
    def close(self) -> None: ...


class Fanout:
    """Several reporters as one, called in order; every one is closed even if another's close fails."""

    def __init__(self, reporters: list[Reporter]) -> None:
        self.reporters = reporters

    def start(self, run_ids: list[str], total: int, step: int) -> None:
        for r in self.reporters:
            r.start(run_ids, total, step)

    def step(self, step: int) -> None:
        for r in self.reporters:
            r.step(step)

    def evaluated(self, step: int, metrics: dict[str, dict[str, float]]) -> None:
        for r in self.reporters:
            r.evaluated(step, metrics)

    def close(self) -> None:
        errors = []
        for r in self.reporters:
            try:
                r.close()
            except Exception as exc:  # close the rest, then report the first failure
                errors.append(exc)
        if errors:
            raise errors[0]
