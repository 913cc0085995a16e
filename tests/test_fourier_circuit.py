"""Nanda et al.'s Fourier circuit measures against direct computations, a hand-built circuit and random networks."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from groklab.cli.main import main
from groklab.config import resolve_config
from groklab.errors import ConfigError
from groklab.measures import MEASURES, EvalContext
from groklab.measures.fourier_circuit import (
    fourier_basis,
    frequency_norms,
    gini,
    key_frequencies,
    neuron_frequencies,
    restricted_and_excluded,
)
from groklab.training.setup import prepare
from helpers import TINY

P = 13
A, B = torch.meshgrid(torch.arange(P), torch.arange(P), indexing="ij")
A, B = A.flatten().double(), B.flatten().double()  # input (a, b) at row a·p + b
W = 2 * math.pi / P


def test_neuron_shares_equal_the_real_basis_blocks():
    """Oracle: the neuron's 2-D coefficients in the real Fourier basis, and the 3 x 3 block of each frequency."""
    gen = torch.Generator().manual_seed(0)
    acts = torch.randn(P * P, 6, generator=gen, dtype=torch.float64)
    k, share = neuron_frequencies(acts, P)
    basis = fourier_basis(P)
    assert torch.allclose(basis @ basis.T, torch.eye(P, dtype=torch.float64), atol=1e-12)  # orthonormal
    centred = acts - acts.mean(0)
    coef = torch.einsum("xym,fx,gy->fgm", centred.reshape(P, P, -1), basis, basis)
    for m in range(6):
        blocks = []
        for f in range(1, P // 2 + 1):
            idx = torch.tensor([0, 2 * f - 1, 2 * f])
            blocks.append(coef[idx][:, idx, m].square().sum() / coef[:, :, m].square().sum())
        best = int(torch.stack(blocks).argmax()) + 1
        assert int(k[m]) == best and share[m].item() == pytest.approx(blocks[best - 1].item(), rel=1e-10)


def circuit(freqs: tuple[int, ...], op: str = "add", scale: float = 10.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Neurons cos(w k (a ± b) + phase) for each key k, logits scale · sum_k cos(w k (a ± b - c)), the labels."""
    s = A + B if op == "add" else A - B
    acts = torch.stack([torch.cos(W * k * s + phase) for k in freqs for phase in (0.0, 1.0, 2.0)], dim=1)
    c = torch.arange(P).double()
    logits = scale * sum(torch.cos(W * k * (s[:, None] - c[None, :])) for k in freqs)
    return acts, logits, (s.long() % P)


@pytest.mark.parametrize("op", ["add", "sub"])
def test_a_hand_built_circuit_keeps_its_loss_restricted_and_loses_it_excluded(op):
    acts, logits, labels = circuit((2, 5), op)
    assert key_frequencies(acts, P, 0.5) == [2, 5]
    is_train = torch.arange(P * P) % 3 == 0
    full = F.cross_entropy(logits, labels).item()
    restricted, excluded = restricted_and_excluded(logits, labels, is_train, P, [2, 5], op)
    assert full < 0.01 and restricted == pytest.approx(full, abs=1e-9)  # the logits are the key terms
    assert excluded == pytest.approx(math.log(P), abs=1e-9)  # nothing left: uniform logits
    wrong_sign = "sub" if op == "add" else "add"  # the other operation's directions miss these terms
    assert restricted_and_excluded(logits, labels, is_train, P, [2, 5], wrong_sign)[1] == pytest.approx(
        F.cross_entropy(logits[is_train], labels[is_train]).item(), abs=1e-9
    )


def test_a_random_network_has_no_key_frequency_and_the_reverse_losses():
    gen = torch.Generator().manual_seed(1)
    acts = torch.randn(P * P, 64, generator=gen, dtype=torch.float64)
    logits = torch.randn(P * P, P, generator=gen, dtype=torch.float64)
    labels = ((A + B) % P).long()
    is_train = torch.rand(P * P, generator=gen) < 0.3
    assert key_frequencies(acts, P, 0.5) == []
    assert len(key_frequencies(acts, P, 0.0)) > 3  # their code's rule: every neuron's best frequency is "key"
    restricted, excluded = restricted_and_excluded(logits, labels, is_train, P, [], "add")
    assert excluded == pytest.approx(F.cross_entropy(logits[is_train], labels[is_train]).item(), abs=1e-12)  # nothing removed
    mean_only = logits.mean(0, keepdim=True).expand_as(logits)  # bias correction alone
    assert restricted == pytest.approx(F.cross_entropy(mean_only, labels).item(), abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(xs=st.lists(st.floats(0, 100), min_size=1, max_size=30))
def test_gini_is_the_mean_absolute_difference_over_twice_the_mean(xs):
    x = torch.tensor(xs, dtype=torch.float64)
    n = len(xs)
    expected = 0.0 if x.sum() == 0 else float((x[:, None] - x[None, :]).abs().sum() / (2 * n * n * x.mean()))
    assert gini(x) == pytest.approx(expected, abs=1e-9)


def test_frequency_norms_find_a_pure_frequency():
    x = torch.arange(P).double()
    emb = torch.stack([torch.cos(W * 4 * x), torch.sin(W * 4 * x), torch.ones(P)], dim=1)  # (p, 3)
    norms = frequency_norms(emb, P)
    assert int(norms.argmax()) + 1 == 4 and norms.sum() == pytest.approx(norms[3].item())
    assert gini(norms) == pytest.approx((len(norms) - 1) / len(norms))  # all in one frequency


def test_the_measure_on_a_transformer_reads_every_pair():
    """Wiring, against the model's own logits: with no key frequency (a share of 1 is out of reach), nothing is
    excluded from the train loss and the restricted logits are the mean logits over all p² pairs."""
    cfg = resolve_config(None, [*TINY, "measures.enabled=[loss_acc,fourier_circuit]", "measures.fourier_key_frac=1"])
    prep = prepare(cfg)
    model = prep.model.eval()
    out = MEASURES.get("fourier_circuit")().compute(EvalContext(0, model, prep.data, prep.spec, cfg))
    assert out["fourier_key_freqs"] == 0
    d = prep.data
    with torch.no_grad():
        train_logits, test_logits = model(d.train_x).double(), model(d.test_x).double()
    assert out["fourier_excluded_loss"] == pytest.approx(F.cross_entropy(train_logits, d.train_y).item(), rel=1e-5)
    every = torch.cat([train_logits, test_logits])
    mean_only = every.mean(0, keepdim=True).expand_as(every)
    assert out["fourier_restricted_loss"] == pytest.approx(F.cross_entropy(mean_only, torch.cat([d.train_y, d.test_y])).item(), rel=1e-5)
    assert 0 <= out["fourier_gini_embed"] < 0.5 and 0 <= out["fourier_gini_logit"] < 0.5


def test_a_task_without_the_additive_basis_is_refused_at_config_time(capsys, tmp_path):
    with pytest.raises(ConfigError, match=r"task\.op=add or sub"):
        prepare(resolve_config(None, [*TINY, "task.op=mul", "measures.enabled=[loss_acc,fourier_circuit]"]))
    args = ["run", *TINY, "task.op=div", "measures.enabled=[loss_acc,fourier_circuit]", "--runs-dir", str(tmp_path / "r")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "fourier_circuit" in err[0] and not (tmp_path / "r").exists()
    with pytest.raises(ConfigError, match=r"measures\.fourier_key_frac"):
        resolve_config(None, ["measures.fourier_key_frac=2"])
