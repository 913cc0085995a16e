"""Shared fixtures: tiny configs that train in about a second on a 2-core CPU."""

from __future__ import annotations

import pytest

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


@pytest.fixture
def tiny() -> list[str]:
    return list(TINY)


@pytest.fixture
def runs_dir(tmp_path):
    return tmp_path / "runs"
