"""Prieto et al.'s StableMax loss and ⊥Grad, against direct computations, and in ensembles as in lone runs."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import groklab
from groklab.config import resolve_config
from groklab.errors import ConfigError
from groklab.losses import example_losses, mean_loss
from groklab.measures import EvalContext
from groklab.measures.nlm_alignment import NlmAlignment
from groklab.measures.softmax_collapse import SoftmaxCollapse, collapse_counts
from groklab.models.deep_mlp import DeepMLP
from groklab.tasks import TaskData, TaskSpec, build_task
from groklab.training.orthograd import orthogonalize_
from helpers import TINY
from test_ensemble import assert_members_match_lone_runs


def test_stablemax_by_hand():
    z = torch.tensor([[2.0, -1.0, 0.0]])
    s = [3.0, 0.5, 1.0]  # x + 1 for x >= 0, 1 / (1 - x) below
    assert mean_loss(z, torch.tensor([0]), "stablemax").item() == pytest.approx(-math.log(3.0 / sum(s)), abs=1e-12)
    assert mean_loss(z, torch.tensor([1]), "stablemax").dtype == torch.float64  # computed in float64, as their code


@settings(max_examples=40, deadline=None)
@given(k=st.integers(1, 4), b=st.integers(1, 6), c=st.integers(2, 7), seed=st.integers(0, 10**6))
def test_stablemax_for_a_stack_is_each_members_own_mean(k, b, c, seed):
    gen = torch.Generator().manual_seed(seed)
    z, y = 10 * torch.randn(k, b, c, generator=gen), torch.randint(0, c, (k, b), generator=gen)
    stacked = mean_loss(z, y, "stablemax")
    assert stacked.shape == (k,)
    for m in range(k):
        assert stacked[m].item() == pytest.approx(mean_loss(z[m], y[m], "stablemax").item(), rel=1e-12)


def test_stablemax_keeps_a_gradient_where_softmax_collapses():
    """Softmax collapse: at logit gaps of 200 the float32 cross-entropy is exactly 0 and so is its gradient;
    StableMax still has both."""
    z = torch.tensor([[200.0, 0.0, -5.0]], requires_grad=True)
    y = torch.tensor([0])
    ce = F.cross_entropy(z, y)
    (g_ce,) = torch.autograd.grad(ce, z)
    assert ce.item() == 0.0 and (g_ce == 0).all()
    sm = mean_loss(z, y, "stablemax")
    (g_sm,) = torch.autograd.grad(sm, z)
    assert sm.item() > 0 and g_sm.abs().sum() > 0


@settings(max_examples=40, deadline=None)
@given(shape=st.sampled_from([(5,), (3, 4), (2, 3, 2)]), seed=st.integers(0, 10**6))
def test_orthograd_removes_the_component_along_the_weights_and_keeps_the_norm(shape, seed):
    gen = torch.Generator().manual_seed(seed)
    p = torch.nn.Parameter(torch.randn(shape, generator=gen, dtype=torch.float64))
    g = torch.randn(shape, generator=gen, dtype=torch.float64)
    p.grad = g.clone()
    orthogonalize_([p])
    w, new = p.detach().flatten(), p.grad.flatten()
    assert abs(torch.dot(w, new).item()) < 1e-10 * w.norm().item() * new.norm().item() + 1e-12
    assert new.norm().item() == pytest.approx(g.norm().item(), rel=1e-10)
    expected = g.flatten() - torch.dot(w, g.flatten()) / torch.dot(w, w) * w  # the projection, before rescaling
    assert torch.allclose(new / new.norm(), expected / expected.norm(), atol=1e-10)


def test_orthograd_projects_each_member_on_its_own_weights():
    gen = torch.Generator().manual_seed(0)
    stacked = torch.nn.Parameter(torch.randn(3, 4, 5, generator=gen, dtype=torch.float64))
    stacked.grad = torch.randn(3, 4, 5, generator=gen, dtype=torch.float64)
    alone = [torch.nn.Parameter(stacked[k].detach().clone()) for k in range(3)]
    for k, a in enumerate(alone):
        a.grad = stacked.grad[k].clone()
    orthogonalize_([stacked], stacked=True)
    orthogonalize_(alone)
    for k, a in enumerate(alone):
        torch.testing.assert_close(stacked.grad[k], a.grad, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("variant", [["optim.loss=stablemax"], ["optim.orthograd=true", "optim.weight_decay=0"]])
def test_ensemble_members_match_lone_runs_with_the_stability_kit(tmp_path, variant):
    """In float64: in float32 the two reassociate differently and StableMax's early steps amplify that to ~2e-3
    (float64 agrees to 3e-16, so the difference is round-off, not the method)."""
    assert_members_match_lone_runs(tmp_path, [*TINY, *variant, "run.dtype=float64"])


def test_an_unknown_loss_names_the_choices():
    with pytest.raises(ConfigError, match="stablemax"):
        resolve_config(None, ["optim.loss=stablemaxx"])


def test_stablemax_gradient_by_finite_differences():
    z = torch.randn(4, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64).mul(3).requires_grad_()
    y = torch.tensor([0, 3, 4, 1])
    assert torch.autograd.gradcheck(lambda t: mean_loss(t, y, "stablemax"), (z,), eps=1e-6, atol=1e-7)


@pytest.mark.parametrize("kind", ["ce", "mse", "stablemax"])
def test_example_losses_average_to_the_mean_loss(kind):
    gen = torch.Generator().manual_seed(2)
    z, y = 4 * torch.randn(7, 5, generator=gen, dtype=torch.float64), torch.randint(0, 5, (7,), generator=gen)
    per = example_losses(z, y, kind)
    assert per.shape == (7,)
    assert per.mean().item() == pytest.approx(mean_loss(z, y, kind).item(), rel=1e-12)


def test_the_loss_dtype_decides_where_the_softmax_collapses():
    """A logit gap of 25: past float32's resolution (about 17), inside float64's (about 37)."""
    z, y = torch.tensor([[25.0, 0.0, 0.0]]), torch.tensor([0])
    assert mean_loss(z, y, "ce", "float32").item() == 0.0
    exact = math.log1p(2 * math.exp(-25.0))
    assert mean_loss(z, y, "ce", "float64").item() == pytest.approx(exact, rel=1e-9)
    assert mean_loss(z, y, "ce", "float64").dtype == torch.float64
    assert collapse_counts(z, y, "ce", "float32") == (1, 1)
    assert collapse_counts(z, y, "ce", "float64") == (0, 0)


def test_collapse_counts_by_hand():
    z = torch.tensor([[30.0, 0.0], [0.0, 30.0], [1.0, 0.0], [0.0, 40.0]])
    y = torch.tensor([0, 0, 0, 1])  # row 2 collapsed on the wrong class: the softmax is one-hot, the loss is 30
    assert collapse_counts(z, y, "ce", "float32") == (2, 3)


def _context(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, overrides: list[str]) -> EvalContext:
    cfg = resolve_config("prieto2025", ["task.p=5", *overrides])
    return EvalContext(0, model, TaskData(x, y, x[:2], y[:2]), TaskSpec(n_classes=5, input_dim=x.shape[1]), cfg)


def test_the_softmax_collapse_measure_counts_the_train_set_in_chunks():
    gen = torch.Generator().manual_seed(3)
    x, y = torch.randn(50, 6, generator=gen), torch.randint(0, 5, (50,), generator=gen)
    model = DeepMLP(6, 5, depth=2, width=8, bias=False)
    with torch.no_grad():
        model.net[-1].weight.mul_(torch.linspace(0, 400, 5).unsqueeze(1))  # some rows collapse, some do not
    ctx = _context(model, x, y, ["schedule.eval_batch_size=7"])
    logits = model(x)
    direct = (F.cross_entropy(logits, y, reduction="none") == 0).double().mean().item()
    e = torch.exp(logits - logits.amax(-1, keepdim=True)).sum(-1)
    got = SoftmaxCollapse().compute(ctx)
    assert got == {"sc_zero_loss": direct, "sc_collapse": (e == 1).double().mean().item()}
    assert 0 < got["sc_collapse"] < 1


@pytest.mark.parametrize("kind", ["ce", "stablemax"])
def test_nlm_alignment_against_eulers_identity(kind):
    """A bias-free ReLU network of depth L is L-homogeneous: θ·∇θ z = L z, so θ·∇L = L · mean((∂ℓ/∂z)·z),
    which needs only the logits."""
    gen = torch.Generator().manual_seed(4)
    x, y = torch.randn(40, 6, generator=gen, dtype=torch.float64), torch.randint(0, 5, (40,), generator=gen)
    model = DeepMLP(6, 5, depth=3, width=9, bias=False).double()
    ctx = _context(model, x, y, [f"optim.loss={kind}", "optim.loss_dtype=auto", "schedule.eval_batch_size=16"])
    z = model(x).detach().requires_grad_()
    (dz,) = torch.autograd.grad(mean_loss(z, y, kind), z)
    w_dot_g = 3 * (dz * z).sum().item()
    g_norm = torch.cat([p.grad.reshape(-1) for p in _grads(model, x, y, kind)]).norm().item()
    w_norm = torch.cat([p.detach().reshape(-1) for p in model.parameters()]).norm().item()
    assert NlmAlignment().compute(ctx)["nlm_cos"] == pytest.approx(-w_dot_g / (g_norm * w_norm), rel=1e-9)
    assert all(p.grad is None for p in model.parameters())  # the measure left the training gradients alone


def _grads(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, kind: str) -> list[torch.nn.Parameter]:
    clone = copy.deepcopy(model)
    mean_loss(clone(x), y, kind).backward()
    return list(clone.parameters())


def test_the_onehot_format_concatenates_two_one_hot_vectors():
    cfg = resolve_config("prieto2025", ["task.p=7"])
    task = build_task(cfg.task)
    data = task.build()
    assert task.spec.input_dim == 14 and data.train_x.shape[1] == 14
    a, b = data.train_x[:, :7].argmax(1), data.train_x[:, 7:].argmax(1)
    assert (data.train_x.sum(1) == 2).all() and torch.equal(data.train_y, (a + b) % 7)
    assert len(data.train_y) == int(0.4 * 49) and len(data.test_y) == 49 - len(data.train_y)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        (["model.name=transformer"], "model.name"),
        (["task.n_tokens=300"], "task.n_tokens"),
        (["optim.loss_dtype=float16"], "optim.loss_dtype"),
    ],
)
def test_bad_stability_settings_name_their_field(overrides, field):
    with pytest.raises(ConfigError) as err:
        resolve_config("prieto2025", overrides)
    assert err.value.field == field


def test_the_prieto_preset_runs_and_logs_collapse(tmp_path):
    run = groklab.run("prieto2025", ["task.p=11", "model.width=16", "schedule.steps=30", "run.device=cpu"], runs_dir=tmp_path)
    final = run.final()
    assert {"sc_zero_loss", "sc_collapse", "nlm_cos"} <= set(final)
    assert 0.0 <= final["sc_zero_loss"] <= 1.0 and -1.0 <= final["nlm_cos"] <= 1.0
