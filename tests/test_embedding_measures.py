"""Uniformity and the Fourier measure against hand-computed embeddings, and both in a real run."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import groklab
from groklab.config import resolve_config
from groklab.measures import MEASURES, EvalContext
from groklab.measures.fourier import KEY_RATIO, fourier_entropy, fourier_sparsity, frequency_power, key_frequencies, top_k_share
from groklab.measures.med import med
from groklab.measures.uniformity import consecutive_distances, uniformity
from groklab.models import DeepMLP, EmbeddingMLP
from groklab.tasks.base import TaskData, TaskSpec

PRIMES = [11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 97]


def circle(p: int, radius: float = 1.0) -> torch.Tensor:
    """p points evenly spaced on a circle: every consecutive distance, wrap included, is the chord 2r sin(π/p)."""
    ang = torch.arange(p, dtype=torch.float64) * 2 * math.pi / p
    return radius * torch.stack([ang.cos(), ang.sin()], dim=1)


def waves(p: int, freqs: list[int], phases: list[float], offset: float = 0.0) -> torch.Tensor:
    """Column j = cos(2π k_j i / p + phase_j) + offset: the embedding holds exactly the frequencies k_j (and k = 0)."""
    i = torch.arange(p, dtype=torch.float64)[:, None]
    k = torch.tensor(freqs, dtype=torch.float64)[None]
    return torch.cos(2 * math.pi * k * i / p + torch.tensor(phases, dtype=torch.float64)[None]) + offset


def context(model: torch.nn.Module, p: int, **measures: object) -> EvalContext:
    cfg = resolve_config(None, [f"task.p={p}"])
    for k, v in measures.items():
        setattr(cfg.measures, k, v)
    empty = torch.zeros(0, 3, dtype=torch.long)
    data = TaskData(empty, empty[:, 0], empty, empty[:, 0])
    return EvalContext(step=0, model=model, data=data, spec=TaskSpec(n_classes=p, vocab_size=p + 1, seq_len=3, n_operand_tokens=p), cfg=cfg)


# --- uniformity ------------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [3, 7, 97])
def test_uniformity_of_a_circle_is_zero_with_and_without_wrap(p):
    emb = circle(p, radius=3.0)
    assert uniformity(emb, wrap=True) == pytest.approx(0.0, abs=1e-12)
    assert uniformity(emb, wrap=False) == pytest.approx(0.0, abs=1e-12)
    torch.testing.assert_close(consecutive_distances(emb), torch.full((p,), 6 * math.sin(math.pi / p), dtype=torch.float64))


def test_uniformity_of_a_line_depends_on_the_wrap_around():
    emb = torch.arange(5, dtype=torch.float64)[:, None] * 2.0  # 0, 2, 4, 6, 8: evenly spaced, but 8 -> 0 is a jump of 8
    assert uniformity(emb, wrap=False) == 0.0
    # wrapped distances 2, 2, 2, 2, 8: mean 3.2, population std sqrt((4 * 1.2² + 4.8²) / 5) = 2.4
    assert uniformity(emb, wrap=True) == pytest.approx(2.4 / 3.2)


def test_uniformity_of_uneven_points_is_computed_by_hand():
    emb = torch.tensor([[0.0], [1.0], [3.0], [6.0], [10.0]])  # p = 5, the example of test_measures' MED test
    # wrapped: distances 1, 2, 3, 4, 10 -> mean 4, population variance (9 + 4 + 1 + 0 + 36) / 5 = 10
    assert uniformity(emb, wrap=True) == pytest.approx(math.sqrt(10) / 4)
    # authors' code range i = 0..p-3: 1, 2, 3 -> mean 2, variance 2/3
    assert uniformity(emb, wrap=False) == pytest.approx(math.sqrt(2 / 3) / 2)


def test_uniformity_of_identical_rows_is_nan():
    assert math.isnan(uniformity(torch.ones(6, 4)))


@settings(max_examples=30, deadline=None)
@given(p=st.integers(3, 40), d=st.integers(1, 8), wrap=st.booleans(), seed=st.integers(0, 10_000))
def test_consecutive_distances_use_meds_convention(p, d, wrap, seed):
    emb = torch.randn(p, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    dist = consecutive_distances(emb, wrap)
    assert len(dist) == (p if wrap else p - 2)
    assert dist.mean().item() == pytest.approx(med(emb, wrap))


@settings(max_examples=30, deadline=None)
@given(p=st.integers(4, 40), d=st.integers(2, 8), scale=st.floats(0.01, 100.0), wrap=st.booleans(), seed=st.integers(0, 10_000))
def test_uniformity_ignores_scale_rotation_and_translation(p, d, scale, wrap, seed):
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(p, d, generator=g, dtype=torch.float64)
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    moved = scale * emb @ q + torch.randn(d, generator=g, dtype=torch.float64)
    assert uniformity(moved, wrap) == pytest.approx(uniformity(emb, wrap), rel=1e-9, abs=1e-12)


# --- Fourier ---------------------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(p=st.integers(2, 60), d=st.integers(1, 6), seed=st.integers(0, 10_000))
def test_frequency_power_is_a_parseval_split_of_the_norm(p, d, seed):
    emb = torch.randn(p, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    power = frequency_power(emb)
    assert power.shape == (p // 2 + 1,)
    assert power.sum().item() == pytest.approx(emb.square().sum().item())
    assert power[0].item() == pytest.approx(p * emb.mean(0).square().sum().item())  # k = 0 is the mean embedding
    assert power[1:].sum().item() == pytest.approx((emb - emb.mean(0)).square().sum().item())


@settings(max_examples=40, deadline=None)
@given(data=st.data(), p=st.sampled_from(PRIMES), offset=st.floats(-5, 5))
def test_known_frequencies_are_exactly_the_key_ones(data, p, offset):
    m_max = min(5, math.ceil((p // 2) / KEY_RATIO) - 1)  # m equal powers, each 1/m > KEY_RATIO / (p//2) of the total
    freqs = data.draw(st.lists(st.integers(1, p // 2), min_size=1, max_size=m_max, unique=True))
    phases = data.draw(st.lists(st.floats(0, 2 * math.pi), min_size=len(freqs), max_size=len(freqs)))
    emb = waves(p, freqs, phases, offset)
    power = frequency_power(emb)
    expected = torch.zeros(p // 2 + 1, dtype=torch.float64)
    expected[freqs] = p / 2  # Σ_i cos²(2πki/p + φ) = p/2 for 0 < k < p/2
    expected[0] = p * len(freqs) * offset**2
    torch.testing.assert_close(power, expected, atol=1e-8, rtol=1e-9)
    assert sorted(key_frequencies(power)) == sorted(freqs)
    assert fourier_sparsity(emb, 5) == pytest.approx(1.0)  # the constant offset is excluded
    assert fourier_entropy(power) == pytest.approx(len(freqs))
    for k in range(1, len(freqs)):
        assert fourier_sparsity(emb, k) == pytest.approx(k / len(freqs))


def test_key_frequencies_come_strongest_first_and_use_the_ratio_rule():
    power = torch.tensor([100.0, 1.0, 9.0, 1.0, 4.0, 0.0])  # k = 0 ignored; mean of k = 1..5 is 3
    assert key_frequencies(power, ratio=1.0) == [2, 4]  # 9 and 4 are >= 3
    assert key_frequencies(power, ratio=3.0) == [2]  # only 9 >= 9
    assert key_frequencies(power, ratio=3.01) == []
    assert top_k_share(power, 2) == pytest.approx(13 / 15)
    q = torch.tensor([1, 9, 1, 4, 0], dtype=torch.float64) / 15
    q = q[q > 0]
    assert fourier_entropy(power) == pytest.approx(math.exp(-(q * q.log()).sum().item()))


def test_random_gaussian_embeddings_are_spread_over_all_frequencies():
    emb = torch.randn(97, 64, generator=torch.Generator().manual_seed(0))
    power = frequency_power(emb)
    assert key_frequencies(power) == []
    assert 5 / 48 < fourier_sparsity(emb) < 0.2  # the top 5 of 48 frequencies, barely above their 5/48 share
    assert fourier_entropy(power) > 40


def test_constant_embeddings_have_no_spectrum():
    emb = torch.ones(13, 4)
    power = frequency_power(emb)
    assert power[1:].abs().max() < 1e-12
    assert key_frequencies(power) == []
    assert math.isnan(fourier_sparsity(emb)) and math.isnan(fourier_entropy(power))


# --- the registered measures -------------------------------------------------------------------------


def test_measures_read_only_the_number_token_rows():
    p = 13
    model = EmbeddingMLP(p + 1, 3, p, d_model=4, d_mlp=8)
    with torch.no_grad():
        model.tok_emb.weight[:p, :2] = circle(p).float()
        model.tok_emb.weight[:p, 2:] = 0.0
        model.tok_emb.weight[:p, 2] = waves(p, [3], [0.0])[:, 0].float() * 1e-3
        model.tok_emb.weight[p] = 1e6  # the "=" token: far away, and ignored
    out = MEASURES.get("uniformity")().compute(context(model, p, med_wrap=True))
    assert out == {"uniformity": pytest.approx(uniformity(model.tok_emb.weight[:p], wrap=True))}
    assert out["uniformity"] < 1e-4  # a circle, but for the tiny third column
    assert MEASURES.get("uniformity")().compute(context(model, p, med_wrap=False))["uniformity"] < 1e-4
    fourier = MEASURES.get("fourier")().compute(context(model, p))
    assert set(fourier) == {"fourier_sparsity", "fourier_key_freqs", "fourier_entropy"}
    assert fourier["fourier_key_freqs"] == 1.0  # the circle is frequency 1; the tiny frequency-3 column is below 2x the mean
    assert fourier["fourier_sparsity"] == pytest.approx(1.0)


@pytest.mark.parametrize("name", ["uniformity", "fourier"])
def test_not_applicable_without_number_tokens(name):
    cls = MEASURES.get(name)
    mlp = EmbeddingMLP(14, 3, 13, d_model=4, d_mlp=8)
    assert cls.not_applicable(mlp, TaskSpec(n_classes=13, vocab_size=14, seq_len=3, n_operand_tokens=13)) is None
    for model, spec in [(DeepMLP(784, 10), TaskSpec(n_classes=10, input_dim=784)), (mlp, TaskSpec(n_classes=13, vocab_size=14, seq_len=3))]:
        why = cls.not_applicable(model, spec)
        assert why and "\n" not in why and "token embedding" in why


def test_both_measures_run_in_a_tiny_training_run(tmp_path):
    measures = "measures.enabled=[loss_acc,weight_norm,med,uniformity,fourier]"
    overrides = ["task.p=13", "task.train_frac=0.5", "model.d_model=32", "model.n_heads=2", "model.d_mlp=64"]
    overrides += ["schedule.steps=30", "schedule.eval_every=10", "run.device=cpu", measures]
    run = groklab.run(None, overrides, runs_dir=tmp_path)
    m = run.metrics(["med", "uniformity", "fourier_sparsity", "fourier_key_freqs", "fourier_entropy"])
    steps = m["med"][0]
    assert len(steps) >= 3
    for name, (s, values) in m.items():
        assert s == steps, name
        assert all(math.isfinite(v) for v in values), name
    assert all(0 < v < 1 for v in m["uniformity"][1])
    assert all(5 / 6 <= v <= 1 for v in m["fourier_sparsity"][1])  # p = 13: 5 of 6 frequencies
    assert all(v == int(v) and 0 <= v <= 6 for v in m["fourier_key_freqs"][1])
    assert all(1 <= v <= 6 for v in m["fourier_entropy"][1])


@pytest.mark.parametrize("wrap", [True, False])
def test_med_with_separate_b_tokens_is_the_mean_of_the_two_tables(wrap):
    p, off = 11, 7  # a: tokens 0..10, b: 7..17 (overlapping, as in Gu et al.'s str.py), "=": 18
    torch.manual_seed(0)
    model = EmbeddingMLP(p + off + 1, 3, p, d_model=4, d_mlp=8)
    ctx = context(model, p, med_wrap=wrap)
    ctx.spec = TaskSpec(n_classes=p, vocab_size=p + off + 1, seq_len=3, n_operand_tokens=p, operand_token_offsets=(0, off))
    emb = model.tok_emb.weight.detach().double()
    by_hand = [sum((emb[o + i + 1] - emb[o + i]).norm().item() for i in range(p - 2)) / (p - 2) for o in (0, off)]
    if wrap:
        by_hand = [sum((emb[o + (i + 1) % p] - emb[o + i]).norm().item() for i in range(p)) / p for o in (0, off)]
    assert MEASURES.get("med")().compute(ctx)["med"] == pytest.approx(sum(by_hand) / 2, rel=1e-12)
    ctx.spec = TaskSpec(n_classes=p, vocab_size=p + off + 1, seq_len=3, n_operand_tokens=p)
    assert MEASURES.get("med")().compute(ctx)["med"] == pytest.approx(by_hand[0], rel=1e-12)  # shared table: rows 0..p-1 only
