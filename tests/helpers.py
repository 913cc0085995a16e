"""Test helpers: the tiny config every fast test trains, and a reporter that interrupts a run."""

from __future__ import annotations

import os
import signal

# A model and task small enough for unit tests, large enough to grok (see test_training).
TINY = [
    "task.p=13",
    "task.train_frac=0.5",
    "model.d_model=32",
    "model.n_heads=2",
    "model.d_mlp=64",
    "schedule.steps=60",
    "schedule.eval_every=10",
    "schedule.checkpoint_every=20",
    "run.device=cpu",
]


class InterruptAt:
    """A reporter that sends this process SIGINT (a Ctrl-C) at `step` of the `nth` run started.

    Reporters made for successive runs share `starts` (a one-item list) to count them.
    """

    def __init__(self, step: int, nth: int = 1, starts: list[int] | None = None) -> None:
        self.at, self.nth = step, nth
        self.starts = starts if starts is not None else [0]
        self.armed = False

    def start(self, *args: object) -> None:
        self.starts[0] += 1
        self.armed = self.starts[0] == self.nth

    def step(self, step: int) -> None:
        if self.armed and step == self.at:
            os.kill(os.getpid(), signal.SIGINT)

    def evaluated(self, *args: object) -> None: ...

    def close(self) -> None: ...
