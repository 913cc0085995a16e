"""lookup(idx, weight) is F.embedding, values and gradients, alone and under vmap."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from hypothesis import example, given, settings
from hypothesis import strategies as st
from torch.func import vmap

from groklab.models import lookup as lookup_module
from groklab.models.lookup import _Lookup, lookup, row_sums


@settings(max_examples=30, deadline=None)
@given(
    rows=st.integers(1, 9),
    width=st.integers(1, 6),
    idx_shape=st.lists(st.integers(1, 5), min_size=1, max_size=3),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    seed=st.integers(0, 2**16),
)
def test_sparse_gradient_matches_embedding(rows: int, width: int, idx_shape: list[int], dtype: torch.dtype, seed: int) -> None:
    """The autograd.Function itself (what ensembles run), outside vmap."""
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(rows, width, generator=gen, dtype=dtype, requires_grad=True)
    idx = torch.randint(0, rows, idx_shape, generator=gen)  # repeated indices: their gradients must add up
    g = torch.randn(*idx_shape, width, generator=gen, dtype=dtype)
    out = _Lookup.apply(idx, w)
    (grad,) = torch.autograd.grad((out * g).sum(), w)
    ref = F.embedding(idx, w)
    (ref_grad,) = torch.autograd.grad((ref * g).sum(), w)
    assert torch.equal(out, ref)
    torch.testing.assert_close(grad, ref_grad, rtol=0, atol=1e-12 if dtype == torch.float64 else 1e-5)


@settings(max_examples=20, deadline=None)
@given(
    members=st.integers(1, 4),
    w_dim=st.sampled_from([0, 1, None]),
    idx_batched=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_lookup_under_vmap_is_each_member_alone(members: int, w_dim: int | None, idx_batched: bool, seed: int) -> None:
    """Batched tables (in either dim), batched or shared indices: member e gets exactly its own rows and gradient."""
    if w_dim is None and not idx_batched:
        idx_batched = True  # vmap needs one batched input
    gen = torch.Generator().manual_seed(seed)
    V, C = 5, 3
    tables = torch.randn(members, V, C, generator=gen, dtype=torch.float64)
    idx = torch.randint(0, V, (members, 4, 2) if idx_batched else (4, 2), generator=gen)
    w = (tables if w_dim == 0 else tables.transpose(0, 1).contiguous() if w_dim == 1 else tables[0]).requires_grad_(True)
    out = vmap(lookup, in_dims=(0 if idx_batched else None, w_dim))(idx, w)
    weights = torch.randn(out.shape, generator=gen, dtype=torch.float64)
    (grad,) = torch.autograd.grad((out * weights).sum(), w)

    w_ref = w.detach().clone().requires_grad_(True)
    member_w = (lambda e: w_ref[e]) if w_dim == 0 else (lambda e: w_ref[:, e]) if w_dim == 1 else (lambda e: w_ref)
    ref = torch.stack([F.embedding(idx[e] if idx_batched else idx, member_w(e)) for e in range(members)])
    (ref_grad,) = torch.autograd.grad((ref * weights).sum(), w_ref)
    assert torch.equal(out, ref)
    torch.testing.assert_close(grad, ref_grad, rtol=0, atol=1e-12)


def test_vmap_takes_the_sparse_path_and_a_lone_model_does_not(monkeypatch):
    calls = []
    forward = _Lookup.forward
    monkeypatch.setattr(_Lookup, "forward", staticmethod(lambda idx, w: calls.append(idx.shape) or forward(idx, w)))
    w, idx = torch.randn(3, 5, 2), torch.randint(0, 5, (3, 4))
    vmap(lookup)(idx, w)
    assert calls == [torch.Size([3, 4])], "one flattened gather for the three members"
    lookup(idx[0], w[0])
    assert len(calls) == 1, "a lone model keeps F.embedding"
    assert lookup_module.is_batchedtensor(w) is False


@settings(max_examples=40, deadline=None)
@given(
    rows=st.integers(1, 40),
    n=st.integers(1, 300),
    width=st.integers(1, 9),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    seed=st.integers(0, 2**16),
)
@example(rows=1, n=270, width=1, dtype=torch.float32, seed=0)  # a sum of ~13 whose two orders differ by 1.05e-5
def test_row_sums_add_up_each_rows_gradients(rows: int, n: int, width: int, dtype: torch.dtype, seed: int) -> None:
    """Against a direct sum per row, with rows that no index hits (zero) and rows hit many times."""
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, max(1, rows // 2), (n,), generator=gen)  # the upper half of the rows is never hit
    grad = torch.randn(n, width, generator=gen, dtype=dtype)
    out = row_sums(idx, grad, rows)
    ref = torch.stack([grad[idx == r].double().sum(0) for r in range(rows)])  # in float64: exact enough to judge float32
    assert out.shape == (rows, width) and out.dtype == dtype and out.layout == torch.strided
    # Summing k terms in another order may differ by up to k·eps·Σ|terms| (the standard bound); unhit rows are exactly 0.
    hits = torch.bincount(idx, minlength=rows).double()[:, None]
    bound = hits * torch.finfo(dtype).eps * torch.stack([grad[idx == r].double().abs().sum(0) for r in range(rows)])
    assert ((out.double() - ref).abs() <= bound).all()


def test_a_kept_structure_sums_exactly_as_a_new_one():
    """Inside keeping_row_sums the structure is kept between calls with the same indices (a full-batch step),
    never served for other indices of the same size, and the result is bitwise the same whether it was kept
    or built: so a resumed run, whose first step builds it, matches one that never stopped. Outside, nothing
    is kept: no module-level state."""
    gen = torch.Generator().manual_seed(0)
    idx, grad = torch.randint(0, 50, (4000,), generator=gen), torch.randn(4000, 16, generator=gen)
    kept_by: dict = {}
    with lookup_module.keeping_row_sums(kept_by):
        first = row_sums(idx, grad, 64)
        kept = kept_by[(64, 4000, torch.float32)][1]
        again = row_sums(idx.clone(), grad, 64)
        assert kept_by[(64, 4000, torch.float32)][1] is kept, "same indices: the structure is reused"
    built = row_sums(idx, grad, 64)  # outside: built afresh, kept nowhere
    assert len(kept_by) == 1 and torch.equal(built, first) and torch.equal(again, first)
    with lookup_module.keeping_row_sums(kept_by):
        other = idx.roll(1)  # same size and rows, different content
        torch.testing.assert_close(row_sums(other, grad, 64), torch.zeros(64, 16).index_add_(0, other, grad))
        for n in range(1, 20):  # bounded: a minibatch run's ever-new sizes do not pile up
            row_sums(idx[:n], grad[:n], 64)
    assert len(kept_by) <= lookup_module.SUMMERS_KEPT
