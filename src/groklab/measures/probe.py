"""Linear probes on every Linear layer's output: how linearly decodable the labels are at each depth (Fan et al. 2024).

Protocol of the authors' code (tunnel_methods.EarlyExit): per layer, a probe nn.Linear(w, K)
is trained on the layer's pre-activation outputs over the TRAINING set, with Adam (lr 1e-3,
batch 512) for `measures.probe_epochs` epochs on a random 80%, loss = cross-entropy +
1e-3 * ||W||_F (not squared), in the model's dtype (float64 in fan2024); the LAST epoch's
weights are scored on the TEST set's outputs (their code has a best-on-validation reload
that is never called). `measures.probe_select=best` keeps instead the epoch that scores best
on the other 20%.

All layers are probed, the output layer too: it costs one more probe in the same
batched training. The probes of all layers train as one batch (features (N, G, w)
for G layers, torch.baddbmm over G): a narrower layer's features are zero-padded to the widest
layer, with its padded weights starting at 0; they get no gradient from either term
of the loss (zero inputs; d||W||/dW = W/||W|| is 0 there), so Adam never moves them
and each probe trains exactly as it would alone. Probes draw all randomness (split, shuffling, init) from a local
generator seeded by (run.seed, step): torch's global RNG is never touched, so a
resumed run stays bit-identical.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from groklab.errors import ConfigError
from groklab.measures.base import MEASURES, EvalContext, Measure
from groklab.measures.feature_rank import CHUNK, linear_layers
from groklab.measures.passes import Tap, run_taps
from groklab.tasks.base import TaskSpec

LR = 1e-3
BATCH = 512
NORM_COEF = 1e-3  # weight of ||W||_F in the probe loss
FIT_FRAC = 0.8  # the rest picks the best epoch under probe_select=best
PROBE_SELECT = ("last", "best")


def probe_seed(seed: int, step: int) -> int:
    """A 64-bit generator seed unique to (run seed, step) for seeds and steps below 2**32."""
    return ((seed & 0xFFFFFFFF) << 32) | (step & 0xFFFFFFFF)


def init_probes(
    widths: list[int], width: int, n_classes: int, generator: torch.Generator, dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights (G, K, width) (nn.Linear's layout) and biases (G, K) on the CPU, drawn like nn.Linear's: U(±1/sqrt(w)).

    Columns past a probe's own width w stay 0 (the zero padding of narrower layers).
    """
    G = len(widths)
    bound = torch.tensor([1 / math.sqrt(w) for w in widths], dtype=dtype)
    weight = (torch.rand(G, n_classes, width, generator=generator, dtype=dtype) * 2 - 1) * bound[:, None, None]
    weight *= torch.arange(width)[None, None, :] < torch.tensor(widths)[:, None, None]
    bias = (torch.rand(G, n_classes, generator=generator, dtype=dtype) * 2 - 1) * bound[:, None]
    return weight, bias


def probe_logits(weight: torch.Tensor, bias: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
    """Logits, class-major (G, K, B), of probes (weight (G, K, w), bias (G, K)) on features (B, G, w).

    Rows-first features make a batch one contiguous gather, and for few classes (K, w) @ (w, B)
    products run faster than (B, w) @ (w, K) ones on a CPU.
    """
    return torch.baddbmm(bias[..., None], weight, feats.permute(1, 2, 0))


@torch.no_grad()
def probe_accuracy(weight: torch.Tensor, bias: torch.Tensor, feats: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Accuracy (G,) of probes on features (N, G, w) with labels (N,)."""
    return (probe_logits(weight, bias, feats).argmax(dim=1) == y).float().mean(dim=1)


@torch.no_grad()
def probe_grads(
    weight: torch.Tensor, bias: torch.Tensor, feats: torch.Tensor, y: torch.Tensor, norm_coef: float = NORM_COEF
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients of Σ_g [mean cross-entropy of probe g + norm_coef * ||W_g||_F] on a batch (B, G, w), by hand.

    By hand it is one (G, K, B) @ (G, B, w) product and no graph; autograd's backward
    of the batched product takes a slower path.
    """
    g = probe_logits(weight, bias, feats).softmax(dim=1)  # (G, K, B) -> d(mean CE)/d(logits) below
    g -= F.one_hot(y, g.shape[1]).T.to(g.dtype)
    g /= len(y)
    norms = weight.flatten(1).norm(dim=1)
    scale = torch.where(norms > 0, norm_coef / norms, torch.zeros_like(norms))  # d||W||/dW = W/||W||; 0 at W = 0
    return torch.baddbmm(weight * scale[:, None, None], g, feats.transpose(0, 1)), g.sum(dim=2)


@torch.no_grad()
def fit_probes(
    feats: torch.Tensor,
    widths: list[int],
    y: torch.Tensor,
    n_classes: int,
    epochs: int,
    generator: torch.Generator,
    *,
    lr: float = LR,
    batch: int = BATCH,
    norm_coef: float = NORM_COEF,
    select: str = "last",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Train G probes at once on features (N, G, w) (zero-padded past each probe's width) for labels (N,), in the features' dtype.

    Returns the weights (G, K, w) and biases (G, K) of the last epoch (select="last", the authors')
    or of the epoch best on the held-out 20% (select="best"); all randomness comes from `generator`.
    """
    if select not in PROBE_SELECT:
        raise ValueError(f"unknown probe selection {select!r}; choose {' or '.join(PROBE_SELECT)}")
    N, G, width = feats.shape
    if N < 2:
        raise ValueError(f"a probe needs at least 2 training rows (fit and validation), got {N}")
    dev = feats.device
    n_fit = min(max(int(FIT_FRAC * N), 1), N - 1)
    perm = torch.randperm(N, generator=generator).to(dev)
    fit_idx, val_idx = perm[:n_fit], perm[n_fit:]
    x_val, y_val = feats.index_select(0, val_idx), y[val_idx]
    w0, b0 = init_probes(widths, width, n_classes, generator, feats.dtype)
    weight, bias = w0.to(dev), b0.to(dev)
    opt = torch.optim.Adam([weight, bias], lr=lr)  # grads set by hand: same update as Adam on a loss.backward()
    best_acc = torch.full((G,), -1.0, device=dev)
    best_w, best_b = weight.clone(), bias.clone()
    for _ in range(epochs):
        order = fit_idx[torch.randperm(n_fit, generator=generator).to(dev)]
        for s in range(0, n_fit, batch):
            idx = order[s : s + batch]
            weight.grad, bias.grad = probe_grads(weight, bias, feats.index_select(0, idx), y[idx], norm_coef)
            opt.step()
        if select == "last":
            continue  # the 20% split is still drawn, so both selections train on the same rows
        acc = probe_accuracy(weight, bias, x_val, y_val)
        better = acc > best_acc
        best_acc = torch.where(better, acc, best_acc)
        best_w[better], best_b[better] = weight[better], bias[better]
    return (weight, bias) if select == "last" else (best_w, best_b)


def linear_taps(model: nn.Module, x: torch.Tensor, sink: Callable[[int, int, torch.Tensor], None], chunk: int) -> list[int]:
    """One pass of x through the model, in chunks, handing every Linear's output to sink(layer, first row, output)
    (0-based layer, `model.modules()` order); returns the layers whose output was one row of features per example."""
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    layer = {n: i for i, n in enumerate(names)}
    rows: dict[str, int] = {}
    flat: set[str] = set()

    def feed(name: str, out: torch.Tensor) -> None:
        if out.dim() != 2:
            flat.add(name)
            return
        sink(layer[name], rows.get(name, 0), out)
        rows[name] = rows.get(name, 0) + len(out)

    tap = Tap("x", tuple(names), feed, chunk=chunk)
    run_taps(model, {"x": (x, torch.zeros(len(x), dtype=torch.long, device=x.device))}, [tap], "ce", chunk)
    return [i for i, n in enumerate(names) if n not in tap.invalid | flat]


def train_features(model: nn.Module, x: torch.Tensor, chunk: int = CHUNK) -> tuple[list[int], torch.Tensor]:
    """Every tappable Linear's output over x as features (N, G, w_max) in the model's dtype, zero-padded; their 0-based layers."""
    layers = linear_layers(model)
    width = max((layer.out_features for layer in layers), default=0)
    dtype = layers[0].weight.dtype if layers else torch.float32
    feats = torch.zeros(len(x), len(layers), width, dtype=dtype, device=x.device)

    def sink(i: int, first: int, out: torch.Tensor) -> None:
        feats[first : first + len(out), i, : out.shape[1]] = out

    valid = linear_taps(model, x, sink, chunk)
    return valid, feats if len(valid) == len(layers) else feats[:, valid]


@torch.no_grad()
def layer_probe_accuracy(
    model: nn.Module, layers: list[int], weight: torch.Tensor, bias: torch.Tensor, x: torch.Tensor, y: torch.Tensor, chunk: int = CHUNK
) -> dict[int, float]:
    """Accuracy of probe g on layer layers[g]'s outputs over (x, y), in chunks: {0-based layer: accuracy}."""
    pos = {i: g for g, i in enumerate(layers)}
    correct = torch.zeros(len(layers), dtype=torch.long, device=y.device)

    def sink(i: int, first: int, out: torch.Tensor) -> None:
        if i in pos:
            g = pos[i]
            logits = torch.addmm(bias[g], out.to(weight.dtype), weight[g, :, : out.shape[1]].T)
            correct[g] += (logits.argmax(-1) == y[first : first + len(out)]).sum()

    valid = set(linear_taps(model, x, sink, chunk))
    return {i: c / len(y) for i, c in zip(layers, correct.tolist(), strict=True) if i in valid}


MAX_PROBE_EPOCHS = 10_000  # every probe evaluation trains this many epochs (the authors' code: 30); 2**63 never ends


@dataclass
class ProbeConfig:
    """`measures.*` keys of probe."""

    probe_epochs: int = 30  # linear-probe training epochs (Fan et al.: Adam 1e-3, batch 512, 80/20 split)
    probe_select: str = "last"  # last: the last epoch's probe, as the authors' code scores; best: the best on the held-out 20%

    def validate(self) -> None:
        if self.probe_select not in ("last", "best"):
            raise ConfigError("measures.probe_select", f"unknown selection {self.probe_select!r}; choose last or best")
        if not 1 <= self.probe_epochs <= MAX_PROBE_EPOCHS:
            raise ConfigError("measures.probe_epochs", f"must be between 1 and {MAX_PROBE_EPOCHS:,}, got {self.probe_epochs}")


@MEASURES.register(
    "probe", config=ProbeConfig, summary="probe_acc/L<i>: test accuracy of a linear probe on each Linear layer's output (Fan et al. 2024)"
)
class LinearProbe(Measure):
    """probe_acc/L{i}: test accuracy of a linear probe trained on layer i's train-set outputs (output layer included)."""

    name = "probe"
    every = 5

    @classmethod
    def not_applicable(cls, model: nn.Module, spec: TaskSpec) -> str | None:
        if not linear_layers(model):
            return "linear probes need a model with nn.Linear layers"
        return None

    @classmethod
    def memory(cls, model: nn.Module, spec: TaskSpec, n_train: int, n_test: int) -> int:
        """The train set's features of every Linear, zero-padded to the widest, in the model's dtype."""
        layers = linear_layers(model)
        if not layers:
            return 0
        width = max(layer.out_features for layer in layers)
        return n_train * len(layers) * width * layers[0].weight.element_size()

    @torch.no_grad()
    def compute(self, ctx: EvalContext, taps: Sequence[Tap] = ()) -> dict[str, float]:
        d, K = ctx.data, ctx.spec.n_classes
        gen = torch.Generator().manual_seed(probe_seed(ctx.cfg.run.seed, ctx.step))
        layers, feats = train_features(ctx.model, d.train_x)
        if not layers:
            return {}
        widths = [linear_layers(ctx.model)[i].out_features for i in layers]
        W, b = fit_probes(feats, widths, d.train_y, K, ctx.cfg.measures.probe_epochs, gen, select=ctx.cfg.measures.probe_select)
        del feats
        acc = layer_probe_accuracy(ctx.model, layers, W, b, d.test_x, d.test_y)
        return {f"probe_acc/L{i + 1}": a for i, a in acc.items()}
