"""The live progress bar of `groklab run`: step, train/test accuracy, loss, ETA (tqdm on stderr)."""

from __future__ import annotations

import sys

from tqdm import tqdm


def accuracies(metrics: list[dict[str, float]]) -> str:
    """Train and test accuracy of one run; of an ensemble, their range over its members ("" if not logged)."""
    rows = [m for m in metrics if "train_acc" in m]
    if not rows:
        return ""
    spans = []
    for name in ("train_acc", "test_acc"):
        lo, hi = min(m[name] for m in rows), max(m[name] for m in rows)
        spans.append(f"{name[:-4]} {lo:.3f}" if lo == hi else f"{name[:-4]} {lo:.3f}..{hi:.3f}")
    return " ".join(spans)


class ProgressBar:
    """A Reporter that draws one tqdm bar per run."""

    def __init__(self) -> None:
        self.bar: tqdm | None = None
        self.last = 0

    def start(self, run_id: str, total: int, step: int) -> None:
        # In a terminal, redraw twice a second; in a log file (a batch job), write a line every 30 s.
        interval = 0.5 if sys.stderr.isatty() else 30.0
        self.bar = tqdm(
            total=total, initial=step, desc=f"run {run_id}", unit="step", file=sys.stderr, dynamic_ncols=True, mininterval=interval
        )
        self.last = step

    def step(self, step: int) -> None:
        if self.bar is not None:
            self.bar.update(step - self.last)
            self.last = step

    def evaluated(self, step: int, metrics: list[dict[str, float]]) -> None:
        acc = accuracies(metrics)
        if self.bar is not None and acc:
            if len(metrics) == 1:
                acc += f" loss {metrics[0]['train_loss']:.2e}/{metrics[0]['test_loss']:.2e}"
            self.bar.set_postfix_str(acc, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class SweepProgress:
    """One bar for a whole sweep: steps over all its points (so the ETA covers the sweep), the point
    being trained, and its latest accuracies."""

    def __init__(self, sweep_id: str, steps_per_point: list[int], done: list[int]) -> None:
        interval = 0.5 if sys.stderr.isatty() else 30.0
        total, initial = sum(steps_per_point), sum(done)
        self.steps_per_point = steps_per_point
        self.bar = tqdm(
            total=total, initial=initial, desc=f"sweep {sweep_id}", unit="step", file=sys.stderr, dynamic_ncols=True, mininterval=interval
        )
        self.points: list[int] = []
        self.label, self.last = "", 0

    def for_points(self, points: list[int], label: str) -> SweepProgress:
        """The reporter for a batch of points trained together (one point, or an ensemble)."""
        self.points, self.label = points, label
        return self

    def _where(self) -> str:
        return f"point {self.points[0] + 1}/{len(self.steps_per_point)} {self.label}"

    def start(self, run_id: str, total: int, step: int) -> None:
        self.last = step
        self.bar.set_postfix_str(self._where(), refresh=False)

    def step(self, step: int) -> None:
        self.bar.update((step - self.last) * len(self.points))
        self.last = step

    def evaluated(self, step: int, metrics: list[dict[str, float]]) -> None:
        acc = accuracies(metrics)
        if acc:
            self.bar.set_postfix_str(f"{self._where()} {acc}", refresh=False)

    def close(self) -> None:
        # A batch ended (possibly early): count its remaining steps as done so the bar and ETA stay true.
        self.bar.update(sum(self.steps_per_point[i] - self.last for i in self.points))
        self.last = 0

    def sync(self, done: list[int]) -> None:
        """Set the bar from the steps each point has done (worker processes report through the store)."""
        self.bar.update(sum(done) - self.bar.n)

    def note(self, message: str) -> None:
        self.bar.write(message, file=sys.stderr)

    def finish(self) -> None:
        self.bar.close()
