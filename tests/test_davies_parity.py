"""Parity with Davies et al.'s model (grok_replication/transformer.py, OpenAI's grok code): the davies2023
preset builds their network, with dropout only where their DecoderBlock has it.

The reference below is written from the description of their code, independently of groklab's model:
token embedding plus sinusoidal positions, no dropout there; each block is
    a1 = LN(x + Wo · softmax(causal(Wq x · (Wk x)^T / sqrt(d))) · Wv x)
    a2 = LN(a1 + dropout(W2 · relu(W1 · a1)))
with one head, bias-free Linear layers, post-LayerNorm, and a bias-free output layer read at the last position.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from groklab.config import resolve_config
from groklab.models import build_model
from groklab.models.transformer import DROPOUT_SITES, Transformer
from groklab.tasks import build_task


class ReferenceBlock(nn.Module):
    def __init__(self, d: int, p: float) -> None:
        super().__init__()
        self.Wq, self.Wk, self.Wv, self.Wo = (nn.Linear(d, d, bias=False) for _ in range(4))
        self.self_attn_norm = nn.LayerNorm(d)
        self.ffn = nn.Sequential(nn.Linear(d, 4 * d, bias=False), nn.ReLU(), nn.Linear(4 * d, d, bias=False))
        self.ffn_drop = nn.Dropout(p)
        self.ffn_norm = nn.LayerNorm(d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T = x.shape[1]
        att = self.Wq(x) @ self.Wk(x).transpose(-2, -1) / math.sqrt(x.shape[-1])
        att = att.masked_fill(torch.ones(T, T).tril() == 0, float("-inf")).softmax(-1)
        a1 = self.self_attn_norm(x + self.Wo(att @ self.Wv(x)))
        return self.ffn_norm(a1 + self.ffn_drop(self.ffn(a1)))


class Reference(nn.Module):
    def __init__(self, vocab: int, n_out: int, d: int, seq_len: int, p: float) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, d)
        angle = [[t / 10000 ** ((i - i % 2) / d) for i in range(d)] for t in range(seq_len)]
        pos = torch.tensor([[math.sin(a) if i % 2 == 0 else math.cos(a) for i, a in enumerate(row)] for row in angle], dtype=torch.float64)
        self.register_buffer("position_encoding", pos)
        self.blocks = nn.ModuleList(ReferenceBlock(d, p) for _ in range(2))
        self.linear = nn.Linear(d, n_out, bias=False)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.embedding(idx) + self.position_encoding[: idx.shape[1]]
        for block in self.blocks:
            x = block(x)
        return self.linear(x[:, -1])


def copy_weights(ours: Transformer, ref: Reference) -> None:
    with torch.no_grad():
        ref.embedding.weight.copy_(ours.tok_emb.weight)
        ref.linear.weight.copy_(ours.unembed.weight)
        for b, r in zip(ours.blocks, ref.blocks, strict=True):
            for mine, theirs in ((b.attn.q_proj, r.Wq), (b.attn.k_proj, r.Wk), (b.attn.v_proj, r.Wv), (b.attn.out_proj, r.Wo)):
                theirs.weight.copy_(mine.weight)
            r.ffn[0].weight.copy_(b.mlp.fc_in.weight)
            r.ffn[2].weight.copy_(b.mlp.fc_out.weight)
            for mine_ln, theirs_ln in ((b.ln_1, r.self_attn_norm), (b.ln_2, r.ffn_norm)):
                theirs_ln.weight.copy_(mine_ln.weight + 0.1 * torch.randn_like(mine_ln.weight))  # not the trivial (1, 0)
                theirs_ln.bias.copy_(0.1 * torch.randn_like(mine_ln.bias))
                mine_ln.weight.copy_(theirs_ln.weight)
                mine_ln.bias.copy_(theirs_ln.bias)


def value_mask(x: torch.Tensor) -> torch.Tensor:
    """A dropout that depends on the values alone, so the same activations drop alike in both models."""
    keep = torch.frac(x.abs() * 9973.0) >= 0.3
    return x * keep / 0.7


def with_value_dropout(model: nn.Module) -> list[str]:
    """Every active dropout of `model` becomes value_mask; returns the names of those that ran in a forward."""
    ran: list[str] = []
    for name, m in model.named_modules():
        if isinstance(m, nn.Dropout) and m.p > 0:
            m.forward = lambda x, m=m, name=name: (ran.append(name), value_mask(x) if m.training else x)[1]
    return ran


def models(overrides: list[str]) -> tuple[Transformer, Reference, torch.Tensor]:
    cfg = resolve_config("davies2023", ["model.d_model=16", *overrides])
    task = build_task(cfg.task)
    torch.manual_seed(0)
    ours = build_model(cfg.model, task.spec).double()
    ref = Reference(task.spec.vocab_size, task.spec.n_classes, 16, task.spec.seq_len, cfg.model.dropout).double()
    copy_weights(ours, ref)
    return ours, ref, task.build().train_x[:300]


@pytest.mark.parametrize("fmt", [[], ["task.format=compact", "task.n_tokens=0"]])
def test_eval_mode_matches_the_authors_block(fmt):
    ours, ref, x = models(fmt)
    ours.eval(), ref.eval()
    torch.testing.assert_close(ours(x), ref(x), rtol=1e-12, atol=1e-12)


def test_train_mode_drops_out_only_at_the_mlp_output():
    ours, ref, x = models([])
    ours.train(), ref.train()
    ran_ours, ran_ref = with_value_dropout(ours), with_value_dropout(ref)
    out = ours(x)
    torch.testing.assert_close(out, ref(x), rtol=1e-12, atol=1e-12)
    assert sorted(ran_ours) == ["blocks.0.mlp.dropout", "blocks.1.mlp.dropout"]
    assert len(ran_ref) == 2
    ours.eval()
    assert (ours(x) - out).abs().max() > 1e-3  # the value dropout did act


def test_nanogpt_sites_are_not_the_authors():
    """The check above can fail: dropping out at every nanoGPT site gives other train-mode outputs."""
    ours, ref, x = models([f"model.dropout_at=[{','.join(DROPOUT_SITES)}]"])
    ours.train(), ref.train()
    with_value_dropout(ours), with_value_dropout(ref)
    assert (ours(x) - ref(x)).abs().max() > 1e-3


def test_preset_is_the_authors_format():
    cfg = resolve_config("davies2023", [])
    spec = build_task(cfg.task).spec
    x = build_task(cfg.task).build().train_x
    assert (spec.seq_len, spec.vocab_size, spec.n_classes) == (5, 2000, 2000)
    p = cfg.task.p
    assert (x[:, 0] == p + 1).all() and (x[:, 2] == p + 2).all() and (x[:, 4] == p).all()  # <eos> a / b =
    assert x[:, 1].max() < p and x[:, 3].min() >= 1  # operands; b != 0 for division
