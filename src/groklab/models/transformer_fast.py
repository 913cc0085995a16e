"""The transformer's training path: `Transformer.forward`'s arithmetic, minus what the loss never reads.

- Only the last position predicts, so the last block computes only that position's query, attention
  output and MLP, with the scores by broadcasting instead of T-long batched matmuls.
- The first block's input at (b, t) is tok_emb[idx[b, t]] + positions[t]: one of T·V vectors. When the
  batch has more rows than the vocabulary (a full-batch step on modular arithmetic), those T·V vectors
  are projected once and gathered (`lookup`), instead of projecting B·T rows. Exact, since each row of a
  projection depends on its own input row only; skipped under embedding dropout. With one block, the
  residual stream then needs only the last position.

tests/test_models.py checks this path against the plain forward and against an einsum reference.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from groklab.models.lookup import lookup

if TYPE_CHECKING:
    from groklab.models.transformer import Attention, Block, Transformer

QKV = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def fast_forward(model: Transformer, idx: torch.Tensor) -> torch.Tensor:
    """(B, T) token ids -> (B, K) logits, as `model.forward` with `model.fast` off."""
    T = idx.shape[1]
    qkv = first_block_qkv(model, idx)
    keep = T - 1 if qkv is not None and len(model.blocks) == 1 else 0  # positions the residual stream needs
    x = model.drop(lookup(idx[:, keep:], model.tok_emb.weight) + model.positions[keep:T])  # (B, T - keep, C)
    last = len(model.blocks) - 1
    for i, block in enumerate(model.blocks):
        x = block_forward(block, x, last_only=i == last, qkv=qkv if i == 0 else None)  # the last block keeps (B, 1, C)
    return model.unembed(model.ln_f(x[:, -1]))  # (B, K)


def block_forward(block: Block, x: torch.Tensor, last_only: bool, qkv: QKV | None) -> torch.Tensor:
    """Block.forward, keeping only the last position if `last_only`; `qkv`: its attention projections, precomputed."""
    res = x[:, -1:] if last_only else x  # the residual stream positions we keep
    if block.norm == "post":
        x = block.ln_1(res + attention(block.attn, x, last_only, qkv))
        return block.ln_2(x + block.mlp(x))
    x = res + attention(block.attn, block.ln_1(x) if qkv is None else x, last_only, qkv)
    return x + block.mlp(block.ln_2(x))


def attention(attn: Attention, x: torch.Tensor, last_only: bool, qkv: QKV | None) -> torch.Tensor:
    """Attention.forward: x (B, T, C) -> (B, Tq, C) with Tq = 1 if last_only else T."""
    if qkv is None:
        # contiguous: under vmap (ensembles) a Linear with stacked weights on a strided slice copies
        # its weight once per example (B x C x C); on a contiguous (B, 1, C) it is one batched matmul
        qkv = attn.q_proj(x[:, -1:].contiguous() if last_only else x), attn.k_proj(x), attn.v_proj(x)
    if not last_only:
        return attn.out_drop(attn.out_proj(attn.mix(*qkv)))
    q, k, v = qkv  # (B, 1, C), (B, T, C), (B, T, C)
    B, T, C = k.shape
    H, D = attn.n_heads, C // attn.n_heads
    q, k, v = q.view(B, 1, H, D), k.view(B, T, H, D), v.view(B, T, H, D)
    att = (q * k).sum(-1) * attn.scale  # (B, T, H): the last position sees every key
    att = attn.attn_drop(F.softmax(att, dim=1))
    y = (att.unsqueeze(-1) * v).sum(1).reshape(B, 1, C)  # (B, 1, C)
    return attn.out_drop(attn.out_proj(y))


def first_block_qkv(model: Transformer, idx: torch.Tensor) -> QKV | None:
    """The first block's projections by table lookup, or None where projecting the batch is cheaper."""
    B, T = idx.shape
    V, C = model.tok_emb.weight.shape
    if V >= B or (model.training and model.drop.p > 0):
        return None
    block = model.blocks[0]
    table = model.positions[:T, None] + model.tok_emb.weight[None]  # (T, V, C): every (position, token)
    h = block.ln_1(table) if block.norm == "pre" else table
    q, k, v = block.attn.q_proj(h), block.attn.k_proj(h), block.attn.v_proj(h)  # each (T, V, C)
    rows = idx + V * torch.arange(T, device=idx.device)  # (B, T): row of (t, idx[b, t]) in the flattened table
    if len(model.blocks) == 1:  # the only block is also the last: only the last position's query is needed
        q, q_rows = q[-1], idx[:, -1:]  # (V, C), (B, 1)
    else:
        q, q_rows = q.reshape(T * V, C), rows
    return lookup(q_rows, q), lookup(rows, k.reshape(T * V, C)), lookup(rows, v.reshape(T * V, C))
