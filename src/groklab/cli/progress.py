"""The live progress bar of `groklab run`: step, train/test accuracy, loss, ETA (tqdm on stderr)."""

from __future__ import annotations

import sys

from tqdm import tqdm


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

    def evaluated(self, step: int, metrics: dict[str, float]) -> None:
        if self.bar is not None and "train_acc" in metrics:
            acc = f"train {metrics['train_acc']:.3f} test {metrics['test_acc']:.3f}"
            loss = f"loss {metrics['train_loss']:.2e}/{metrics['test_loss']:.2e}"
            self.bar.set_postfix_str(f"{acc} {loss}", refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
