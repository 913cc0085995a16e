"""The Fourier view of the number-token embedding over Z_p (Nanda et al. 2023).

A transformer that groks modular addition embeds each number through cos and
sin of a few "key" frequencies w_k = 2πk/p: the embedding's power spectrum
over the token axis becomes sparse, while a random init spreads its power over
all p//2 frequencies. The spectrum is taken along the tokens 0..p-1 (a DFT
over Z_p, hence no wrap option), summed over the C embedding columns.

The constant component (k = 0: the mean embedding, which carries no
information about which number it is) is excluded from every metric, so they
describe the centred embedding.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from groklab.measures.base import MEASURES, EvalContext, Measure
from groklab.measures.med import needs_number_tokens
from groklab.measures.passes import Tap
from groklab.tasks.base import TaskSpec

TOP_K = 5  # fourier_sparsity's K: Nanda et al.'s p = 113 model uses about 5 key frequencies
KEY_RATIO = 2.0  # a key frequency carries >= this many times the mean power of the frequencies 1..p//2


def frequency_power(emb: torch.Tensor) -> torch.Tensor:
    """Power per frequency k = 0..p//2 of emb (p, C), float64: the squared norm of its cos/sin component at k.

    Summed over the C columns, cos and sin together; the entries add up to ‖emb‖_F² (Parseval), so
    power[k] / ‖emb − mean‖_F² for k >= 1 is the share of the centred embedding's norm² at frequency k.
    """
    p = emb.shape[0]
    X = torch.fft.rfft(emb.detach().double(), dim=0)  # (p//2 + 1, C)
    power = X.abs().square().sum(dim=1) / p
    # frequencies 1..ceil(p/2)-1 stand for k and p-k; the Nyquist one (even p only) stands for itself alone
    power[1 : (p + 1) // 2] *= 2
    return power


def _varying_power(power: torch.Tensor) -> torch.Tensor | None:
    """power[1:], or None when it is zero up to round-off (all rows equal): then no spectrum is defined."""
    ac = power[1:]
    return ac if ac.numel() and ac.sum() > 1e-12 * power.sum() else None


def key_frequencies(power: torch.Tensor, ratio: float = KEY_RATIO) -> list[int]:
    """Frequencies k >= 1 whose power is >= ratio x the mean power of frequencies 1..p//2, strongest first.

    Relative to the mean, so the rule reads the same for every p. In an i.i.d. Gaussian embedding each
    frequency's power has relative spread 1/sqrt(C): over 200 draws at p = 97 the largest was 1.4x the
    mean for C = 128, 1.8x for C = 32 (2.2x for C = 16), so none counts as key for C >= 32; a grokked
    embedding puts most of its power in a few frequencies, each many times the mean.
    """
    ac = _varying_power(power)
    if ac is None:
        return []
    order = torch.argsort(ac, descending=True, stable=True)
    return (order[ac[order] >= ratio * ac.mean()] + 1).tolist()


def top_k_share(power: torch.Tensor, k: int = TOP_K) -> float:
    """Share of the power over frequencies 1..p//2 in the k strongest of them (1.0 if p//2 <= k); NaN if there is none."""
    ac = _varying_power(power)
    if ac is None:
        return float("nan")
    total = ac.sum()
    return (torch.topk(ac, min(k, ac.numel())).values.sum() / total).item()


def fourier_sparsity(emb: torch.Tensor, k: int = TOP_K) -> float:
    """Share of the centred embedding's norm² carried by its k strongest frequencies; NaN if all rows are equal."""
    return top_k_share(frequency_power(emb), k)


def fourier_entropy(power: torch.Tensor) -> float:
    """exp(Shannon entropy) of the normalised spectrum over k = 1..p//2: the effective number of frequencies, in [1, p//2]."""
    ac = _varying_power(power)
    if ac is None:
        return float("nan")
    total = ac.sum()
    q = ac / total
    q = q[q > 0]
    return math.exp(-(q * q.log()).sum().item())


@MEASURES.register(
    "fourier",
    summary=(
        f"Fourier spectrum of the number-token embedding over Z_p (Nanda et al. 2023): fourier_sparsity = norm² share of the top {TOP_K} "
        f"frequencies, fourier_key_freqs = #frequencies >= {KEY_RATIO:g}x the mean power, fourier_entropy = effective #frequencies"
    ),
)
class FourierEmbedding(Measure):
    name = "fourier"

    @classmethod
    def not_applicable(cls, model: nn.Module, spec: TaskSpec) -> str | None:
        return needs_number_tokens(model, spec, "the Fourier measure")

    @torch.no_grad()
    def compute(self, ctx: EvalContext, taps: Sequence[Tap] = ()) -> dict[str, float]:
        emb = ctx.model.token_embedding[: ctx.spec.n_operand_tokens]  # (p, C)
        power = frequency_power(emb)
        return {
            "fourier_sparsity": top_k_share(power, TOP_K),
            "fourier_key_freqs": float(len(key_frequencies(power))),
            "fourier_entropy": fourier_entropy(power),
        }
