"""The CPU dropout: a true dropout of the rounded p, unbiased, seeded by torch's generator, nn.Dropout elsewhere."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.func import vmap

from groklab.models.dropout import LANES, Dropout, drop_lanes


def dropped_fraction_bound(p: float, n: int) -> float:
    return 5 * math.sqrt(p * (1 - p) / n) + 1e-12  # five binomial standard deviations


@settings(max_examples=25, deadline=None)
@given(p=st.floats(min_value=0.001, max_value=0.95), seed=st.integers(0, 2**31 - 1))
def test_drops_the_rounded_p_and_scales_the_rest_to_keep_the_mean(p, seed):
    torch.manual_seed(seed)
    x = torch.rand(200_000, dtype=torch.float64) + 0.5
    y = Dropout(p).train()(x)
    dropped = y == 0
    p_eff = drop_lanes(p) / LANES
    assert abs(p_eff - p) <= 0.5 / LANES
    assert abs(dropped.double().mean().item() - p_eff) < dropped_fraction_bound(p_eff, x.numel())
    torch.testing.assert_close(y[~dropped], x[~dropped] / (1 - p_eff))  # kept values, scaled exactly
    spread = math.sqrt(p_eff / (1 - p_eff) / x.numel()) * (x.pow(2).mean().sqrt() / x.mean()).item()
    assert (y.mean() / x.mean()).item() == pytest.approx(1.0, abs=6 * spread)  # unbiased: E[y] = x


def test_every_lane_of_a_random_word_drops_alike():
    """Each 64-bit word feeds four elements; a biased lane (say, a sign bit that is always 0) would show here."""
    torch.manual_seed(0)
    y = Dropout(0.5).train()(torch.ones(400_000))
    per_lane = (y == 0).view(-1, 4).double().mean(0)
    assert (per_lane - 0.5).abs().max().item() < dropped_fraction_bound(0.5, 100_000)


def test_seeded_by_torchs_generator_and_its_gradient_is_the_mask():
    x = torch.randn(4, 1000, requires_grad=True)
    torch.manual_seed(3)
    a = Dropout(0.2).train()(x)
    torch.manual_seed(3)
    b = Dropout(0.2).train()(x)
    assert torch.equal(a, b)
    assert not torch.equal(a, Dropout(0.2).train()(x))  # the generator moved on
    a.sum().backward()
    torch.testing.assert_close(x.grad, (a != 0).float() / (1 - drop_lanes(0.2) / LANES))


def test_identity_in_eval_and_nn_dropout_where_the_cpu_path_does_not_apply():
    x = torch.randn(3, 50)
    assert torch.equal(Dropout(0.3).eval()(x), x)
    assert torch.equal(Dropout(0.0).train()(x), x)
    assert isinstance(Dropout(0.1), nn.Dropout) and Dropout(0.1).state_dict() == {}
    for p in (1e-7, 1 - 1e-7):  # rounds to no lane or to every lane: torch's own draw of the exact p
        torch.manual_seed(1)
        ours = Dropout(p).train()(x)
        torch.manual_seed(1)
        assert torch.equal(ours, nn.Dropout(p).train()(x))


def test_under_vmap_members_draw_their_own_masks_from_the_same_cheap_draw():
    drop = Dropout(0.1).train()
    scale = LANES / (LANES - drop_lanes(0.1))  # not torch's 1 / 0.9: our draw, batched
    torch.manual_seed(2)
    different = vmap(drop, randomness="different")(torch.ones(8, 1000, dtype=torch.float64))
    assert not torch.equal(different[0], different[1])
    assert set(different.unique().tolist()) == {0.0, scale}
    same = vmap(drop, randomness="same")(torch.ones(8, 1000, dtype=torch.float64))
    assert all(torch.equal(same[0], m) for m in same) and set(same.unique().tolist()) == {0.0, scale}
    with pytest.raises(RuntimeError, match="randomness"):
        vmap(drop)(torch.ones(8, 10))
