"""Named hook points: TransformerLens's names on the transformer, layers.{i} on the MLPs, run_with_cache."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from groklab.config import resolve_config
from groklab.errors import ConfigError
from groklab.measures import EvalContext, Tap
from groklab.models import DeepMLP, Transformer, TransformerShape, build_model
from groklab.models.hooks import hook_names, run_with_cache
from groklab.tasks import build_task

TL_NAMES = [
    "hook_embed",
    "hook_pos_embed",
    "blocks.0.attn.hook_q",
    "blocks.0.attn.hook_k",
    "blocks.0.attn.hook_v",
    "blocks.0.attn.hook_z",
    "blocks.0.attn.hook_attn_scores",
    "blocks.0.attn.hook_pattern",
    "blocks.0.mlp.hook_pre",
    "blocks.0.mlp.hook_post",
    "blocks.0.hook_resid_pre",
    "blocks.0.hook_resid_mid",
    "blocks.0.hook_resid_post",
    "blocks.0.hook_attn_out",
    "blocks.0.hook_mlp_out",
]


def transformer(**kw) -> Transformer:
    torch.manual_seed(0)
    return Transformer(TransformerShape(vocab_size=14, n_classes=13, seq_len=3, d_model=16, n_heads=2, d_mlp=32, **kw)).double()


def test_transformer_hook_points_carry_transformerlens_names():
    assert sorted(hook_names(transformer())) == sorted(TL_NAMES)
    assert "blocks.1.hook_resid_post" in hook_names(transformer(n_layers=2))


def test_cached_activations_are_the_forward_pass():
    """Independent checks of what each hook holds: shapes, the pattern is a causal softmax, the MLP's post is
    relu(pre), the residual stream adds up, and the last position's resid_post unembeds to the logits."""
    m = transformer()
    idx = torch.randint(0, 14, (40, 3))
    logits, cache = run_with_cache(m, idx)
    torch.testing.assert_close(logits, m(idx))  # the fast path the run trains with gives the same logits
    assert cache["blocks.0.attn.hook_q"].shape == (40, 3, 2, 8) and cache["blocks.0.attn.hook_pattern"].shape == (40, 2, 3, 3)
    pattern = cache["blocks.0.attn.hook_pattern"]
    torch.testing.assert_close(pattern.sum(-1), torch.ones(40, 2, 3, dtype=torch.float64))
    assert (pattern.triu(1) == 0).all()  # causal: no position attends to a later one
    torch.testing.assert_close(cache["blocks.0.mlp.hook_post"], F.relu(cache["blocks.0.mlp.hook_pre"]))
    resid_mid = cache["blocks.0.hook_resid_pre"] + cache["blocks.0.hook_attn_out"]
    torch.testing.assert_close(cache["blocks.0.hook_resid_mid"], resid_mid)
    torch.testing.assert_close(cache["blocks.0.hook_resid_post"], resid_mid + cache["blocks.0.hook_mlp_out"])
    torch.testing.assert_close(cache["hook_embed"] + cache["hook_pos_embed"], cache["blocks.0.hook_resid_pre"])
    torch.testing.assert_close(m.unembed(cache["blocks.0.hook_resid_post"][:, -1]), logits)
    assert m.fast  # restored


def test_mlp_layers_are_named_by_their_linear():
    torch.manual_seed(0)
    m = DeepMLP(10, 3, depth=4, width=8).double()
    assert hook_names(m) == [f"layers.{i}.hook_{k}" for i in range(4) for k in ("pre", "post") if not (i == 3 and k == "post")]
    x = torch.randn(5, 10, dtype=torch.float64)
    _, cache = run_with_cache(m, x, ["layers.2.hook_pre", "layers.3.hook_pre", "layers.1.hook_post"])
    linears = [mod for mod in m.net if isinstance(mod, torch.nn.Linear)]
    h = x
    for lin in linears[:3]:
        pre = lin(h)
        h = F.relu(pre)
    torch.testing.assert_close(cache["layers.2.hook_pre"], pre)
    torch.testing.assert_close(cache["layers.3.hook_pre"], m(x))


def test_an_unknown_hook_name_lists_the_valid_ones():
    with pytest.raises(ConfigError, match=r"no hook point 'blocks.0.mlp.hook_mid'; choose from hook_embed, hook_pos_embed"):
        run_with_cache(transformer(), torch.zeros(2, 3, dtype=torch.long), ["blocks.0.mlp.hook_mid"])


def test_hook_names_and_activations_survive_a_save_and_load(tmp_path):
    cfg = resolve_config(None, ["task.p=13", "model.d_model=16", "model.n_heads=2", "model.d_mlp=32"])
    spec = build_task(cfg.task).spec
    torch.manual_seed(1)
    a = build_model(cfg.model, spec)
    torch.save(a.state_dict(), tmp_path / "w.pt")
    torch.manual_seed(2)
    b = build_model(cfg.model, spec)
    b.load_state_dict(torch.load(tmp_path / "w.pt", weights_only=True))
    idx = torch.randint(0, 13, (9, 3))
    ca, cb = run_with_cache(a, idx)[1], run_with_cache(b, idx)[1]
    assert sorted(ca) == sorted(cb) == sorted(hook_names(a))
    assert all(torch.equal(ca[n], cb[n]) for n in ca)


def test_a_measure_tap_on_a_hook_point_reads_the_plain_forward():
    """A tap asking for a hook point gets the full activation (every position), though training takes the fast path."""
    cfg = resolve_config(None, ["task.p=13", "model.d_model=16", "model.n_heads=2", "model.d_mlp=32"])
    task = build_task(cfg.task)
    data = task.build()
    m = build_model(cfg.model, task.spec)
    got = []
    ctx = EvalContext(0, m, data, task.spec, cfg)
    (tap,) = ctx.run([Tap("test", ("blocks.0.mlp.hook_post",), lambda name, out: got.append(out))])
    assert tap.invalid == set() and torch.cat(got).shape == (len(data.test_y), 3, 32) and m.fast
