"""Sparse parity: distinct inputs, labels that are the parity of the first k bits, and its bad inputs."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from groklab.config import resolve_config
from groklab.errors import ConfigError
from groklab.tasks import build_task
from groklab.tasks.parity import distinct_bit_vectors


def task(*overrides: str):
    return build_task(resolve_config(None, ["task.name=parity", "model.name=deep_mlp", *overrides]).task)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 80), k=st.integers(1, 80), n_train=st.integers(1, 40), n_test=st.integers(1, 40), seed=st.integers(0, 99))
def test_parity_labels_and_distinct_inputs(n, k, n_train, n_test, seed):
    if k > n or (n < 63 and n_train + n_test > 2**n):
        return
    data = task(f"task.n={n}", f"task.k={k}", f"task.n_train={n_train}", f"task.n_test={n_test}", f"task.seed={seed}").build()
    x = torch.cat([data.train_x, data.test_x])
    y = torch.cat([data.train_y, data.test_y])
    assert data.train_x.shape == (n_train, n) and data.test_x.shape == (n_test, n)
    assert set(x.unique().tolist()) <= {0.0, 1.0}
    rows = [tuple(r) for r in x.int().tolist()]
    assert len(set(rows)) == len(rows)  # every input distinct, train and test disjoint
    assert [sum(r[:k]) % 2 for r in rows] == y.tolist()


def test_bit_vectors_are_seeded_and_fair():
    a, b = distinct_bit_vectors(30, 4000, 7), distinct_bit_vectors(30, 4000, 7)
    assert torch.equal(a, b) and not torch.equal(a, distinct_bit_vectors(30, 4000, 8))
    assert abs(a.mean().item() - 0.5) < 0.01  # 120,000 fair bits: sd 0.0014


def test_small_n_can_use_every_input():
    data = task("task.n=4", "task.k=2", "task.n_train=10", "task.n_test=6").build()
    assert len({tuple(r) for r in torch.cat([data.train_x, data.test_x]).int().tolist()}) == 16


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        (["task.n=5", "task.k=6"], "task.k"),
        (["task.k=0"], "task.k"),
        (["task.n=4", "task.n_train=10", "task.n_test=7"], "task.n_train"),
        (["task.n_test=0"], "task.n_test"),
        (["model.name=mlp"], "model.name"),
    ],
)
def test_bad_parity_settings_name_their_field(overrides, field):
    with pytest.raises(ConfigError) as err:
        resolve_config(None, ["task.name=parity", "model.name=deep_mlp", *overrides])
    assert err.value.field == field
