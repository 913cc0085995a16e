"""Padded-width ensembles: a narrow transformer inside a wide host trains as it would alone."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.func import functional_call

import groklab
from groklab.cli.main import main
from groklab.config import resolve_config
from groklab.models.transformer import Transformer, TransformerShape
from groklab.models.width_padding import HostTransformer, declared_axes, embed, extract, host_shape, host_state
from groklab.store import Store
from groklab.sweeps.planning import plan_batches
from groklab.training.ensemble_keys import pad_key, shape_key
from groklab.training.runs import start_ensemble
from groklab.training.setup import prepare
from groklab.training.stacked import StackedBackend
from helpers import TINY


def shape(d: int, m: int, heads: int, norm: str, pos: str = "learned") -> TransformerShape:
    return TransformerShape(vocab_size=12, n_classes=11, seq_len=3, d_model=d, n_heads=heads, n_layers=2, d_mlp=m, norm=norm, pos=pos)


@settings(max_examples=25, deadline=None)
@given(
    heads=st.sampled_from([1, 2]),
    d_half=st.integers(1, 6),
    extra=st.integers(0, 6),
    m=st.integers(1, 24),
    m_extra=st.integers(0, 16),
    norm=st.sampled_from(["none", "pre", "post"]),
    batch=st.sampled_from([5, 40]),  # below and above the vocabulary: both first-block paths
    pos=st.sampled_from(["learned", "sinusoidal"]),  # a sinusoidal table depends on the width: each member keeps its own
)
def test_padded_model_computes_the_narrow_model(heads, d_half, extra, m, m_extra, norm, batch, pos):
    torch.manual_seed(d_half * 100 + extra)
    small = shape(2 * d_half, m, heads, norm, pos)
    host = host_shape([small, shape(2 * (d_half + extra), m + m_extra, heads, norm, pos)])
    model = Transformer(small).double()
    params, buffers = host_state(model, host)
    for p in params.values():
        p.requires_grad_(True)
    x = torch.randint(0, 12, (batch, 3))
    hosting = HostTransformer(host).double()
    out = functional_call(hosting, (params, buffers), (x,))
    torch.testing.assert_close(out, model(x), rtol=1e-10, atol=1e-10)
    out.square().sum().backward()
    model(x).square().sum().backward()
    axes = declared_axes(hosting)
    for name, p in model.named_parameters():
        g = params[name].grad
        torch.testing.assert_close(extract(axes[name], g, small, host), p.grad, rtol=1e-9, atol=1e-10)
        outside = g - embed(axes[name], extract(axes[name], g, small, host), small, host, g.shape)
        assert not outside.any(), f"{name}: gradient outside the narrow entries"  # exactly zero there, not just small


def test_ensemble_refuses_a_non_transformer_among_padded_members():
    transformer = prepare(resolve_config(None, [*PADDED, "model.d_model=8"]))
    mlp = prepare(resolve_config(None, ["model.name=mlp", "model.d_model=8", *TINY[:2], "run.dtype=float64"]))
    with pytest.raises(ValueError, match="pad key"):
        StackedBackend([transformer, mlp])


def test_host_shape_refuses_members_that_differ_beyond_width():
    with pytest.raises(ValueError, match="n_heads"):
        host_shape([shape(8, 16, 1, "post"), shape(8, 16, 2, "post")])


WIDTHS = [
    ["model.d_model=8", "model.d_mlp=0", "run.seed=1"],
    ["model.d_model=16", "model.d_mlp=0"],
    ["model.d_model=32", "model.d_mlp=0", "optim.lr=0.003"],
]
PADDED = [*TINY, "model.n_heads=1", "model.n_layers=2", "model.norm=post", "run.dtype=float64"]


@pytest.mark.parametrize("pos", ["learned", "sinusoidal"])
def test_padded_ensemble_members_match_lone_runs(tmp_path, pos):
    configs = [resolve_config(None, [*PADDED, f"model.pos={pos}", *w]) for w in WIDTHS]
    assert len({shape_key(c) for c in configs}) == 3 and len({pad_key(c) for c in configs}) == 1
    store = Store(tmp_path / "ens")
    run_ids, statuses = start_ensemble([prepare(c) for c in configs], store)
    assert statuses == ["finished"] * 3
    for w, rid in zip(WIDTHS, run_ids, strict=True):
        alone = groklab.run(None, [*PADDED, f"model.pos={pos}", *w], runs_dir=tmp_path / "alone")
        a, b = store.metric_rows(rid), alone.store.metric_rows(alone.id)
        assert [r[:2] for r in a] == [r[:2] for r in b]
        assert [r[2] for r in a] == pytest.approx([r[2] for r in b], rel=1e-7, abs=1e-9)
        ckpt = store.load_checkpoint(rid)  # the narrow model's own shapes: resumable alone
        assert ckpt["model"]["tok_emb.weight"].shape == (14, int(w[0].split("=")[1]))


def test_padded_member_with_dropout_trains(tmp_path):
    configs = [resolve_config(None, [*PADDED, "model.dropout=0.1", *w]) for w in WIDTHS[:2]]
    trainer = StackedBackend([prepare(c) for c in configs])
    x, _ = trainer.train_batch()
    first, second = trainer.forward(x), trainer.forward(x)
    assert not torch.equal(first, second)  # dropout draws fresh masks under vmap
    trainer.model.eval()
    assert torch.equal(trainer.forward(x), trainer.forward(x))


def test_sweep_pads_widths_unless_told_not_to(tmp_path, capsys):
    runs = str(tmp_path / "runs")
    grid = ["--grid", "model.d_model=4,8,12,16", "--seeds", "2"]
    args = ["sweep", *PADDED, "model.d_mlp=0", "schedule.steps=20", *grid, "--quiet", "--runs-dir", runs]
    assert main([*args, "--max-ensemble", "4"]) == 0
    store = Store(runs, create=False)
    sweep = store.get_sweep(capsys.readouterr().out.strip())
    fresh = dataclasses.replace(sweep, id="not-started")  # the plan before any point has a run
    assert plan_batches(store, fresh, list(range(8)), 4) == [[0, 1, 2, 3], [4, 5, 6, 7]]  # ordered by width
    assert plan_batches(store, fresh, list(range(8)), 4, pad_widths=True) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert plan_batches(store, fresh, list(range(8)), 4, pad_widths=False) == [[0, 1], [2, 3], [4, 5], [6, 7]]  # one width each
    runs_of = store.sweep_runs(sweep.id)
    assert {store.get(runs_of[i]).status for i in range(8)} == {"finished"}
    messages = {store.get(runs_of[i]).message for i in range(8)}
    assert all("ensemble of 4" in m for m in messages)
