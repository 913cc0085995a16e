"""Linear probes: they find linear structure and not noise, train as the stated loss says, and are deterministic."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from groklab.config import resolve_config
from groklab.measures import MEASURES, EvalContext
from groklab.measures.probe import (
    LinearProbe,
    fit_probes,
    init_probes,
    layer_probe_accuracy,
    probe_accuracy,
    probe_grads,
    probe_seed,
    train_features,
)
from groklab.tasks.base import TaskData, TaskSpec


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def blobs(n: int, d: int, k: int, seed: int, signal: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian rows with `signal` added to coordinate y: linearly separable for a large signal."""
    g = gen(seed)
    y = torch.randint(0, k, (n,), generator=g)
    x = torch.randn(n, d, generator=g)
    x[torch.arange(n), y] += signal
    return x, y


def mlp() -> nn.Sequential:
    return nn.Sequential(nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3))


def context(model: nn.Module, signal: float, epochs: int, step: int = 7) -> EvalContext:
    cfg = resolve_config(None, ["task.p=13"])
    cfg.measures.probe_epochs = epochs
    (trx, try_), (tex, tey) = blobs(2000, 20, 3, 0, signal), blobs(1000, 20, 3, 1, signal)
    return EvalContext(step, model, TaskData(trx, try_, tex, tey), TaskSpec(n_classes=3, input_dim=20), cfg)


def no_hooks(model: nn.Module) -> bool:
    return all(not m._forward_hooks for m in model.modules())


# ----- the probe itself ---------------------------------------------------------------------------


def test_probe_reads_separable_features_and_not_noise():
    k, d = 4, 8
    (sep, y), (sep_te, y_te) = blobs(600, d, k, 0, 4.0), blobs(2000, d, k, 1, 4.0)
    noise, noise_te = torch.randn(600, d, generator=gen(2)), torch.randn(2000, d, generator=gen(3))
    feats, feats_te = torch.stack([sep, noise], dim=1), torch.stack([sep_te, noise_te], dim=1)  # (N, G, w)
    w, b = fit_probes(feats, [d, d], y, k, epochs=30, generator=gen(), lr=0.1)
    acc = probe_accuracy(w, b, feats_te, y_te)
    assert acc[0] >= 0.95
    assert abs(acc[1] - 1 / k) < 0.06  # chance


@settings(max_examples=25, deadline=None)
@given(
    g=st.integers(1, 4),
    b=st.integers(1, 20),
    w=st.integers(1, 10),
    k=st.integers(2, 6),
    coef=st.floats(0, 1),
    seed=st.integers(0, 10_000),
)
def test_hand_gradients_match_autograd_of_the_stated_loss(g, b, w, k, coef, seed):
    r = gen(seed)
    weight = torch.randn(g, k, w, generator=r, dtype=torch.float64).requires_grad_()
    bias = torch.randn(g, k, generator=r, dtype=torch.float64).requires_grad_()
    x, y = torch.randn(b, g, w, generator=r, dtype=torch.float64), torch.randint(0, k, (b,), generator=r)
    loss = sum(F.cross_entropy(x[:, i] @ weight[i].T + bias[i], y) + coef * torch.linalg.matrix_norm(weight[i]) for i in range(g))
    loss.backward()
    gw, gb = probe_grads(weight.detach(), bias.detach(), x, y, coef)
    torch.testing.assert_close(gw, weight.grad)
    torch.testing.assert_close(gb, bias.grad)


def test_zero_padding_leaves_a_narrow_probe_as_if_alone():
    r = gen(1)
    narrow, wide = torch.randn(50, 3, generator=r), torch.randn(50, 6, generator=r)
    y = torch.randint(0, 3, (50,), generator=r)
    feats = torch.stack([F.pad(narrow, (0, 3)), wide], dim=1)  # (50, 2, 6): the 3-wide layer padded
    weight, bias = init_probes([3, 6], 6, 3, gen(0))
    assert torch.all(weight[0, :, 3:] == 0) and torch.any(weight[1, :, 3:] != 0)
    gw, gb = probe_grads(weight, bias, feats, y)
    assert torch.all(gw[0, :, 3:] == 0)
    alone_w, alone_b = probe_grads(weight[:1, :, :3], bias[:1], narrow[:, None], y)
    torch.testing.assert_close(gw[0, :, :3], alone_w[0])
    torch.testing.assert_close(gb[0], alone_b[0])
    best_w, _ = fit_probes(feats, [3, 6], y, 3, epochs=5, generator=gen(0), batch=16)
    assert torch.all(best_w[0, :, 3:] == 0) and not torch.equal(best_w[0], weight[0])


@settings(max_examples=20, deadline=None)
@given(widths=st.lists(st.integers(1, 30), min_size=1, max_size=5), k=st.integers(1, 5), seed=st.integers(0, 1000))
def test_init_is_nn_linear_uniform_and_padded(widths, k, seed):
    width = max(widths)
    weight, bias = init_probes(widths, width, k, gen(seed))
    assert weight.shape == (len(widths), k, width) and bias.shape == (len(widths), k)
    for i, w in enumerate(widths):
        bound = 1 / math.sqrt(w)
        assert weight[i, :, :w].abs().max() <= bound and bias[i].abs().max() <= bound
        assert torch.all(weight[i, :, w:] == 0)
    again = init_probes(widths, width, k, gen(seed))
    assert torch.equal(weight, again[0]) and torch.equal(bias, again[1])


def test_fit_is_deterministic_in_the_generator():
    (x, y) = blobs(300, 5, 3, 0, 2.0)
    feats = x[:, None]
    a = fit_probes(feats, [5], y, 3, epochs=3, generator=gen(5), batch=64)
    b = fit_probes(feats, [5], y, 3, epochs=3, generator=gen(5), batch=64)
    c = fit_probes(feats, [5], y, 3, epochs=3, generator=gen(6), batch=64)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def authors_probe(feats: torch.Tensor, y: torch.Tensor, k: int, epochs: int, generator: torch.Generator, batch: int) -> nn.Linear:
    """tunnel_methods.EarlyExit for one layer, written out with autograd: nn.Linear, Adam 1e-3 on CE + 1e-3·||W||_F,
    the last epoch's weights; the draws (split, init, shuffles) in fit_probes' order so the two can be compared."""
    n, w = feats.shape
    perm = torch.randperm(n, generator=generator)
    fit_idx = perm[: int(0.8 * n)]
    w0, b0 = init_probes([w], w, k, generator, feats.dtype)
    probe = nn.Linear(w, k, dtype=feats.dtype)
    with torch.no_grad():
        probe.weight.copy_(w0[0])
        probe.bias.copy_(b0[0])
    opt = torch.optim.Adam(probe.parameters(), lr=1e-3)
    for _ in range(epochs):
        order = fit_idx[torch.randperm(len(fit_idx), generator=generator)]
        for s in range(0, len(order), batch):
            idx = order[s : s + batch]
            loss = F.cross_entropy(probe(feats[idx]), y[idx]) + 1e-3 * probe.weight.norm()
            opt.zero_grad()
            loss.backward()
            opt.step()
    return probe


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_last_epoch_probe_is_the_authors_in_the_features_dtype(dtype):
    x, y = blobs(400, 6, 3, 0, 1.5)
    x = x.to(dtype)
    weight, bias = fit_probes(x[:, None], [6], y, 3, epochs=4, generator=gen(2), batch=64)
    assert weight.dtype == dtype
    oracle = authors_probe(x, y, 3, 4, gen(2), 64)
    tol = {"rtol": 1e-12, "atol": 1e-12} if dtype == torch.float64 else {"rtol": 1e-5, "atol": 1e-6}
    torch.testing.assert_close(weight[0], oracle.weight.detach(), **tol)
    torch.testing.assert_close(bias[0], oracle.bias.detach(), **tol)


def test_best_selection_keeps_the_epoch_best_on_the_held_out_rows():
    x, y = blobs(400, 6, 3, 0, 0.3)  # weak signal: validation accuracy goes up and down across epochs
    feats = x.double()[:, None]
    last = fit_probes(feats, [6], y, 3, epochs=12, generator=gen(4), batch=32)
    best = fit_probes(feats, [6], y, 3, epochs=12, generator=gen(4), batch=32, select="best")
    g = gen(4)
    perm = torch.randperm(400, generator=g)
    val = perm[320:]
    accs = []
    for e in range(1, 13):  # the held-out accuracy after each epoch, from the last-epoch fit of e epochs (same draws)
        w, b = fit_probes(feats, [6], y, 3, epochs=e, generator=gen(4), batch=32)
        accs.append(probe_accuracy(w, b, feats[val], y[val]).item())
    first_best = accs.index(max(accs)) + 1
    w, b = fit_probes(feats, [6], y, 3, epochs=first_best, generator=gen(4), batch=32)
    assert torch.equal(best[0], w) and torch.equal(best[1], b)
    assert (first_best == 12) == torch.equal(best[0], last[0])
    with pytest.raises(ValueError, match="last or best"):
        fit_probes(feats, [6], y, 3, epochs=1, generator=gen(4), select="median")


def test_fit_needs_two_rows():
    with pytest.raises(ValueError, match="at least 2"):
        fit_probes(torch.zeros(1, 1, 3), [3], torch.zeros(1, dtype=torch.long), 2, 1, gen())


@settings(max_examples=30, deadline=None)
@given(a=st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)), b=st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)))
def test_probe_seed_is_unique_per_seed_and_step(a, b):
    assert (probe_seed(*a) == probe_seed(*b)) == (a == b)
    assert 0 <= probe_seed(*a) < 2**64


# ----- features through hooks ---------------------------------------------------------------------


def test_train_features_are_the_pre_activations_zero_padded():
    torch.manual_seed(0)
    model = mlp().double().eval()
    x = torch.randn(37, 20, dtype=torch.float64)
    layers, feats = train_features(model, x, chunk=10)
    assert layers == [0, 1, 2] and feats.shape == (37, 3, 16) and feats.dtype == torch.float64  # the model's dtype
    with torch.no_grad():  # chunk by chunk as train_features runs them: a matmul's rounding depends on its row count
        h1 = torch.cat([model[0](x[i : i + 10]) for i in range(0, 37, 10)])
        h3 = torch.cat([model[4](model[3](model[2](model[1](h)))) for h in h1.split(10)])
    torch.testing.assert_close(feats[:, 0], h1, rtol=0, atol=0)
    torch.testing.assert_close(feats[:, 2, :3], h3, rtol=0, atol=0)
    assert torch.all(feats[:, 2, 3:] == 0) and no_hooks(model)


def test_chunked_test_accuracy_matches_the_batched_probe():
    torch.manual_seed(0)
    model = mlp().eval()
    x, y = blobs(90, 20, 3, 0, 3.0)
    layers, feats = train_features(model, x)
    weight, bias = init_probes([16, 16, 3], 16, 3, gen(0))
    by_hooks = layer_probe_accuracy(model, layers, weight, bias, x, y, chunk=25)
    assert list(by_hooks.values()) == pytest.approx(probe_accuracy(weight, bias, feats, y).tolist())
    assert no_hooks(model)


# ----- the measure --------------------------------------------------------------------------------


def test_measure_end_to_end():
    torch.manual_seed(0)
    model = mlp().eval()
    ctx = context(model, signal=6.0, epochs=100)
    rng = torch.get_rng_state()
    out = MEASURES.get("probe")().compute(ctx)
    assert torch.equal(torch.get_rng_state(), rng)  # the trainer's RNG stream is untouched
    assert set(out) == {"probe_acc/L1", "probe_acc/L2", "probe_acc/L3"}  # the output layer is probed too
    assert out["probe_acc/L1"] >= 0.95  # a linear map of separable inputs
    assert all(0.0 <= v <= 1.0 for v in out.values())
    assert no_hooks(model)
    assert LinearProbe().compute(ctx) == out  # same seed and step: same probes


def test_measure_on_noise_stays_near_chance():
    torch.manual_seed(0)
    model = mlp().eval()
    out = LinearProbe().compute(context(model, signal=0.0, epochs=10))
    assert all(abs(v - 1 / 3) < 0.08 for v in out.values()), out


def test_measure_seeds_from_run_seed_and_step_and_trains_in_the_models_float64(monkeypatch):
    torch.manual_seed(0)
    model = mlp().double().eval()
    ctx = context(model, signal=1.0, epochs=2)
    ctx.data = TaskData(*(t.double() if t.is_floating_point() else t for t in vars(ctx.data).values()))
    seen = []

    def spy(feats, widths, y, n_classes, epochs, generator, **kw):
        seen.append((feats.dtype, epochs, generator.initial_seed(), widths, kw["select"]))
        return fit_probes(feats, widths, y, n_classes, epochs, generator, **kw)

    monkeypatch.setattr("groklab.measures.probe.fit_probes", spy)
    ctx.cfg.run.seed = 3
    out = LinearProbe().compute(ctx)
    assert seen == [(torch.float64, 2, probe_seed(3, 7), [16, 16, 3], "last")]
    assert set(out) == {"probe_acc/L1", "probe_acc/L2", "probe_acc/L3"}
    ctx.cfg.measures.probe_select = "best"
    LinearProbe().compute(ctx)
    assert seen[-1][-1] == "best"


def test_measure_registration_cadence_and_applicability():
    assert MEASURES.get("probe") is LinearProbe and LinearProbe.every == 5
    spec = TaskSpec(n_classes=3, input_dim=20)
    assert LinearProbe.not_applicable(mlp(), spec) is None
    assert "nn.Linear" in LinearProbe.not_applicable(nn.Sequential(nn.ReLU()), spec)
