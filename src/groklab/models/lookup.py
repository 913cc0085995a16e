"""Row lookup `weight[idx]` whose gradient, inside an ensemble on the CPU, is one sparse product.

Under torch.func.vmap, K members' gathers become one gather of K x N rows from a K x V
table. On the CPU, aten's embedding_dense_backward accumulates those rows more slowly than
`index_add_`, and index_add_ itself adds row by row, a large share of a tiny model's ensemble
step (benchmarks/ensembles.py). Here the gradient is the (rows, N) one-hot matrix of idx, in
CSR form, times the incoming gradient (`row_sums`), and a full-batch run reuses that matrix
every step. For a lone model, or off the CPU, plain F.embedding is used: for one model's few
thousand rows the gain is within the autograd.Function's own Python overhead, and off the CPU
F.embedding's backward is the tuned one.

`lookup(idx, weight)` equals `F.embedding(idx, weight)`; its vmap rule folds the ensemble
dimension into the table's rows, so K members still cost one gather and one product.
`stacked_lookup` does the same for a model that runs K members without vmap (stacked_forward).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from contextvars import ContextVar
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
        return None, row_sums(idx.reshape(-1), grad.reshape(-1, C), ctx.rows)  # (V, C)

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


Summers = dict[tuple[Any, ...], tuple[torch.Tensor, torch.Tensor]]  # (rows, N, dtype) -> (idx, its CSR one-hot)
SUMMERS_KEPT = 8
_summers: ContextVar[Summers | None] = ContextVar("groklab_row_summers", default=None)


@contextlib.contextmanager
def keeping_row_sums(kept: Summers) -> Iterator[None]:
    """While active (a training step of an ensemble), row_sums keeps its sparse structures in `kept`, its
    owner's, for the next call with the same indices; outside, it builds them afresh."""
    token = _summers.set(kept)
    try:
        yield
    finally:
        _summers.reset(token)


def row_sums(idx: torch.Tensor, grad: torch.Tensor, rows: int) -> torch.Tensor:
    """out[r] = sum of grad[n] over every n with idx[n] == r: (N,) indices, (N, C) -> (rows, C).

    As a sparse product: the (rows, N) CSR matrix with a one at (idx[n], n), times grad. Its structure
    needs a sort of idx, which costs more than the product, so inside `keeping_row_sums` it is kept for
    the next call with the same indices: a full-batch run gathers the same rows every step. A kept
    structure is exactly the one a new build gives (a stable sort), so the result does not depend on it."""
    summers = _summers.get()
    key = (rows, idx.numel(), grad.dtype)
    kept = summers.get(key) if summers is not None else None
    if kept is not None and torch.equal(kept[0], idx):
        ones = kept[1]
    else:
        n = idx.numel()
        narrow = torch.int32 if max(rows, n) < 2**31 else torch.int64  # int32 sorts and multiplies faster
        order = torch.sort(idx.to(narrow), stable=True).indices.to(narrow)  # (N,): column of each nonzero, row by row
        starts = torch.zeros(rows + 1, dtype=narrow, device=idx.device)  # (rows + 1,): where each row's nonzeros begin
        starts[1:] = torch.bincount(idx, minlength=rows).cumsum(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
            ones = torch.sparse_csr_tensor(starts, order, grad.new_ones(n), (rows, n), check_invariants=False)
        if summers is not None:
            if key not in summers and len(summers) >= SUMMERS_KEPT:
                summers.pop(next(iter(summers)))  # the oldest
            summers[key] = (idx.clone(), ones)
    return ones @ grad


def stacked_lookup(idx: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """weight[e][idx[e]] for every member e: (E, ...) indices into (E, V, C) tables -> (E, ..., C).

    Member e's rows become rows e*V .. e*V + V - 1 of one table: one gather, and on the CPU one row_sums backward."""
    E, V = weight.shape[:2]
    offset = (torch.arange(E, device=idx.device) * V).view(E, *[1] * (idx.dim() - 1))
    rows, table = idx + offset, weight.reshape(E * V, *weight.shape[2:])
    return _Lookup.apply(rows, table) if weight.device.type == "cpu" else F.embedding(rows, table)


def lookup(idx: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """weight[idx]: (V, C) rows at integer idx (...) -> (..., C), as F.embedding; faster gradients in CPU ensembles."""
    if weight.device.type == "cpu" and (is_batchedtensor(weight) or is_batchedtensor(idx)):
        return _Lookup.apply(idx, weight)
    return F.embedding(idx, weight)
