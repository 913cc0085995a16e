"""Measures and events against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from groklab.analysis import first_crossing, grokking_events
from groklab.config import GrokfastConfig
from groklab.measures.med import med
from groklab.training.grokfast import GradFilter


def test_med_on_a_circle_is_the_chord_length():
    # Embeddings on a unit circle at angles 2πi/p: every consecutive distance is the chord 2 sin(π/p).
    p = 7
    ang = torch.arange(p) * 2 * math.pi / p
    emb = torch.stack([ang.cos(), ang.sin()], dim=1)
    assert med(emb, wrap=True) == pytest.approx(2 * math.sin(math.pi / p))


def test_med_wrap_and_code_variant_differ_as_defined():
    emb = torch.tensor([[0.0], [1.0], [3.0], [6.0], [10.0]])  # p = 5
    # wrapped: |1|,|2|,|3|,|4|,|10-0| over p=5 -> 20/5
    assert med(emb, wrap=True) == pytest.approx(4.0)
    # authors' code: i = 0..p-3 -> |1|,|2|,|3| -> mean 2
    assert med(emb, wrap=False) == pytest.approx(2.0)


@settings(max_examples=30, deadline=None)
@given(p=st.integers(3, 40), d=st.integers(1, 8), seed=st.integers(0, 10_000))
def test_med_is_mean_of_consecutive_distances(p, d, seed):
    emb = torch.randn(p, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    expected = sum((emb[(i + 1) % p] - emb[i]).norm().item() for i in range(p)) / p
    assert med(emb) == pytest.approx(expected)


def test_first_crossing_and_events():
    steps = [0, 10, 20, 30, 40]
    assert first_crossing(steps, [0.1, 0.5, 0.99, 0.2, 1.0], 0.99) == 20
    assert first_crossing(steps, [0.1] * 5, 0.99) is None
    ev = grokking_events((steps, [0.2, 0.99, 1, 1, 1]), (steps, [0.01, 0.02, 0.1, 0.995, 1]))
    assert ev["t_fit"][0] == 10 and ev["t_grok"][0] == 30 and ev["delay"][0] == 20
    assert ev["test_acc_at_fit"] == (10, 0.02)
    never = grokking_events((steps, [1] * 5), (steps, [0.5] * 5), 0.99, 0.9)
    assert never["t_grok"] == (None, 0.9) and never["delay"] == (None, None)


def test_grokfast_ema_matches_the_formula():
    p = torch.nn.Parameter(torch.zeros(3))
    f = GradFilter([p], GrokfastConfig(kind="ema", alpha=0.5, lamb=2.0))
    grads = [torch.tensor([1.0, 0, 0]), torch.tensor([0, 1.0, 0]), torch.tensor([0, 0, 1.0])]
    ema = None
    for g in grads:
        p.grad = g.clone()
        f.apply()
        ema = g.clone() if ema is None else 0.5 * ema + 0.5 * g
        torch.testing.assert_close(p.grad, g + 2.0 * ema)


def test_grokfast_ma_waits_for_a_full_window():
    p = torch.nn.Parameter(torch.zeros(1))
    f = GradFilter([p], GrokfastConfig(kind="ma", window=3, lamb=1.0))
    outs = []
    for v in [1.0, 2.0, 3.0, 4.0]:
        p.grad = torch.tensor([v])
        f.apply()
        outs.append(p.grad.item())
    assert outs == [1.0, 2.0, 3.0 + 2.0, 4.0 + 3.0]
