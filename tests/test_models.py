"""Model shapes, the init-scale multiplier, and the last-position shortcut."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from groklab.models import EmbeddingMLP, Transformer, TransformerShape, build_model, scale_parameters
from groklab.models.mlp import MLPConfig
from groklab.models.transformer import TransformerConfig
from groklab.tasks import TaskSpec

SPEC = TaskSpec(n_classes=13, vocab_size=14, seq_len=3, n_operand_tokens=13)


def reference_forward(m: Transformer, idx: torch.Tensor) -> torch.Tensor:
    """Reference: the transformer written out from its parameters alone with einsum (no module code),
    every position computed, the last one read."""
    s, P = m.shape, dict(m.named_parameters())
    B, T = idx.shape
    C, H = s.d_model, s.n_heads
    D = C // H

    def ln(h: torch.Tensor, name: str) -> torch.Tensor:
        return F.layer_norm(h, (C,), P[f"{name}.weight"], P[f"{name}.bias"])

    def attention(h: torch.Tensor, i: int) -> torch.Tensor:
        q, k, v = (torch.einsum("btc,dc->btd", h, P[f"blocks.{i}.attn.{n}_proj.weight"]).view(B, T, H, D) for n in "qkv")
        scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(D)
        if s.causal:
            scores = scores.masked_fill(torch.ones(T, T).triu(1).bool(), float("-inf"))
        y = torch.einsum("bhqk,bkhd->bqhd", scores.softmax(-1), v).reshape(B, T, C)
        return torch.einsum("btc,dc->btd", y, P[f"blocks.{i}.attn.out_proj.weight"])

    def mlp(h: torch.Tensor, i: int) -> torch.Tensor:
        hidden = torch.relu(torch.einsum("btc,mc->btm", h, P[f"blocks.{i}.mlp.fc_in.weight"]) + P[f"blocks.{i}.mlp.fc_in.bias"])
        return torch.einsum("btm,cm->btc", hidden, P[f"blocks.{i}.mlp.fc_out.weight"]) + P[f"blocks.{i}.mlp.fc_out.bias"]

    x = P["tok_emb.weight"][idx] + P["pos_emb.weight"][:T]
    for i in range(s.n_layers):
        if s.norm == "post":
            x = ln(x + attention(x, i), f"blocks.{i}.ln_1")
            x = ln(x + mlp(x, i), f"blocks.{i}.ln_2")
        elif s.norm == "pre":
            x = x + attention(ln(x, f"blocks.{i}.ln_1"), i)
            x = x + mlp(ln(x, f"blocks.{i}.ln_2"), i)
        else:
            x = x + attention(x, i)
            x = x + mlp(x, i)
    last = ln(x[:, -1], "ln_f") if s.norm == "pre" else x[:, -1]
    return torch.einsum("bc,kc->bk", last, P["unembed.weight"])


@settings(max_examples=20, deadline=None)
@given(
    n_layers=st.integers(1, 3),
    n_heads=st.sampled_from([1, 2, 4]),
    norm=st.sampled_from(["none", "pre", "post"]),
    causal=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_last_position_shortcut_equals_full_computation(n_layers, n_heads, norm, causal, seed):
    torch.manual_seed(seed)
    m = Transformer(
        TransformerShape(
            vocab_size=14, n_classes=13, seq_len=3, d_model=16, n_heads=n_heads, n_layers=n_layers, d_mlp=32, norm=norm, causal=causal
        )
    ).double()
    idx = torch.randint(0, 14, (50, 3))
    out = m(idx)  # the fast path (transformer_fast.py)
    assert out.shape == (50, 13)
    torch.testing.assert_close(out, reference_forward(m, idx), rtol=1e-10, atol=1e-10)
    m.fast = False  # the plain forward
    torch.testing.assert_close(m(idx), reference_forward(m, idx), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(m(idx[:5]), reference_forward(m, idx[:5]), rtol=1e-10, atol=1e-10)


def test_causal_mask_hides_later_tokens():
    torch.manual_seed(0)
    m = Transformer(TransformerShape(vocab_size=14, n_classes=13, seq_len=3, d_model=16, n_heads=2, n_layers=2, d_mlp=32)).double()
    a = torch.tensor([[1, 2, 13]])
    b = torch.tensor([[1, 5, 13]])
    # Position 0's residual after block 0 cannot depend on token 1 under a causal mask.
    x_a = m.blocks[0](m.tok_emb(a) + m.pos_emb.weight[:3])
    x_b = m.blocks[0](m.tok_emb(b) + m.pos_emb.weight[:3])
    torch.testing.assert_close(x_a[:, 0], x_b[:, 0])
    assert not torch.allclose(x_a[:, 1], x_b[:, 1])


@pytest.mark.parametrize(
    "name,cfg", [("transformer", TransformerConfig(d_model=16, n_heads=2, d_mlp=32)), ("mlp", MLPConfig(d_model=8, d_mlp=32, n_layers=2))]
)
def test_build_model_shapes(name, cfg):
    model = build_model(cfg, SPEC)
    out = model(torch.randint(0, 14, (7, 3)))
    assert out.shape == (7, 13)
    assert model.token_embedding.shape[0] == 14


@settings(max_examples=10, deadline=None)
@given(alpha=st.floats(0.1, 20.0))
def test_init_scale_multiplies_every_parameter(alpha):
    torch.manual_seed(0)
    base = build_model(TransformerConfig(d_model=16, n_heads=2, d_mlp=32, norm="pre"), SPEC)
    torch.manual_seed(0)
    scaled = build_model(TransformerConfig(d_model=16, n_heads=2, d_mlp=32, norm="pre", init_scale=alpha), SPEC)
    for (n, p0), (_, p1) in zip(base.named_parameters(), scaled.named_parameters(), strict=True):
        torch.testing.assert_close(p1, p0 * alpha, msg=n)


def test_scale_parameters_includes_biases_and_norms():
    m = EmbeddingMLP(14, 3, 13, d_model=4, d_mlp=8, n_layers=1)
    for p in m.parameters():
        torch.nn.init.constant_(p, 1.0)
    scale_parameters(m, 3.0)
    assert all(torch.all(p == 3.0) for p in m.parameters())


def test_transformer_init_follows_nanda():
    torch.manual_seed(0)
    m = Transformer(TransformerShape(vocab_size=200, n_classes=200, seq_len=3, d_model=256, n_heads=4, d_mlp=1024, norm="pre"))
    w = m.blocks[0].mlp.fc_in.weight
    assert abs(w.std().item() - 256**-0.5) < 0.002
    assert torch.all(m.blocks[0].mlp.fc_in.bias == 0)
    assert torch.all(m.blocks[0].ln_1.weight == 1)


def test_torch_init_keeps_pytorch_layer_defaults():
    torch.manual_seed(0)
    m = build_model(TransformerConfig(d_model=64, n_heads=2, d_mlp=128, init="torch"), TaskSpec(n_classes=200, vocab_size=500, seq_len=3))
    assert abs(m.tok_emb.weight.std().item() - 1.0) < 0.05  # nn.Embedding: N(0, 1)
    bound = 1 / 64**0.5  # nn.Linear: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), biases too
    w = m.blocks[0].mlp.fc_in.weight
    assert w.abs().max().item() <= bound and w.std().item() > 0.8 * bound / 3**0.5
    assert m.blocks[0].mlp.fc_in.bias.abs().max().item() > 0


def test_sinusoidal_positions_are_fixed_and_match_the_formula():
    from groklab.models.transformer import sinusoidal_positions

    s = TransformerShape(vocab_size=14, n_classes=13, seq_len=3, d_model=8, n_heads=2, pos="sinusoidal")
    m = Transformer(s)
    assert not any("pos" in n for n, _ in m.named_parameters()) and "pos_table" not in m.state_dict()
    t, i = 2, 5  # odd i: cos(t / 10000^((i - 1) / C))
    assert m.positions[t, i].item() == pytest.approx(math.cos(t / 10000 ** ((i - 1) / 8)), abs=1e-7)
    assert m.positions[t, 4].item() == pytest.approx(math.sin(t / 10000 ** (4 / 8)), abs=1e-7)
    assert torch.equal(m.positions, sinusoidal_positions(3, 8))
    m = m.double()  # the table is re-derived in float64, not a float32 table cast up
    assert m.positions.dtype == torch.float64
    assert m.positions[t, i].item() == pytest.approx(math.cos(t / 10000 ** ((i - 1) / 8)), abs=1e-15)
    assert torch.equal(m.float().positions, sinusoidal_positions(3, 8))
    m = m.double()
    idx = torch.randint(0, 14, (50, 3))  # more rows than tokens: the first-block table path
    x = m.tok_emb(idx) + m.positions[:3]
    for block in m.blocks:
        x = block(x)
    torch.testing.assert_close(m(idx), m.unembed(m.ln_f(x[:, -1])), rtol=1e-10, atol=1e-10)
