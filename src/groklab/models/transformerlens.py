"""A transformer's weights in TransformerLens's HookedTransformer layout (its `state_dict` names and shapes),
with the HookedTransformerConfig arguments that rebuild it: the `nanda2023` model is exactly the grokking
demo's configuration. Only what HookedTransformer can express converts: learned positions, a causal mask,
no LayerNorm or pre-LayerNorm, and relu, gelu or silu."""

from __future__ import annotations

from typing import Any

from groklab.errors import GroklabError
from groklab.models.transformer import Transformer

TL_ACTIVATIONS = ("relu", "gelu", "silu")


def transformerlens_export(model: Transformer) -> dict[str, Any]:
    """{"cfg": HookedTransformerConfig keyword arguments, "state_dict": tensors by TransformerLens name}."""
    s = model.shape
    why = []
    if s.pos != "learned":
        why.append(f"model.pos={s.pos} (HookedTransformer learns its positions)")
    if s.norm == "post":
        why.append("model.norm=post (HookedTransformer normalizes before each sublayer)")
    if not s.causal:
        why.append("model.causal=false (HookedTransformer's attention is causal)")
    if s.act not in TL_ACTIVATIONS:
        why.append(f"model.act={s.act} (choose one of {', '.join(TL_ACTIVATIONS)})")
    if why:
        raise GroklabError("TransformerLens cannot express this transformer: " + "; ".join(why))
    H, C = s.n_heads, s.d_model
    D = C // H
    cfg = {
        "n_layers": s.n_layers,
        "d_model": C,
        "n_heads": H,
        "d_head": D,
        "d_mlp": s.d_mlp,
        "d_vocab": s.vocab_size,
        "d_vocab_out": s.n_classes,
        "n_ctx": s.seq_len,
        "act_fn": s.act,
        "normalization_type": "LN" if s.norm == "pre" else None,
    }
    p = {n: t.detach().clone() for n, t in model.state_dict().items()}
    zeros = p["tok_emb.weight"].new_zeros
    out = {"embed.W_E": p["tok_emb.weight"], "pos_embed.W_pos": p["pos_emb.weight"]}
    for i in range(s.n_layers):
        b = f"blocks.{i}."
        for name in "QKV":
            w = p[f"{b}attn.{name.lower()}_proj.weight"]  # (H·D, C): row h·D + d is head h's feature d
            out[f"{b}attn.W_{name}"] = w.view(H, D, C).transpose(1, 2).contiguous()  # (H, C, D)
            out[f"{b}attn.b_{name}"] = zeros(H, D)
        out[f"{b}attn.W_O"] = p[f"{b}attn.out_proj.weight"].T.reshape(H, D, C).contiguous()  # (H, D, C)
        out[f"{b}attn.b_O"] = zeros(C)
        out[f"{b}mlp.W_in"] = p[f"{b}mlp.fc_in.weight"].T.contiguous()  # (C, M)
        out[f"{b}mlp.b_in"] = p.get(f"{b}mlp.fc_in.bias", zeros(s.d_mlp))
        out[f"{b}mlp.W_out"] = p[f"{b}mlp.fc_out.weight"].T.contiguous()  # (M, C)
        out[f"{b}mlp.b_out"] = p.get(f"{b}mlp.fc_out.bias", zeros(C))
        if s.norm == "pre":
            for ours, theirs in (("ln_1", "ln1"), ("ln_2", "ln2")):
                out[f"{b}{theirs}.w"], out[f"{b}{theirs}.b"] = p[f"{b}{ours}.weight"], p[f"{b}{ours}.bias"]
    if s.norm == "pre":
        out["ln_final.w"], out["ln_final.b"] = p["ln_f.weight"], p["ln_f.bias"]
    out["unembed.W_U"] = p["unembed.weight"].T.contiguous()  # (C, K)
    out["unembed.b_U"] = zeros(s.n_classes)
    return {"cfg": cfg, "state_dict": out}
