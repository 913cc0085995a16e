"""Narrow transformers trained inside a wide one, so that models of different widths share one
vectorized pass (the model-wise sweeps of Davies et al.).

A transformer of width d and MLP width m embeds exactly in a host of width D >= d and M >= m: its
parameters fill the leading residual features, the leading features of each attention head and the
leading MLP units, and every other entry is zero. Those zeros stay zero under training, since every
product that could move them meets another zero (gradient, Adam moments and weight decay alike),
provided the LayerNorm statistics and the attention scale are the narrow model's own: the host
(TransformerShape.masked_width) reads them from per-model buffers. So a padded member follows the
trajectory of its narrow model trained alone, up to float reassociation, at the widest member's cost.
"""

from __future__ import annotations

import math
from dataclasses import fields, replace

import torch

from groklab.models.transformer import Transformer, TransformerShape

PADDED_FIELDS = ("d_model", "d_mlp")  # the shape fields that members of one padded ensemble may differ in


def host_shape(shapes: list[TransformerShape]) -> TransformerShape:
    """The widest of `shapes`, as a host; every field but the widths must agree."""
    first = shapes[0]
    for s in shapes[1:]:
        for f in fields(TransformerShape):
            if f.name not in PADDED_FIELDS and getattr(s, f.name) != getattr(first, f.name):
                raise ValueError(f"padded members differ in {f.name}: {getattr(first, f.name)!r} vs {getattr(s, f.name)!r}")
    widest = {k: max(getattr(s, k) for s in shapes) for k in PADDED_FIELDS}
    return replace(first, **widest, masked_width=True)


def _axes(name: str, s: TransformerShape, host: TransformerShape) -> list[torch.Tensor | None]:
    """For each axis of parameter `name`, the host positions of the narrow model's entries (None: all)."""
    res, mlp = torch.arange(s.d_model), torch.arange(s.d_mlp)
    d, d_host = s.d_model // s.n_heads, host.d_model // host.n_heads
    heads = (torch.arange(s.n_heads)[:, None] * d_host + torch.arange(d)).reshape(-1)  # each head's leading features
    if name in ("tok_emb.weight", "pos_emb.weight", "unembed.weight"):
        return [None, res]
    if name.endswith(("q_proj.weight", "k_proj.weight", "v_proj.weight")):
        return [heads, res]
    if name.endswith("out_proj.weight"):
        return [res, heads]
    if name.endswith("fc_in.weight"):
        return [mlp, res]
    if name.endswith("fc_in.bias"):
        return [mlp]
    if name.endswith("fc_out.weight"):
        return [res, mlp]
    if name.endswith("fc_out.bias") or "ln_" in name:
        return [res]
    raise ValueError(f"no width layout for parameter {name!r}")


def extract(name: str, t: torch.Tensor, s: TransformerShape, host: TransformerShape) -> torch.Tensor:
    """The narrow model's entries of a host-shaped tensor `t` (a parameter, its gradient or an optimizer moment)."""
    for dim, idx in enumerate(_axes(name, s, host)):
        if idx is not None:
            t = t.index_select(dim, idx.to(t.device))
    return t


def embed(name: str, t: torch.Tensor, s: TransformerShape, host: TransformerShape, host_size: torch.Size) -> torch.Tensor:
    """A host-shaped tensor of zeros holding the narrow tensor `t` at its positions."""
    axes = [torch.arange(n) if idx is None else idx for idx, n in zip(_axes(name, s, host), host_size, strict=True)]
    out = t.new_zeros(host_size)
    out[torch.meshgrid(*[a.to(t.device) for a in axes], indexing="ij")] = t
    return out


def host_state(model: Transformer, host: TransformerShape) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """`model`'s parameters padded to the host's shapes, and the host buffers that make it behave as `model`."""
    s = model.shape
    template = Transformer(replace(host, init="torch")).to("meta")  # shapes and buffer names only
    sizes = {n: p.shape for n, p in template.named_parameters()}
    params = {n: embed(n, p.detach(), s, host, sizes[n]) for n, p in model.named_parameters()}
    p0 = next(model.parameters())
    buffers: dict[str, torch.Tensor] = {}
    for name, _ in template.named_buffers():
        if name.endswith(".mask") or name == "mask":
            buffers[name] = (torch.arange(host.d_model, device=p0.device) < s.d_model).to(p0.dtype)
        elif name.endswith(".scale"):
            buffers[name] = torch.tensor(1.0 / math.sqrt(s.d_model // s.n_heads), device=p0.device, dtype=p0.dtype)
        elif name == "pos_table":  # the narrow model's own fixed positions (they depend on its width), zero beyond it
            buffers[name] = embed("pos_emb.weight", model.pos_table, s, host, template.pos_table.shape)
        else:
            raise ValueError(f"no width layout for buffer {name!r}")
    return params, buffers
