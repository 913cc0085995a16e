"""Nanda et al.'s (2023) progress measures of the Fourier multiplication circuit, for a + b and a − b mod p.

A transformer that groks modular addition computes cos(w(a + b − c)) for a few key frequencies
w = 2πk/p and reads the answer c off their sum. Over all p² inputs (a, b):

- key frequencies: the 2-D Fourier transform of each MLP neuron's activation at the last position
  (`blocks.0.mlp.hook_post`, centred over the inputs) gives, for each frequency k, the share of the
  neuron's variance in the terms {1, cos k, sin k} x {1, cos k, sin k}; a neuron belongs to its best k
  when that share is at least `measures.fourier_key_frac`, and the key frequencies are those with a
  neuron (their code takes every neuron's best k: `fourier_key_frac=0`, which for a network that has
  no circuit yet calls nearly every frequency key);
- restricted loss: the cross-entropy over all p² inputs of the logits projected, along the input
  axis, onto cos(w(a ± b)) and sin(w(a ± b)) of the key frequencies, plus the mean logits those
  directions leave out (their bias correction);
- excluded loss: the cross-entropy on the training pairs of the logits with those key-frequency terms
  removed (all key frequencies at once, as the paper defines it; their code lists one value per
  frequency);
- fourier_gini_embed, fourier_gini_logit: the Gini coefficient of the per-frequency norms of the
  operand a's token embedding and of the neuron-to-logit map W_U W_out, Fourier-transformed along the
  number axis: near 0 when every frequency carries as much, near 1 when a few carry all.

All in float64. The inputs are read from the train and test sets, which cover every pair (a, b).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from groklab.errors import ConfigError, GroklabError
from groklab.measures.base import MEASURES, EvalContext, Measure
from groklab.measures.passes import LOGITS, Tap
from groklab.models.hooks import hook_names
from groklab.tasks.base import TaskSpec

NEURONS = "blocks.0.mlp.hook_post"
OPERATIONS = ("add", "sub")


def fourier_basis(p: int) -> torch.Tensor:
    """(p, p) orthonormal rows over Z_p: the constant, then cos k and sin k for k = 1..p//2 (p odd)."""
    x = torch.arange(p, dtype=torch.float64)
    rows = [torch.ones(p, dtype=torch.float64)]
    for k in range(1, p // 2 + 1):
        rows += [torch.cos(2 * math.pi * k * x / p), torch.sin(2 * math.pi * k * x / p)]
    basis = torch.stack(rows[:p])
    return basis / basis.norm(dim=1, keepdim=True)


def neuron_frequencies(acts: torch.Tensor, p: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per neuron of acts (p², M) (input (a, b) at row a·p + b): its best frequency k (1..p//2) and the share
    of its centred variance that the 2-D terms {1, cos k, sin k} x {1, cos k, sin k} explain; a neuron that
    never varies gets share 0.

    Only those terms are computed: the transform along a, then, per row, the 3 columns it meets in a block;
    the total comes from Parseval."""
    basis = fourier_basis(p)  # (p, p): const, cos 1, sin 1, ...
    centred = acts.double() - acts.double().mean(0)
    along_a = (basis @ centred.reshape(p, -1)).reshape(p, p, -1)  # (a-frequency term, b, neuron): one matrix product
    ks = torch.arange(1, p // 2 + 1)
    pair = torch.stack([2 * ks - 1, 2 * ks], dim=1)  # (K, 2): the cos k and sin k rows of the basis
    rows = along_a[pair]  # (K, 2, p, M): the a-terms cos k and sin k
    corner = basis[0] @ along_a[0]  # (M,): the (const, const) term, zero once centred
    edge_a = torch.einsum("kibm,b->kim", rows, basis[0])  # (K, 2, M): (cos/sin k of a, const of b)
    edge_b = torch.einsum("kjb,bm->kjm", basis[pair], along_a[0])  # (K, 2, M): (const of a, cos/sin k of b)
    inner = torch.einsum("kibm,kjb->kijm", rows, basis[pair])  # (K, 2, 2, M)
    block = corner.square() + edge_a.square().sum(1) + edge_b.square().sum(1) + inner.square().sum((1, 2))  # (K, M)
    total = centred.square().sum(0)  # (M,): Parseval
    share = block / total.clamp_min(torch.finfo(torch.float64).tiny)
    best, k = share.max(0)
    return k + 1, torch.where(total > 0, best, torch.zeros_like(best))


def key_frequencies(acts: torch.Tensor, p: int, min_share: float) -> list[int]:
    """The frequencies some neuron belongs to (its best, explaining >= min_share of its variance), ascending."""
    k, share = neuron_frequencies(acts, p)
    return sorted({int(f) for f, s in zip(k.tolist(), share.tolist(), strict=True) if s >= min_share and s > 0})


def circuit_directions(p: int, freqs: Sequence[int], op: str) -> torch.Tensor:
    """(2K, p²) orthonormal: cos(w(a ± b)) and sin(w(a ± b)) over the inputs (a, b), for each key frequency."""
    basis = fourier_basis(p)
    out = []
    sign = 1.0 if op == "add" else -1.0
    for k in freqs:
        c, s = basis[2 * k - 1], basis[2 * k]
        cc, ss, sc, cs = (torch.outer(u, v).flatten() for u, v in ((c, c), (s, s), (s, c), (c, s)))
        out += [(cc - sign * ss) / math.sqrt(2), (sc + sign * cs) / math.sqrt(2)]  # cos(a ± b), sin(a ± b)
    return torch.stack(out) if out else torch.zeros(0, p * p, dtype=torch.float64)


def restricted_and_excluded(
    logits: torch.Tensor, labels: torch.Tensor, is_train: torch.Tensor, p: int, freqs: Sequence[int], op: str
) -> tuple[float, float]:
    """Restricted loss over all p² inputs and excluded loss on the training pairs, of logits (p², p)."""
    logits = logits.double()
    d = circuit_directions(p, freqs, op)  # (2K, p²)
    trig = d.T @ (d @ logits)  # (p², p): the key-frequency terms
    restricted = trig + (logits - trig).mean(0, keepdim=True)  # their bias correction: keep what is the same for every input
    excluded = logits - trig
    return F.cross_entropy(restricted, labels).item(), F.cross_entropy(excluded[is_train], labels[is_train]).item()


def gini(x: torch.Tensor) -> float:
    """Gini coefficient of non-negative x: 0 when all are equal, (n - 1)/n when one holds everything."""
    x = x.double().flatten().sort().values
    n, total = len(x), x.sum()
    if n == 0 or total <= 0:
        return 0.0
    i = torch.arange(1, n + 1, dtype=torch.float64)
    return float(2 * (i * x).sum() / (n * total) - (n + 1) / n)


def frequency_norms(w: torch.Tensor, p: int) -> torch.Tensor:
    """Per frequency k = 1..p//2, the norm of w (p, ...)'s cos k and sin k components along its first axis."""
    coef = fourier_basis(p) @ w.double().reshape(p, -1)  # (p, rest)
    return torch.stack([coef[2 * k - 1 : 2 * k + 1].norm() for k in range(1, p // 2 + 1)])


@dataclass
class FourierCircuitConfig:
    """`measures.*` keys of fourier_circuit."""

    fourier_key_frac: float = 0.5  # a neuron counts for its best frequency when that explains >= this share of its variance

    def validate(self) -> None:
        if not 0.0 <= self.fourier_key_frac <= 1.0:
            raise ConfigError("measures.fourier_key_frac", f"must be in [0, 1], got {self.fourier_key_frac}")


class Grid:
    """A tap's sink: the operands' rows, the last position's neuron activations and the logits, chunk by chunk."""

    def __init__(self) -> None:
        self.acts: list[torch.Tensor] = []
        self.logits: list[torch.Tensor] = []

    def __call__(self, name: str, out: torch.Tensor) -> None:
        (self.logits if name == LOGITS else self.acts).append(out[:, -1] if name == NEURONS else out)


@MEASURES.register(
    "fourier_circuit",
    config=FourierCircuitConfig,
    summary="fourier_restricted_loss, fourier_excluded_loss, fourier_key_freqs, fourier_gini_embed/_logit: "
    "the Fourier multiplication circuit over all p² inputs (Nanda et al. 2023); a + b or a - b mod p",
)
class FourierCircuit(Measure):
    name = "fourier_circuit"
    every = 10  # its passes read every pair through the plain forward: several times loss_acc's cost (benchmarks/measures.py)

    @classmethod
    def not_applicable(cls, model: nn.Module, spec: TaskSpec) -> str | None:
        if spec.operation not in OPERATIONS:
            got = f"task.op={spec.operation}" if spec.operation else "a task without task.op"
            return f"the additive Fourier basis fits a + b and a - b mod p only (task.op=add or sub), got {got}"
        if NEURONS not in hook_names(model) or not hasattr(model, "unembed"):
            return f"it reads the MLP neurons at {NEURONS}: a transformer (model.name=transformer)"
        return None

    @classmethod
    def memory(cls, model: nn.Module, spec: TaskSpec, n_train: int, n_test: int) -> int:
        """The MLP neurons and the logits over all p² inputs, gathered twice (the taps, then in grid order), in float32."""
        neurons = model.blocks[0].mlp.fc_in.out_features if hasattr(model, "blocks") else 0
        return 2 * 4 * spec.n_classes**2 * (neurons + spec.n_classes)

    def taps(self, ctx: EvalContext) -> list[Tap]:
        return [Tap(split, (NEURONS, LOGITS), Grid()) for split in ("train", "test")]

    @torch.no_grad()
    def compute(self, ctx: EvalContext, taps: Sequence[Tap] = ()) -> dict[str, float]:
        taps = taps or ctx.run(self.taps(ctx))
        spec, p = ctx.spec, ctx.spec.n_classes
        d = ctx.data
        rows, acts, logits, labels, train = [], [], [], [], []
        for tap, x, y in zip(taps, (d.train_x, d.test_x), (d.train_y, d.test_y), strict=True):
            assert isinstance(tap.sink, Grid)
            (ia, ib), (oa, ob) = spec.operand_positions, spec.operand_token_offsets
            rows.append((x[:, ia] - oa) * p + (x[:, ib] - ob))
            acts += tap.sink.acts
            logits += tap.sink.logits
            labels.append(y)
            train.append(torch.full_like(y, tap.split == "train", dtype=torch.bool))
        index = torch.cat(rows)
        if len(index) != p * p or len(torch.unique(index)) != p * p:
            raise GroklabError(
                f"fourier_circuit needs every pair (a, b) in the train or test set; got {len(torch.unique(index))} of {p * p}"
            )
        order = torch.argsort(index)
        grid_acts, grid_logits = torch.cat(acts)[order], torch.cat(logits)[order]
        grid_labels, is_train = torch.cat(labels)[order], torch.cat(train)[order]
        freqs = key_frequencies(grid_acts, p, ctx.cfg.measures.fourier_key_frac)
        restricted, excluded = restricted_and_excluded(grid_logits, grid_labels, is_train, p, freqs, spec.operation)
        model = ctx.model
        emb = model.tok_emb.weight[spec.operand_token_offsets[0] : spec.operand_token_offsets[0] + p]  # (p, C): operand a's tokens
        neuron_to_logit = model.unembed.weight @ model.blocks[0].mlp.fc_out.weight  # (p, M)
        return {
            "fourier_restricted_loss": restricted,
            "fourier_excluded_loss": excluded,
            "fourier_key_freqs": float(len(freqs)),
            "fourier_gini_embed": gini(frequency_norms(emb, p)),
            "fourier_gini_logit": gini(frequency_norms(neuron_to_logit, p)),
        }
