"""Feature rank of every Linear layer's output, and the tunnel (Fan, Pascanu, Jaggi 2024, "Deep Grokking").

For each nn.Linear (numbered 1..L in `model.modules()` order) the output before the
activation over the evaluation set gives A (N, w); its feature rank is
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

import copy
from collections.abc import Callable
from types import TracebackType

import torch
from torch import nn

from groklab.measures.base import MEASURES, EvalContext, Measure
from groklab.measures.loss_acc import EVAL_CHUNK, eval_chunk, evaluate
from groklab.tasks.base import TaskSpec

CHUNK = 4096
EPS64 = torch.finfo(torch.float64).eps
GRAM_BLOCK = 128  # column block of the triangular scatter update: ~2/3 of the flops of a full X^T X at w = 400


def linear_layers(model: nn.Module) -> list[nn.Linear]:
    """The model's nn.Linear modules in `model.modules()` order: layer i of the metrics is entry i-1."""
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


class LinearTaps:
    """Forward hooks that hand each nn.Linear's output to `sink(i, output)` inside the hook, 0-based i.

    The sink runs before any in-place activation can overwrite the output. A layer is
    tapped only while every forward calls it exactly once with a (rows, w) output;
    otherwise it lands in `invalid` and its data must be ignored. Use as a context
    manager so the hooks are removed even if the forward pass raises.
    """

    def __init__(self, model: nn.Module, sink: Callable[[int, torch.Tensor], None]) -> None:
        self.model = model
        self.layers = linear_layers(model)
        self.sink = sink
        self.invalid: set[int] = set()
        self._calls = [0] * len(self.layers)
        self._rows = 0
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def __enter__(self) -> LinearTaps:
        for i, layer in enumerate(self.layers):
            self._handles.append(layer.register_forward_hook(self._hook(i)))
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def _hook(self, i: int) -> Callable[[nn.Module, tuple, torch.Tensor], None]:
        def hook(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
            self._calls[i] += 1
            if self._calls[i] == 1 and output.dim() == 2 and output.shape[0] == self._rows and i not in self.invalid:
                self.sink(i, output.detach())
            else:
                self.invalid.add(i)

        return hook

    def run(self, x: torch.Tensor) -> torch.Tensor:
        """One forward pass of `x` (no grad), feeding the sink; returns the model's output."""
        self._rows, self._calls = len(x), [0] * len(self.layers)
        with torch.no_grad():
            out = self.model(x)
        self.invalid.update(i for i, c in enumerate(self._calls) if c != 1)
        return out

    @property
    def valid(self) -> list[int]:
        """0-based indices of the layers tapped on every pass so far."""
        return [i for i in range(len(self.layers)) if i not in self.invalid]


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


def layer_outputs_stats(model: nn.Module, x: torch.Tensor, chunk: int = CHUNK) -> dict[int, CovarianceAccumulator]:
    """Covariance statistics of every tappable Linear's output over the rows of x, keyed by 1-based layer number.

    One no-grad forward pass in chunks of `chunk` rows; the hooks are always removed.
    """
    return stats_and_loss_acc(model, x, None, "ce", chunk)[0]


def stats_and_loss_acc(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, loss: str, chunk: int = CHUNK, eval_rows: int = EVAL_CHUNK
) -> tuple[dict[int, CovarianceAccumulator], tuple[float, float] | None]:
    """The layer statistics and, given labels, the mean loss and accuracy from the same forward pass
    (loss_acc's own chunked evaluation, so the numbers are identical to the ones it would compute)."""
    accs: dict[int, CovarianceAccumulator] = {}

    def sink(i: int, out: torch.Tensor) -> None:
        if i not in accs:
            accs[i] = CovarianceAccumulator(out.shape[1], out.device)
        accs[i].update(out)

    result = None
    with LinearTaps(model, sink) as taps:
        if y is None:
            for s in range(0, len(x), chunk):
                taps.run(x[s : s + chunk])
        else:
            result = evaluate(model, x, y, loss, forward=taps.run, chunk=eval_rows)
    return {i + 1: accs[i] for i in taps.valid if i in accs}, result


def in_float64(model: nn.Module, x: torch.Tensor) -> tuple[nn.Module, torch.Tensor]:
    """The model and inputs to take activations from in float64: a float64 copy unless the model is float64 already
    (or on MPS, which has no float64: there the float32 model is used as it is)."""
    p = next(model.parameters(), None)
    if p is None or p.dtype == torch.float64 or p.device.type == "mps":
        return model, x
    return copy.deepcopy(model).double(), x.double() if x.is_floating_point() else x


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


@MEASURES.register("feature_rank")
class FeatureRank(Measure):
    """rank/L{i} and erank/L{i} of each Linear's pre-activation covariance, tunnel_length and tunnel_length_hidden.

    tunnel_length counts every measured layer, the output layer included (with an
    absolute threshold above its width, it always counts); tunnel_length_hidden leaves the
    output layer out.
    """

    name = "feature_rank"
    every = 5
    fills_cache = True
    summary = "rank/L<i>, erank/L<i>: (effective) rank of each Linear output's covariance; tunnel_length(_hidden) (Fan et al. 2024)"

    @classmethod
    def not_applicable(cls, model: nn.Module, spec: TaskSpec) -> str | None:
        if not linear_layers(model):
            return "feature rank needs a model with nn.Linear layers"
        return None

    @torch.no_grad()
    def compute(self, ctx: EvalContext) -> dict[str, float]:
        m = ctx.cfg.measures
        split = m.rank_on
        x, y = (ctx.data.test_x, ctx.data.test_y) if split == "test" else (ctx.data.train_x, ctx.data.train_y)
        model, x64 = in_float64(ctx.model, x)
        # in the run's own dtype, this pass is also loss_acc's (which runs later): one forward pass for both
        shared = model is ctx.model and f"{split}_loss" not in ctx.cache
        stats, loss_acc = stats_and_loss_acc(model, x64, y if shared else None, ctx.cfg.optim.loss, eval_rows=eval_chunk(ctx.cfg))
        if loss_acc is not None:
            ctx.cache[f"{split}_loss"], ctx.cache[f"{split}_acc"] = loss_acc
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
        output = len(linear_layers(ctx.model))  # the last Linear is the output layer
        hidden = [k for k, i in enumerate(stats) if i != output]
        out["tunnel_length_hidden"] = float(tunnel_length([ranks[k] for k in hidden], [widths[k] for k in hidden], m.tunnel_threshold))
        return out
