"""Live progress bars: step, train/test accuracy, loss, ETA. tqdm.auto draws a widget in Jupyter and text on
stderr in a terminal, so the CLI and a notebook share one Reporter."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm


def redraw_interval() -> float:
    """Seconds between redraws: twice a second in a terminal or a Jupyter widget; in a log file (a batch job),
    a line every 30 s."""
    live = sys.stderr.isatty() or tqdm.__module__.startswith("tqdm.notebook")
    return 0.5 if live else 30.0


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

    def start(self, run_ids: list[str], total: int, step: int) -> None:
        interval = redraw_interval()
        self.bar = tqdm(
            total=total,
            initial=step,
            desc=f"run {','.join(run_ids)}",
            unit="step",
            file=sys.stderr,
            dynamic_ncols=True,
            mininterval=interval,
        )
        self.last = step

    def step(self, step: int) -> None:
        if self.bar is not None:
            self.bar.update(step - self.last)
            self.last = step

    def evaluated(self, step: int, metrics: dict[str, dict[str, float]]) -> None:
        rows = list(metrics.values())
        acc = accuracies(rows)
        if self.bar is not None and acc:
            if len(rows) == 1:
                acc += f" loss {rows[0]['train_loss']:.2e}/{rows[0]['test_loss']:.2e}"
            self.bar.set_postfix_str(acc, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class SweepProgress:
    """One bar for a whole sweep: steps over all its points (so the ETA covers the sweep), the point
    being trained, and its latest accuracies."""

    def __init__(self, sweep_id: str, steps_per_point: list[int], done: list[int]) -> None:
        interval = redraw_interval()
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

    def start(self, run_ids: list[str], total: int, step: int) -> None:
        self.last = step
        self.bar.set_postfix_str(self._where(), refresh=False)

    def step(self, step: int) -> None:
        self.bar.update((step - self.last) * len(self.points))
        self.last = step

    def evaluated(self, step: int, metrics: dict[str, dict[str, float]]) -> None:
        acc = accuracies(list(metrics.values()))
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
