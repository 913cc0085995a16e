"""The Toeplitz embedding init (Gu et al. 2025, App. E): its structure, where models put it, and its config key."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import groklab
from groklab.cli.main import main
from groklab.errors import ConfigError
from groklab.measures.uniformity import consecutive_distances, uniformity
from groklab.models import EmbeddingMLP, Transformer, TransformerShape, build_model
from groklab.models.embedding_init import apply_embed_init, toeplitz_embedding
from groklab.models.mlp import MLPConfig
from groklab.models.transformer import TransformerConfig
from groklab.tasks import TaskSpec

P = 13
SPEC = TaskSpec(n_classes=P, vocab_size=P + 1, seq_len=3, n_operand_tokens=P)


def is_toeplitz(m: torch.Tensor) -> bool:
    """Every diagonal constant: m[i+1, j+1] == m[i, j]."""
    return bool(torch.equal(m[1:, 1:], m[:-1, :-1]))


@settings(max_examples=40, deadline=None)
@given(p=st.integers(1, 40), d=st.integers(1, 40), std=st.floats(0.01, 10.0), seed=st.integers(0, 10_000))
def test_toeplitz_rows_are_shifts_of_one_random_vector(p, d, std, seed):
    e = toeplitz_embedding(p, d, torch.Generator().manual_seed(seed), std=std)
    assert e.shape == (p, d)
    assert is_toeplitz(e)
    # E[i, j] = v[i - j + d - 1]: the first row read backwards, then the first column, is v
    v = torch.cat([e[0].flip(0), e[1:, 0]])
    assert len(v) == p + d - 1
    torch.testing.assert_close(v, torch.randn(p + d - 1, generator=torch.Generator().manual_seed(seed)) * std)
    for i in range(p - 1):  # row i+1 = row i moved one column right, with v[i + d] entering at column 0
        assert torch.equal(e[i + 1, 1:], e[i, :-1]) and e[i + 1, 0] == v[i + d]


@settings(max_examples=20, deadline=None)
@given(p=st.integers(2, 30), d=st.integers(1, 30), seed=st.integers(0, 10_000))
def test_consecutive_distances_are_sliding_sums_of_one_difference_sequence(p, d, seed):
    e = toeplitz_embedding(p, d, torch.Generator().manual_seed(seed)).double()
    v = torch.cat([e[0].flip(0), e[1:, 0]])
    dv2 = (v[1:] - v[:-1]).square()  # (p + d - 2,)
    expected = torch.stack([dv2[i : i + d].sum() for i in range(p - 1)]).sqrt()  # ‖E[i+1] − E[i]‖ over a window of d
    torch.testing.assert_close((e[1:] - e[:-1]).norm(dim=1), expected)


def test_toeplitz_spacing_is_more_even_than_iid_rows_but_not_exactly_even():
    # Gu et al.'s setting, p = 97 and d_model = 128, over 20 draws each (measured: 0.035 vs 0.061 on average)
    p, d = 97, 128
    toe = [uniformity(toeplitz_embedding(p, d, torch.Generator().manual_seed(s)), wrap=True) for s in range(20)]
    iid = [uniformity(torch.randn(p, d, generator=torch.Generator().manual_seed(s)), wrap=True) for s in range(20)]
    assert sum(toe) / 20 < 0.7 * sum(iid) / 20
    assert min(toe) > 0  # the windows differ: equal spacing holds in expectation only
    # and the MED scale matches i.i.d. rows of the same std: E‖φ(i+1) − φ(i)‖² = 2 d std² either way
    dist = torch.cat([consecutive_distances(toeplitz_embedding(p, d, torch.Generator().manual_seed(s), std=0.5)) for s in range(20)])
    assert dist.square().mean().item() == pytest.approx(2 * d * 0.25, rel=0.05)


def test_toeplitz_uses_the_global_rng_when_no_generator_is_given():
    torch.manual_seed(3)
    a = toeplitz_embedding(5, 7)
    torch.manual_seed(3)
    assert torch.equal(a, toeplitz_embedding(5, 7))
    assert not torch.equal(a, toeplitz_embedding(5, 7))


def test_apply_embed_init_touches_only_the_number_rows():
    w = torch.zeros(6, 4)
    apply_embed_init(w, "default", 5, 1.0)
    assert torch.all(w == 0)
    apply_embed_init(w, "toeplitz", 5, 1.0)
    assert is_toeplitz(w[:5]) and torch.all(w[5] == 0) and w[:5].abs().min() > 0
    with pytest.raises(ValueError, match="embed_init"):
        apply_embed_init(w, "bogus", 5, 1.0)
    with pytest.raises(ValueError, match="7 number-token rows"):
        apply_embed_init(w, "toeplitz", 7, 1.0)


@pytest.mark.parametrize(
    "cfg",
    [
        TransformerConfig(d_model=16, n_heads=2, d_mlp=32, init_scale=3.0),
        TransformerConfig(d_model=16, n_heads=2, d_mlp=32, init="torch", init_scale=0.5),
        MLPConfig(d_model=8, d_mlp=32, n_layers=2, init_scale=2.0),
    ],
    ids=["transformer-nanda", "transformer-torch", "mlp"],
)
def test_models_carry_the_toeplitz_rows_scaled_by_init_scale(cfg):
    torch.manual_seed(7)
    plain = build_model(cfg, SPEC)
    toe = replace(cfg, embed_init="toeplitz")
    toe.validate()
    torch.manual_seed(7)
    model = build_model(toe, SPEC)
    emb = model.token_embedding.detach()
    assert is_toeplitz(emb[:P]) and not is_toeplitz(emb)  # the "=" row keeps its default init ...
    torch.testing.assert_close(emb[P], plain.token_embedding[P])  # ... the very same one
    # drawn after the default init: every other parameter is as under embed_init=default with the same seed
    for (name, a), (_, b) in zip(model.named_parameters(), plain.named_parameters(), strict=True):
        if a is not model.token_embedding:
            torch.testing.assert_close(a, b, msg=name)
    # the rows are the global RNG's next toeplitz_embedding(p, d, std) after the default init, times init_scale
    std = 1.0 if getattr(cfg, "init", "") == "torch" else cfg.d_model**-0.5  # the std of the default embedding init
    torch.manual_seed(7)
    build_model(cfg, SPEC)
    torch.testing.assert_close(emb[:P], toeplitz_embedding(P, cfg.d_model, std=std) * cfg.init_scale)
    assert model(torch.randint(0, P + 1, (5, 3))).shape == (5, P)


def test_models_outside_groklab_structure_the_whole_vocabulary_by_default():
    t = Transformer(TransformerShape(vocab_size=10, n_classes=7, seq_len=3, d_model=8, n_heads=2, d_mlp=16, embed_init="toeplitz"))
    assert is_toeplitz(t.token_embedding.detach())
    m = EmbeddingMLP(10, 3, 7, d_model=8, embed_init="toeplitz", n_number_tokens=6)
    assert is_toeplitz(m.token_embedding.detach()[:6]) and not is_toeplitz(m.token_embedding.detach()[:7])
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
    steps, values = run.metrics(["uniformity"])["uniformity"]
    assert steps[0] == 0 and 0 < values[0] < 0.5
