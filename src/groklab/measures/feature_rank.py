"""Feature rank of every Linear layer's output, and the tunnel (Fan, Pascanu, Jaggi 2024, "Deep Grokking").

For each layer of an MLP (its hook point `layers.{i}.hook_pre`, numbered i + 1; in other models each
nn.Linear, numbered in `model.modules()` order) the output before the activation over the evaluation
set gives A (N, w); its feature rank is
matrix_rank(cov(A)) with matrix_rank's default tolerance sigma_max * w * eps(float64),
as in the authors' code, always in float64: a model that trains in another dtype is
measured through a float64 copy, since float32 round-off in a layer whose mean is far
above its spread is noise well above the float64 tolerance and reads as extra rank.
The covariance is accumulated chunk by
chunk (Chan et al.'s pairwise merge of centred scatter matrices), so memory stays
O(w^2) per layer whatever N, and chunk-wise centring keeps the round-off of
X^T X - N mu mu^T (which a large mean would otherwise blow up above the tolerance) away.

Only layers whose output has one row per example, from one call per forward pass,
are measured (e.g. an MLP's layers; a transformer's (B, T, w) projections are skipped).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from groklab.errors import ConfigError
from groklab.measures.base import MEASURES, EvalContext, Measure
from groklab.measures.passes import Tap, run_taps
from groklab.models.hooks import hook_names
from groklab.tasks.base import TaskSpec

LAYER_HOOK = re.compile(r"(?:^|\.)layers\.(\d+)\.hook_pre$")  # an MLP's i-th Linear output
CHUNK = 4096
EPS64 = torch.finfo(torch.float64).eps
GRAM_BLOCK = 128  # column block of the triangular scatter update: ~2/3 of the flops of a full X^T X at w = 400


def linear_layers(model: nn.Module) -> list[nn.Linear]:
    """The model's nn.Linear modules in `model.modules()` order: layer i of the metrics is entry i-1."""
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


class CovarianceAccumulator:
    """Running mean and centred scatter of rows fed in chunks, in float64; `covariance()` equals torch.cov (N - 1).

    Only the upper triangle of the scatter is accumulated (it is symmetric), in
    column blocks, which saves about a third of the flops at w = 400; `covariance()` mirrors it.
    """

    def __init__(self, width: int, device: torch.device) -> None:
        if device.type == "mps":  # no float64 on MPS
            device = torch.device("cpu")
        self.width, self.device, self.n = width, device, 0
        self.mean = torch.zeros(width, dtype=torch.float64, device=device)
        self.m2 = torch.zeros(width, width, dtype=torch.float64, device=device)  # upper triangle valid

    def update(self, x: torch.Tensor) -> None:
        """Merge the rows of x (n, w) in (Chan, Golub, LeVeque 1979: exact up to round-off)."""
        nb = len(x)
        if nb == 0:
            return
        xc = x.to(self.device, torch.float64, copy=True)  # a copy even in float64: centred in place below
        mb = xc.mean(dim=0)
        xc.sub_(mb)
        if self.n:
            n = self.n + nb
            delta = mb - self.mean
            self.m2.addr_(delta, delta, alpha=self.n * nb / n)
            self.mean += delta * (nb / n)
        else:
            self.mean = mb
        for s in range(0, self.width, GRAM_BLOCK):
            e = min(s + GRAM_BLOCK, self.width)
            self.m2[s:e, s:].addmm_(xc[:, s:e].T, xc[:, s:])
        self.n += nb

    def covariance(self) -> torch.Tensor:
        """Unbiased covariance (w, w), symmetric; needs at least 2 rows."""
        if self.n < 2:
            raise ValueError(f"a covariance needs at least 2 rows, got {self.n}")
        upper = self.m2.triu()
        return (upper + upper.triu(1).T) / (self.n - 1)


class LayerStats:
    """A tap's sink: the covariance statistics of each named layer's output, chunk by chunk; a layer whose
    output is not one row of features per example (a transformer's (B, T, w) projections) is left out."""

    def __init__(self) -> None:
        self.accs: dict[str, CovarianceAccumulator] = {}
        self.skipped: set[str] = set()

    def __call__(self, name: str, out: torch.Tensor) -> None:
        if out.dim() != 2:
            self.skipped.add(name)
            return
        if name not in self.accs:
            self.accs[name] = CovarianceAccumulator(out.shape[1], out.device)
        self.accs[name].update(out)


def layer_outputs_stats(model: nn.Module, x: torch.Tensor, chunk: int = CHUNK) -> dict[int, CovarianceAccumulator]:
    """Covariance statistics of every measurable Linear's output over the rows of x, keyed by 1-based layer number."""
    tap = layer_tap("test", model, float64=False)
    run_taps(model, {"test": (x, torch.zeros(len(x), dtype=torch.long))}, [tap], "ce", chunk)
    return measured_layers(tap, model)


def layer_names(model: nn.Module) -> dict[str, int]:
    """What feature rank measures, by name, with its 1-based layer number (`rank/L{number}`): an MLP's
    `layers.{i}.hook_pre` hook points (the i-th Linear's output: number i + 1, whatever else the model
    holds); in another model, every nn.Linear's output, numbered in `model.modules()` order."""
    pre = {n: m for n in hook_names(model) if (m := LAYER_HOOK.search(n))}
    if pre:
        return {n: int(m.group(1)) + 1 for n, m in pre.items()}
    return {n: i + 1 for i, n in enumerate(n for n, m in model.named_modules() if isinstance(m, nn.Linear))}


def layer_tap(split: str, model: nn.Module, float64: bool = True) -> Tap:
    """The tap of every measured layer's output over a split (layer_names)."""
    return Tap(split, tuple(layer_names(model)), LayerStats(), float64=float64, chunk=CHUNK)


def measured_layers(tap: Tap, model: nn.Module) -> dict[int, CovarianceAccumulator]:
    """The statistics of the layers measured on every chunk, keyed by their layer number (layer_names)."""
    sink = tap.sink
    assert isinstance(sink, LayerStats)
    numbers = layer_names(model)
    return {numbers[n]: sink.accs[n] for n in tap.names if n in sink.accs and n not in sink.skipped | tap.invalid}


def covariance_spectrum(cov: torch.Tensor) -> torch.Tensor:
    """Singular values of a symmetric matrix, descending, in float64 (|eigenvalues|: cheaper than an SVD)."""
    return torch.linalg.eigvalsh(cov.double()).abs().sort(descending=True).values


def rank_from_spectrum(s: torch.Tensor, d: int, rtol: float | None = None) -> int:
    """Singular values above rtol * sigma_max, rtol = d * eps(float64) by default: torch.linalg.matrix_rank's rule."""
    if s.numel() == 0:
        return 0
    tol = (d * EPS64 if rtol is None else rtol) * s.max()
    return int((s > tol).sum())


def effective_rank(s: torch.Tensor) -> float:
    """exp(entropy of s / sum(s)) (Roy & Vetterli 2007): a rank that weighs directions by their share of variance."""
    s = s.double().abs()
    total = s.sum()
    if total <= 0:
        return 0.0
    return torch.special.entr(s / total).sum().exp().item()  # entr(0) = 0: zero singular values add nothing


def tunnel_length(ranks: list[int], widths: list[int], threshold: float) -> int:
    """Layers whose rank is below the threshold: a fraction of the layer's width if threshold < 1, else a rank."""
    return sum(r < (threshold * w if threshold < 1 else threshold) for r, w in zip(ranks, widths, strict=True))


@dataclass
class FeatureRankConfig:
    """`measures.*` keys of feature_rank."""

    rank_on: Literal["test", "train"] = "test"  # the evaluation set feature rank is computed over
    rank_rtol: float | None = None  # matrix_rank's relative tolerance; None = sigma_max * d * eps (Fan et al.)
    tunnel_threshold: float = 0.75  # a layer is in the tunnel if its rank < this (< 1: a fraction of its width; >= 1: absolute)

    def validate(self) -> None:
        if self.rank_rtol is not None and not 0.0 < self.rank_rtol < 1.0:
            raise ConfigError("measures.rank_rtol", f"must be in (0, 1) or null (the default tolerance), got {self.rank_rtol}")
        if self.tunnel_threshold <= 0:
            raise ConfigError(
                "measures.tunnel_threshold", f"must be > 0 (< 1: a fraction of the width; >= 1: a rank), got {self.tunnel_threshold}"
            )


@MEASURES.register(
    "feature_rank",
    config=FeatureRankConfig,
    summary="rank/L<i>, erank/L<i>: (effective) rank of each Linear output's covariance; tunnel_length(_hidden) (Fan et al. 2024)",
)
class FeatureRank(Measure):
    """rank/L{i} and erank/L{i} of each Linear's pre-activation covariance, tunnel_length and tunnel_length_hidden.

    tunnel_length counts every measured layer, the output layer included (with an
    absolute threshold above its width, it always counts); tunnel_length_hidden leaves the
    output layer out.
    """

    name = "feature_rank"
    every = 5

    @classmethod
    def not_applicable(cls, model: nn.Module, spec: TaskSpec) -> str | None:
        if not linear_layers(model):
            return "feature rank needs a model with nn.Linear layers"
        return None

    @classmethod
    def memory(cls, model: nn.Module, spec: TaskSpec, n_train: int, n_test: int) -> int:
        """Every Linear's float64 covariance accumulator (width²), all held through the pass."""
        return sum(8 * (layer.out_features**2 + layer.out_features) for layer in linear_layers(model))

    def taps(self, ctx: EvalContext) -> list[Tap]:
        """Every Linear's output over the `measures.rank_on` split, from a float64 copy of the model unless it is
        float64 already (then the pass is loss_acc's too)."""
        return [layer_tap(ctx.cfg.measures.rank_on, ctx.model)]

    @torch.no_grad()
    def compute(self, ctx: EvalContext, taps: Sequence[Tap] = ()) -> dict[str, float]:
        m = ctx.cfg.measures
        (tap,) = taps or ctx.run(self.taps(ctx))
        stats = measured_layers(tap, ctx.model)
        out: dict[str, float] = {}
        ranks, widths = [], []
        for i, acc in stats.items():
            s = covariance_spectrum(acc.covariance())
            r = rank_from_spectrum(s, acc.width, m.rank_rtol)
            out[f"rank/L{i}"] = float(r)
            out[f"erank/L{i}"] = effective_rank(s)
            ranks.append(r)
            widths.append(acc.width)
        out["tunnel_length"] = float(tunnel_length(ranks, widths, m.tunnel_threshold))
        output = max(layer_names(ctx.model).values())  # the output layer
        hidden = [k for k, i in enumerate(stats) if i != output]
        out["tunnel_length_hidden"] = float(tunnel_length([ranks[k] for k in hidden], [widths[k] for k in hidden], m.tunnel_threshold))
        return out
