"""Feature rank, effective rank and tunnel length against matrices of known rank and torch's own matrix_rank."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from groklab.config import resolve_config
from groklab.measures import MEASURES, EvalContext, measure_all
from groklab.measures.feature_rank import (
    CovarianceAccumulator,
    FeatureRank,
    covariance_spectrum,
    effective_rank,
    layer_outputs_stats,
    rank_from_spectrum,
    tunnel_length,
)
from groklab.tasks.base import TaskData, TaskSpec

F64 = torch.float64


def low_rank(n: int, w: int, r: int, seed: int, offset: float = 3.0) -> torch.Tensor:
    """(n, w) rows of rank r (before centring), shifted off the origin so the centring matters."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, r, generator=g, dtype=F64) @ torch.randn(r, w, generator=g, dtype=F64) + offset


def rank_of(a: torch.Tensor, chunk: int | None = None, rtol: float | None = None) -> int:
    acc = CovarianceAccumulator(a.shape[1], a.device)
    for s in range(0, len(a), chunk or len(a)):
        acc.update(a[s : s + (chunk or len(a))])
    return rank_from_spectrum(covariance_spectrum(acc.covariance()), a.shape[1], rtol)


def mlp(d_in: int = 20, width: int = 16, n_out: int = 3, inplace: bool = False) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, width), nn.ReLU(inplace), nn.Linear(width, width), nn.ReLU(inplace), nn.Linear(width, n_out))


def context(model: nn.Module, train_x: torch.Tensor, test_x: torch.Tensor, **measures: object) -> EvalContext:
    cfg = resolve_config(None, ["task.p=13"])
    for k, v in measures.items():
        setattr(cfg.measures, k, v)
    data = TaskData(train_x, torch.zeros(len(train_x), dtype=torch.long), test_x, torch.zeros(len(test_x), dtype=torch.long))
    return EvalContext(step=0, model=model, data=data, spec=TaskSpec(n_classes=3, input_dim=train_x.shape[1]), cfg=cfg)


def no_hooks(model: nn.Module) -> bool:
    return all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


# ----- covariance and rank ------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(w=st.integers(3, 24), r_frac=st.floats(0.0, 1.0), extra=st.integers(2, 60), chunk=st.integers(2, 50), seed=st.integers(0, 10_000))
def test_rank_of_low_rank_data_is_r_and_matches_matrix_rank_of_torch_cov(w, r_frac, extra, chunk, seed):
    r = 1 + round(r_frac * (w - 1))
    a = low_rank(w + extra, w, r, seed)
    expected = int(torch.linalg.matrix_rank(torch.cov(a.T)))
    assert expected == r
    assert rank_of(a) == expected  # one chunk
    assert rank_of(a, chunk) == expected  # merged chunks


@settings(max_examples=30, deadline=None)
@given(n=st.integers(2, 80), w=st.integers(1, 12), chunk=st.integers(1, 30), seed=st.integers(0, 10_000))
def test_chunked_covariance_equals_torch_cov(n, w, chunk, seed):
    a = torch.randn(n, w, generator=torch.Generator().manual_seed(seed), dtype=F64) * 2 + 5
    acc = CovarianceAccumulator(w, a.device)
    for s in range(0, n, chunk):
        acc.update(a[s : s + chunk].float())  # float32 rows are promoted: the covariance is float64
    cov = acc.covariance()
    assert cov.dtype == F64 and acc.n == n
    torch.testing.assert_close(cov, torch.cov(a.float().double().T).reshape(w, w), rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(cov, cov.T, rtol=0, atol=0)


def test_covariance_needs_two_rows():
    acc = CovarianceAccumulator(3, torch.device("cpu"))
    acc.update(torch.ones(1, 3))
    with pytest.raises(ValueError, match="at least 2 rows"):
        acc.covariance()


def test_accumulator_does_not_modify_float64_input():
    a = low_rank(10, 4, 2, 0)
    before = a.clone()
    CovarianceAccumulator(4, a.device).update(a)
    assert torch.equal(a, before)


@settings(max_examples=20, deadline=None)
@given(w=st.integers(1, 16), seed=st.integers(0, 10_000))
def test_spectrum_is_the_singular_values_descending(w, seed):
    cov = torch.cov(torch.randn(3 * w + 2, w, generator=torch.Generator().manual_seed(seed), dtype=F64).T).reshape(w, w)
    s = covariance_spectrum(cov)
    torch.testing.assert_close(s, torch.linalg.svdvals(cov), rtol=1e-10, atol=1e-12)
    assert torch.all(s[:-1] >= s[1:])


def test_rank_rtol_counts_values_above_rtol_times_sigma_max():
    s = torch.tensor([1.0, 1e-3, 1e-6, 1e-17, 0.0], dtype=F64)
    assert rank_from_spectrum(s, d=5) == 3  # default tol 5 * eps ~ 1.1e-15
    assert rank_from_spectrum(s, d=5, rtol=1e-4) == 2
    assert rank_from_spectrum(s, d=5, rtol=1e-2) == 1
    assert rank_from_spectrum(torch.zeros(4, dtype=F64), d=4) == 0
    assert rank_from_spectrum(torch.zeros(0, dtype=F64), d=0) == 0


@settings(max_examples=30, deadline=None)
@given(
    log_s=st.lists(st.floats(-18, 2), min_size=1, max_size=10),
    rtol=st.one_of(st.none(), st.floats(1e-12, 0.9)),
    seed=st.integers(0, 1000),
)
def test_rank_from_spectrum_agrees_with_matrix_rank(log_s, rtol, seed):
    s = torch.tensor([10.0**x for x in log_s], dtype=F64)
    d = len(s)
    tol = (d * torch.finfo(F64).eps if rtol is None else rtol) * s.max()
    if torch.any(((s - tol).abs() / tol) < 1e-6):
        return  # a value on the threshold: round-off decides, as in any rank
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=torch.Generator().manual_seed(seed), dtype=F64))
    m = q @ torch.diag(s) @ q.T
    assert rank_from_spectrum(s, d, rtol) == int(torch.linalg.matrix_rank(torch.diag(s), rtol=rtol))
    if rtol is not None and rtol > 1e-8:  # well above the round-off of the rotation
        assert rank_from_spectrum(covariance_spectrum(m), d, rtol) == int(torch.linalg.matrix_rank(m, rtol=rtol))


def test_rank_rtol_on_data_with_a_small_direction():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(200, 5, generator=g, dtype=F64) * torch.tensor([1.0, 1.0, 1.0, 1.0, 1e-3], dtype=F64)
    assert rank_of(a) == 5  # variance 1e-6 of the largest: far above the default tolerance
    assert rank_of(a, rtol=1e-4) == 4
    assert rank_of(a, rtol=1e-8) == 5


# ----- effective rank and tunnel ------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 2, 5, 40])
def test_effective_rank_of_k_equal_values_is_k(k):
    s = torch.cat([torch.full((k,), 3.7, dtype=F64), torch.zeros(7, dtype=F64)])
    assert effective_rank(s) == pytest.approx(k)


def test_effective_rank_known_values():
    assert effective_rank(torch.tensor([5.0, 0.0, 0.0])) == pytest.approx(1.0)
    assert effective_rank(torch.zeros(3)) == 0.0
    h = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert effective_rank(torch.tensor([3.0, 1.0])) == pytest.approx(math.exp(h))


@settings(max_examples=40, deadline=None)
@given(s=st.lists(st.one_of(st.just(0.0), st.floats(1e-6, 100)), min_size=1, max_size=20), scale=st.floats(1e-3, 1e3))
def test_effective_rank_between_one_and_the_number_of_nonzero_values(s, scale):
    t = torch.tensor(s, dtype=F64)
    nonzero = int((t > 0).sum())
    e = effective_rank(t)
    if nonzero == 0:
        assert e == 0.0
    else:
        assert 1 - 1e-9 <= e <= nonzero + 1e-9
        assert effective_rank(t * scale) == pytest.approx(e, rel=1e-9)


def test_tunnel_length_fraction_and_absolute_thresholds():
    ranks, widths = [400, 250, 299, 300, 10], [400, 400, 400, 400, 10]
    assert tunnel_length(ranks, widths, 0.75) == 2  # below 300 of 400 (250, 299); 10 of 10 is not below 7.5
    assert tunnel_length(ranks, widths, 300) == 3  # absolute: 250, 299 and the 10-wide layer
    assert tunnel_length(ranks, widths, 1) == 0  # absolute rank 1: only rank-0 layers
    assert tunnel_length([0, 3], [4, 4], 1.0) == 1
    assert tunnel_length([], [], 0.5) == 0
    with pytest.raises(ValueError):
        tunnel_length([1, 2], [3], 0.5)


@settings(max_examples=40, deadline=None)
@given(
    layers=st.lists(st.tuples(st.integers(1, 500), st.floats(0, 1)), min_size=0, max_size=12),
    threshold=st.one_of(st.floats(0.01, 0.99), st.floats(1, 600)),
)
def test_tunnel_length_counts_layers_below_their_threshold(layers, threshold):
    widths = [w for w, _ in layers]
    ranks = [round(f * w) for w, f in layers]
    limits = [threshold * w if threshold < 1 else threshold for w in widths]
    assert tunnel_length(ranks, widths, threshold) == sum(r < t for r, t in zip(ranks, limits, strict=True))


# ----- hooks and the measure ----------------------------------------------------------------------


def test_layer_outputs_stats_sees_pre_activations_even_with_inplace_relu():
    torch.manual_seed(0)
    model = mlp(inplace=True).double().eval()
    x = torch.randn(50, 20, dtype=F64)
    stats = layer_outputs_stats(model, x, chunk=16)
    assert sorted(stats) == [1, 2, 3] and [stats[i].width for i in (1, 2, 3)] == [16, 16, 3]
    with torch.no_grad():
        pre1 = model[0](x)
    assert (pre1 < 0).any()  # a post-ReLU mean would differ
    torch.testing.assert_close(stats[1].mean, pre1.mean(dim=0))
    torch.testing.assert_close(stats[1].covariance(), torch.cov(pre1.T))
    assert stats[1].n == 50 and no_hooks(model)


def test_layers_without_one_row_per_example_are_skipped():
    class Seq(nn.Module):  # a Linear on (B, T, C), then one on the flattened rows
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(4, 4), nn.Linear(12, 5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.b(self.a(x.reshape(len(x), 3, 4)).flatten(1))

    model = Seq()
    stats = layer_outputs_stats(model, torch.randn(30, 12), chunk=8)
    assert list(stats) == [2] and stats[2].n == 30


def test_measure_end_to_end_on_a_rank_deficient_layer():
    torch.manual_seed(0)
    model = mlp().eval()
    with torch.no_grad():  # 10 of layer 1's 16 units dead: its output, and what follows, has rank 6
        model[0].weight[6:] = 0
        model[0].bias[6:] = 0
    test_x = torch.randn(300, 20)
    ctx = context(model, torch.randn(40, 20), test_x)
    m = MEASURES.get("feature_rank")()
    out = m.compute(ctx)
    assert set(out) == {f"{k}/L{i}" for k in ("rank", "erank") for i in (1, 2, 3)} | {"tunnel_length", "tunnel_length_hidden"}
    assert (out["rank/L1"], out["rank/L2"], out["rank/L3"]) == (6.0, 6.0, 3.0)
    assert all(1.0 <= out[f"erank/L{i}"] <= out[f"rank/L{i}"] + 1e-9 for i in (1, 2, 3))
    assert out["tunnel_length"] == 2.0  # 6 < 0.75 * 16 for L1 and L2; 3 of 3 is not below 2.25
    assert out["tunnel_length_hidden"] == 2.0  # the same two: the output layer L3 is not in the tunnel
    ctx.cfg.measures.tunnel_threshold = 5.0  # absolute: the 3-way output layer (rank 3) counts, the hidden ones (6) do not
    out = m.compute(ctx)
    assert (out["tunnel_length"], out["tunnel_length_hidden"]) == (1.0, 0.0)
    acts = []
    hooks = [model[i].register_forward_hook(lambda mod, a, o: acts.append(o.double())) for i in (0, 2, 4)]
    with torch.no_grad():
        model(test_x)
    for h in hooks:
        h.remove()
    assert [out[f"rank/L{i + 1}"] for i in range(3)] == [float(torch.linalg.matrix_rank(torch.cov(a.T))) for a in acts]
    assert no_hooks(model)


def test_measure_options_rank_on_rtol_and_threshold():
    torch.manual_seed(1)
    model = mlp().eval()
    train_x = torch.zeros(100, 20)
    train_x[:, :2] = torch.randn(100, 2)  # train inputs span 2 dims; test inputs all 20
    ctx = context(model, train_x, torch.randn(100, 20))
    m = FeatureRank()
    assert m.compute(ctx)["rank/L1"] == 16.0
    ctx.cfg.measures.rank_on = "train"
    out = m.compute(ctx)
    assert out["rank/L1"] == 2.0 and out["rank/L2"] <= 16
    ctx.cfg.measures.rank_on = "test"
    ctx.cfg.measures.tunnel_threshold = 17.0  # absolute: every layer (ranks <= 16) is below it
    assert m.compute(ctx)["tunnel_length"] == 3.0
    ctx.cfg.measures.rank_rtol = 0.99  # only values within 1% of the largest count
    assert m.compute(ctx)["rank/L1"] < 16.0


def test_measure_registration_cadence_and_applicability():
    assert MEASURES.get("feature_rank") is FeatureRank and FeatureRank.every == 5
    spec = TaskSpec(n_classes=3, input_dim=20)
    assert FeatureRank.not_applicable(mlp(), spec) is None
    assert "nn.Linear" in FeatureRank.not_applicable(nn.Sequential(nn.ReLU()), spec)


def test_hooks_are_removed_when_the_forward_pass_fails():
    class Broken(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.fc(x)
            raise RuntimeError("boom")

    model = Broken()
    with pytest.raises(RuntimeError, match="boom"):
        layer_outputs_stats(model, torch.randn(5, 4))
    assert no_hooks(model)


def test_measure_leaves_the_global_rng_alone():
    torch.manual_seed(2)
    model = mlp().eval()
    ctx = context(model, torch.randn(30, 20), torch.randn(30, 20))
    state = torch.get_rng_state()
    FeatureRank().compute(ctx)
    assert torch.equal(torch.get_rng_state(), state)


def test_rank_of_a_float32_layer_with_a_large_mean_is_its_float64_rank():
    # rank 20 of 200 units whose mean is ~100x their spread: float32 round-off of the outputs is noise far above
    # the float64 tolerance, so the rank must be taken from the layer computed in float64
    g = torch.Generator().manual_seed(0)
    layer = nn.Linear(30, 200)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(200, 20, generator=g) @ torch.randn(20, 30, generator=g) / 30)
        layer.bias.copy_(100 * torch.randn(200, generator=g).abs() + 100)
    model = nn.Sequential(layer, nn.ReLU(), nn.Linear(200, 3))
    x = torch.randn(2000, 30, generator=g)
    out = FeatureRank().compute(context(model, x[:10], x))
    with torch.no_grad():
        a64 = copy.deepcopy(model).double()[0](x.double())
        a32 = model[0](x).double()
    assert int(torch.linalg.matrix_rank(torch.cov(a64.T))) == 20  # the oracle: the float64 layer
    assert out["rank/L1"] == 20.0
    assert int(torch.linalg.matrix_rank(torch.cov(a32.T))) > 40  # what float32 outputs would have read
    assert next(model.parameters()).dtype == torch.float32  # the run's model is left as it was


def test_feature_rank_in_float32_leaves_loss_acc_to_its_own_pass():
    torch.manual_seed(0)
    model = mlp()
    base = context(model, torch.randn(30, 20), torch.randn(40, 20))
    data = TaskData(base.data.train_x, torch.randint(0, 3, (30,)), base.data.test_x, torch.randint(0, 3, (40,)))
    alone = MEASURES.get("loss_acc")().compute(EvalContext(0, model, data, base.spec, base.cfg, {}))
    both = measure_all(EvalContext(0, model, data, base.spec, base.cfg, {}), [MEASURES.get("feature_rank")(), MEASURES.get("loss_acc")()])
    assert {k: both[k] for k in alone} == alone  # the float64 pass is not the run's evaluation: loss_acc keeps its own


def test_feature_rank_shares_loss_accs_forward_pass_with_identical_numbers():
    torch.manual_seed(0)
    model = mlp().double()
    base = context(model, torch.randn(30, 20, dtype=F64), torch.randn(40, 20, dtype=F64))
    data = TaskData(base.data.train_x, torch.randint(0, 3, (30,)), base.data.test_x, torch.randint(0, 3, (40,)))
    alone = MEASURES.get("loss_acc")().compute(EvalContext(0, model, data, base.spec, base.cfg, {}))
    calls = []
    handle = model.register_forward_hook(lambda *args: calls.append(1))
    try:
        ctx = EvalContext(0, model, data, base.spec, base.cfg, {})
        both = measure_all(ctx, [MEASURES.get("feature_rank")(), MEASURES.get("loss_acc")()])
    finally:
        handle.remove()
    assert {k: both[k] for k in alone} == alone  # the same chunked evaluation, bit for bit
    assert both["rank/L1"] == MEASURES.get("feature_rank")().compute(ctx)["rank/L1"]
    assert len(calls) == 2  # one pass over the test set (ranks and test loss), one over the train set (train loss)


def test_layer_numbers_come_from_the_hook_names_not_the_module_order():
    """rank/L{i} is the MLP's own layer i (its hook point layers.{i-1}.hook_pre), even when another Linear
    comes first in module order; a model without layer hook points numbers its Linears in order."""
    from groklab.measures.feature_rank import layer_names
    from groklab.models import DeepMLP

    class Wrapped(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.aux = nn.Linear(2, 2)  # first in module order, not a layer of the network
            self.mlp = DeepMLP(20, 3, depth=3, width=8)

        def forward(self, x):
            return self.mlp(x)

    assert layer_names(Wrapped()) == {"mlp.layers.0.hook_pre": 1, "mlp.layers.1.hook_pre": 2, "mlp.layers.2.hook_pre": 3}
    assert layer_names(nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))) == {"0": 1, "2": 2}
    torch.manual_seed(0)
    model = Wrapped().double()
    ctx = EvalContext(
        0,
        model,
        TaskData(
            torch.randn(30, 20, dtype=F64),
            torch.zeros(30, dtype=torch.long),
            torch.randn(40, 20, dtype=F64),
            torch.zeros(40, dtype=torch.long),
        ),
        TaskSpec(n_classes=3, input_dim=20),
        resolve_config(None, ["measures.enabled=[loss_acc,feature_rank]"]),
    )
    out = MEASURES.get("feature_rank")().compute(ctx)
    assert sorted(k for k in out if k.startswith("rank/")) == ["rank/L1", "rank/L2", "rank/L3"] and out["rank/L3"] <= 3
