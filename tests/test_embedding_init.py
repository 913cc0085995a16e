"""The Toeplitz embedding init (Gu et al. 2025, App. E): its structure, where models put it, and its config key."""

from __future__ import annotations

import math
import statistics
from dataclasses import replace

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import groklab
from groklab.cli.main import main
from groklab.errors import ConfigError
from groklab.measures.med import med
from groklab.models import EmbeddingMLP, Transformer, TransformerShape, build_model
from groklab.models.embedding_init import apply_embed_init, toeplitz_embedding
from groklab.models.mlp import MLPConfig
from groklab.models.transformer import TransformerConfig
from groklab.tasks import TaskSpec

P = 13
SPEC = TaskSpec(n_classes=P, vocab_size=P + 1, seq_len=3, n_operand_tokens=P)


def authors_toeplitz(v: list[float], d: int, d_vocab: int) -> torch.Tensor:
    """Their rec.py, written out: T = toeplitz(v, v) (T[i, j] = v[|i - j|]), W_E = T[:, :d_vocab] / sqrt(d), as token rows."""
    cols = [[v[abs(i - j)] / math.sqrt(d) for i in range(d)] for j in range(d_vocab)]
    return torch.tensor(cols, dtype=torch.float64)


def is_toeplitz(m: torch.Tensor) -> bool:
    """Every diagonal constant: m[i+1, j+1] == m[i, j]."""
    return bool(torch.equal(m[1:, 1:], m[:-1, :-1]))


@settings(max_examples=40, deadline=None)
@given(d=st.integers(1, 40), data=st.data(), seed=st.integers(0, 10_000))
def test_toeplitz_is_the_authors_construction(d, data, seed):
    n = data.draw(st.integers(1, d))  # their code needs d_vocab <= d_model
    e = toeplitz_embedding(n, d, torch.Generator().manual_seed(seed))
    v = torch.rand(d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).tolist()  # v ~ U[0, 1), length d_model
    torch.testing.assert_close(e, authors_toeplitz(v, d, n), rtol=0, atol=0)
    assert is_toeplitz(e) and torch.equal(e[:, : min(n, d)], e[:, : min(n, d)].T)  # symmetric in its square part


@settings(max_examples=20, deadline=None)
@given(d=st.integers(1, 20), extra=st.integers(1, 20), seed=st.integers(0, 10_000))
def test_more_tokens_than_dims_extend_the_same_pattern(d, extra, seed):
    n = d + extra
    e = toeplitz_embedding(n, d, torch.Generator().manual_seed(seed))
    v = torch.rand(n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).tolist()
    torch.testing.assert_close(e, authors_toeplitz(v, d, n), rtol=0, atol=0)


def test_statistics_at_init_are_the_authors_not_gaussian_rows():
    # p = 97 (98 tokens with "="), d_model = 128: the figures, MED ~ 0.42 against ~ 1.41 for N(0, 1/d) rows
    p, d = 97, 128
    toe = [toeplitz_embedding(p + 1, d, torch.Generator().manual_seed(s)) for s in range(20)]
    meds = [med(e[:p], wrap=False) for e in toe]
    assert statistics.mean(meds) == pytest.approx(math.sqrt(1 / 6), rel=0.05)  # E(v_i - v_(i+1))^2 = 1/6 for U[0, 1)
    gauss = [med(torch.randn(p, d, generator=torch.Generator().manual_seed(s)) / math.sqrt(d), wrap=False) for s in range(20)]
    assert statistics.mean(gauss) == pytest.approx(math.sqrt(2), rel=0.05)
    for e in toe:  # entries in [0, 1/sqrt(d)), mean 0.5/sqrt(d): not centred, unlike any default init
        assert e.min() >= 0 and e.max() < 1 / math.sqrt(d)
    assert torch.stack(toe).mean().item() * math.sqrt(d) == pytest.approx(0.5, abs=0.03)


def test_toeplitz_uses_the_global_rng_when_no_generator_is_given():
    torch.manual_seed(3)
    a = toeplitz_embedding(5, 7)
    torch.manual_seed(3)
    assert torch.equal(a, toeplitz_embedding(5, 7))
    assert not torch.equal(a, toeplitz_embedding(5, 7))


def test_apply_embed_init_covers_every_row():
    w = torch.zeros(6, 4)
    apply_embed_init(w, "default")
    assert torch.all(w == 0)
    apply_embed_init(w, "toeplitz")
    assert is_toeplitz(w) and w.min() >= 0 and w.abs().sum() > 0
    with pytest.raises(ValueError, match="embed_init"):
        apply_embed_init(w, "bogus")


@pytest.mark.parametrize(
    "cfg",
    [
        TransformerConfig(d_model=16, n_heads=2, d_mlp=32, init_scale=3.0),
        TransformerConfig(d_model=16, n_heads=2, d_mlp=32, init="torch", init_scale=0.5),
        MLPConfig(d_model=8, d_mlp=32, n_layers=2, init_scale=2.0),
    ],
    ids=["transformer-nanda", "transformer-torch", "mlp"],
)
def test_models_carry_the_toeplitz_embedding_scaled_by_init_scale(cfg):
    torch.manual_seed(7)
    plain = build_model(cfg, SPEC)
    toe = replace(cfg, embed_init="toeplitz")
    toe.validate()
    torch.manual_seed(7)
    model = build_model(toe, SPEC)
    emb = model.token_embedding.detach()
    assert is_toeplitz(emb)  # every token, "=" included, as the authors' W_E[:, :d_vocab]
    # drawn after the default init: every other parameter is as under embed_init=default with the same seed
    for (name, a), (_, b) in zip(model.named_parameters(), plain.named_parameters(), strict=True):
        if a is not model.token_embedding:
            torch.testing.assert_close(a, b, msg=name)
    # the rows are the global RNG's next toeplitz_embedding after the default init, times init_scale
    torch.manual_seed(7)
    build_model(cfg, SPEC)
    torch.testing.assert_close(emb, (toeplitz_embedding(P + 1, cfg.d_model) * cfg.init_scale).float())
    assert model(torch.randint(0, P + 1, (5, 3))).shape == (5, P)


def test_models_outside_groklab_structure_the_whole_vocabulary():
    t = Transformer(TransformerShape(vocab_size=10, n_classes=7, seq_len=3, d_model=8, n_heads=2, d_mlp=16, embed_init="toeplitz"))
    assert is_toeplitz(t.token_embedding.detach())
    m = EmbeddingMLP(10, 3, 7, d_model=8, embed_init="toeplitz")
    assert is_toeplitz(m.token_embedding.detach())
    with pytest.raises(ValueError, match="embed_init"):
        Transformer(TransformerShape(vocab_size=10, n_classes=7, seq_len=3, d_model=8, n_heads=2, d_mlp=16, embed_init="circulant"))


@pytest.mark.parametrize("cfg", [TransformerConfig(embed_init="bogus"), MLPConfig(embed_init="bogus")], ids=["transformer", "mlp"])
def test_unknown_embed_init_is_a_config_error(cfg):
    with pytest.raises(ConfigError, match="choose default or toeplitz") as exc:
        cfg.validate()
    assert exc.value.field == "model.embed_init"


@pytest.mark.parametrize("model", ["transformer", "mlp"])
def test_cli_rejects_a_bogus_embed_init_and_writes_nothing(capsys, tiny, runs_dir, model):
    args = [a for a in tiny if model == "transformer" or not a.startswith("model.n_heads")]  # the MLP has no heads
    code = main(["run", *args, f"model.name={model}", "model.embed_init=bogus", "--runs-dir", str(runs_dir)])
    _, err = capsys.readouterr()
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("groklab: error: model.embed_init"), err
    assert not runs_dir.exists()


def test_a_toeplitz_run_trains_and_records_its_init(tiny, runs_dir):
    run = groklab.run(
        None, [*tiny, "schedule.steps=20", "model.embed_init=toeplitz", "measures.enabled=[loss_acc,med,uniformity]"], runs_dir=runs_dir
    )
    assert run.record.status == "finished"
    assert run.config.model.embed_init == "toeplitz"
    steps, values = run.metrics(["med"])["med"]
    assert steps[0] == 0 and 0 < values[0] < 0.8  # about sqrt(1/6) = 0.41; Gaussian rows start near sqrt(2)
