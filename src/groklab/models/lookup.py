"""Row lookup `weight[idx]` whose gradient, inside a vmapped ensemble on the CPU, is one index_add_.

Under torch.func.vmap, K members' gathers become one gather of K x N rows from a K x V
table, and aten's embedding_dense_backward accumulates those rows three to six times
slower than `index_add_` on the CPU (46,080 rows: 3.5 ms against 0.74 ms), about a
quarter of a small model's ensemble step. Outside vmap, or off the CPU (CUDA's
index_add_ uses atomics, so its sums are not reproducible), plain F.embedding is used:
for one model's few thousand rows the gain is smaller than the autograd.Function's
own Python overhead.

`lookup(idx, weight)` equals `F.embedding(idx, weight)`; its vmap rule folds the ensemble
dimension into the table's rows, so K members still cost one gather and one index_add_.
`stacked_lookup` does the same for a model that runs K members without vmap (stacked_forward).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

try:
    from torch._C._functorch import is_batchedtensor
except ImportError:  # a torch without functorch's internals: always the plain path

    def is_batchedtensor(t: torch.Tensor) -> bool:
        return False


class _Lookup(torch.autograd.Function):
    @staticmethod
    def forward(idx: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return F.embedding(idx, weight)  # (*idx.shape, C)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[torch.Tensor, torch.Tensor], output: torch.Tensor) -> None:
        idx, weight = inputs
        ctx.save_for_backward(idx)
        ctx.rows = weight.shape[0]

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[None, torch.Tensor]:
        (idx,) = ctx.saved_tensors
        C = grad.shape[-1]
        g = grad.new_zeros(ctx.rows, C).index_add_(0, idx.reshape(-1), grad.reshape(-1, C))  # (V, C)
        return None, g

    @staticmethod
    def vmap(info: Any, in_dims: tuple[int | None, int | None], idx: torch.Tensor, weight: torch.Tensor) -> tuple[torch.Tensor, int]:
        idx_dim, w_dim = in_dims
        if idx_dim is not None:
            idx = idx.movedim(idx_dim, 0)  # (E, ...)
        if w_dim is None:  # one table for every member: an ordinary lookup of the stacked indices
            return _Lookup.apply(idx, weight), 0
        weight = weight.movedim(w_dim, 0)  # (E, V, C)
        if idx_dim is None:
            idx = idx.expand(weight.shape[0], *idx.shape)
        return stacked_lookup(idx, weight), 0


def stacked_lookup(idx: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """weight[e][idx[e]] for every member e: (E, ...) indices into (E, V, C) tables -> (E, ..., C).

    Member e's rows become rows e*V .. e*V + V - 1 of one table: one gather, and on the CPU one index_add_ backward."""
    E, V = weight.shape[:2]
    offset = (torch.arange(E, device=idx.device) * V).view(E, *[1] * (idx.dim() - 1))
    rows, table = idx + offset, weight.reshape(E * V, *weight.shape[2:])
    return _Lookup.apply(rows, table) if weight.device.type == "cpu" else F.embedding(rows, table)


def lookup(idx: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """weight[idx]: (V, C) rows at integer idx (...) -> (..., C), as F.embedding; faster gradients in CPU ensembles."""
    if weight.device.type == "cpu" and (is_batchedtensor(weight) or is_batchedtensor(idx)):
        return _Lookup.apply(idx, weight)
    return F.embedding(idx, weight)
