"""Narrow transformers trained inside a wide one, so that models of different widths share one
vectorized pass (the model-wise sweeps of Davies et al.).

A transformer of width d and MLP width m embeds exactly in a host of width D >= d and M >= m: its
parameters fill the leading residual features, the leading features of each attention head and the
leading MLP units, and every other entry is zero. Those zeros stay zero under training, since every
product that could move them meets another zero (gradient, Adam moments and weight decay alike),
provided the LayerNorm statistics, the attention scale and the fixed positions are the narrow model's
own: the host (`HostTransformer`) reads them from per-member buffers. So a padded member follows the
trajectory of its narrow model trained alone, up to float reassociation, at the widest member's cost.
Which entries are the narrow model's comes from each parameter's declared width axes (`width_axes` in
models/transformer.py), not from its name.
"""

from __future__ import annotations

import math
from dataclasses import fields, replace

import torch
from torch import nn

from groklab.models.transformer import Attention, Transformer, TransformerShape

PADDED_FIELDS = ("d_model", "d_mlp")  # the shape fields that members of one padded ensemble may differ in


class MaskedLayerNorm(nn.Module):
    """LayerNorm over the features where `mask` is 1, zero elsewhere: a narrow model's LayerNorm inside a wider one.

    Parameter names match nn.LayerNorm's, so state dicts are interchangeable."""

    def __init__(self, n_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(n_features))
        self.bias = nn.Parameter(torch.zeros(n_features))
        self.register_buffer("mask", torch.ones(n_features), persistent=False)
        self.width_axes = {"weight": ("res",), "bias": ("res",)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.mask.sum()
        xc = (x - (x * self.mask).sum(-1, keepdim=True) / n) * self.mask  # (..., C), zero on inactive features
        var = (xc * xc).sum(-1, keepdim=True) / n
        return xc * torch.rsqrt(var + self.eps) * self.weight + self.bias


class HostTransformer(Transformer):
    """A transformer of the host's widths whose LayerNorms, attention scales and sinusoidal positions are
    per-member buffers (filled by `host_state`), so that each member computes as its narrow model."""

    def __init__(self, s: TransformerShape) -> None:
        super().__init__(s)
        for name, module in list(self.named_modules()):
            if isinstance(module, nn.LayerNorm):
                parent, _, attr = name.rpartition(".")
                setattr(self.get_submodule(parent), attr, MaskedLayerNorm(s.d_model, module.eps))
            elif isinstance(module, Attention):
                del module.scale
                module.register_buffer("scale", torch.tensor(module_scale(s)), persistent=False)
        if s.pos == "sinusoidal":
            self.register_buffer("hosted_positions", torch.zeros(s.seq_len, s.d_model), persistent=False)

    @property
    def positions(self) -> torch.Tensor:
        return self.hosted_positions if self.shape.pos == "sinusoidal" else self.pos_emb.weight


def module_scale(s: TransformerShape) -> float:
    return 1.0 / math.sqrt(s.d_model // s.n_heads)


def host_shape(shapes: list[TransformerShape]) -> TransformerShape:
    """The widest of `shapes`, as a host; every field but the widths must agree."""
    first = shapes[0]
    for s in shapes[1:]:
        for f in fields(TransformerShape):
            if f.name not in PADDED_FIELDS and getattr(s, f.name) != getattr(first, f.name):
                raise ValueError(f"padded members differ in {f.name}: {getattr(first, f.name)!r} vs {getattr(s, f.name)!r}")
    return replace(first, **{k: max(getattr(s, k) for s in shapes) for k in PADDED_FIELDS})


def declared_axes(model: nn.Module) -> dict[str, tuple[str | None, ...]]:
    """Every parameter's width axes, as its module declares them, by the parameter's full name."""
    return {
        f"{prefix}.{name}" if prefix else name: axes
        for prefix, module in model.named_modules()
        for name, axes in getattr(module, "width_axes", {}).items()
    }


def _positions(axes: tuple[str | None, ...], s: TransformerShape, host: TransformerShape) -> list[torch.Tensor | None]:
    """For each axis, the host positions of the narrow model's entries (None: the axis is not a width)."""
    d, d_host = s.d_model // s.n_heads, host.d_model // host.n_heads
    index = {
        "res": torch.arange(s.d_model),
        "mlp": torch.arange(s.d_mlp),
        "head": (torch.arange(s.n_heads)[:, None] * d_host + torch.arange(d)).reshape(-1),  # each head's leading features
        None: None,
    }
    return [index[a] for a in axes]


def extract(axes: tuple[str | None, ...], t: torch.Tensor, s: TransformerShape, host: TransformerShape) -> torch.Tensor:
    """The narrow model's entries of a host-shaped tensor `t` (a parameter, its gradient or an optimizer moment)."""
    for dim, idx in enumerate(_positions(axes, s, host)):
        if idx is not None:
            t = t.index_select(dim, idx.to(t.device))
    return t


def embed(axes: tuple[str | None, ...], t: torch.Tensor, s: TransformerShape, host: TransformerShape, size: torch.Size) -> torch.Tensor:
    """A host-shaped tensor of zeros holding the narrow tensor `t` at its positions."""
    index = [torch.arange(n) if idx is None else idx for idx, n in zip(_positions(axes, s, host), size, strict=True)]
    out = t.new_zeros(size)
    out[torch.meshgrid(*[a.to(t.device) for a in index], indexing="ij")] = t
    return out


def host_state(model: Transformer, host: TransformerShape) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """`model`'s parameters padded to the host's shapes, and the host buffers that make it behave as `model`."""
    s = model.shape
    template = HostTransformer(replace(host, init="torch")).to("meta")  # shapes and buffer names only
    sizes = {n: p.shape for n, p in template.named_parameters()}
    axes = declared_axes(template)
    missing = [n for n in sizes if n not in axes]
    if missing:
        raise ValueError(f"parameter {missing[0]!r} declares no width axes")
    params = {n: embed(axes[n], p.detach(), s, host, sizes[n]) for n, p in model.named_parameters()}
    p0 = next(model.parameters())
    buffers: dict[str, torch.Tensor] = {}
    for name, _ in template.named_buffers():
        if name.endswith(".mask") or name == "mask":
            buffers[name] = (torch.arange(host.d_model, device=p0.device) < s.d_model).to(p0.dtype)
        elif name.endswith(".scale"):
            buffers[name] = torch.tensor(module_scale(s), device=p0.device, dtype=p0.dtype)
        elif name == "hosted_positions":  # the narrow model's own fixed positions (they depend on its width), zero beyond it
            buffers[name] = embed((None, "res"), model.positions, s, host, template.hosted_positions.shape)
        else:
            raise ValueError(f"no width layout for buffer {name!r}")
    return params, buffers
