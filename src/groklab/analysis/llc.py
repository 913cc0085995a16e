"""The local learning coefficient (LLC) of a run's weight snapshots, estimated by devinterp's SGLD sampler
(Lau et al. 2023; the `llc` extra): LLC = nβ (E_w[L_n(w)] − L_n(w*)), sampled near each snapshot w*.

The sampler reads token sequences and a per-token loss; a run's training pairs are handed over as
[inputs..., answer] sequences with a loss that is the run's own cross-entropy at its last position,
the same value at every position (so devinterp's mean over positions is the per-example loss). The
estimate is stored as the run's `llc` curve (and `llc_std`, across chains) at the snapshot steps, where
`groklab compare-measures` ranks it beside the other measures.
"""

from __future__ import annotations

import math
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from groklab.config.loading import from_dict
from groklab.errors import GroklabError
from groklab.store.db import Store
from groklab.store.weights import model_at, snapshot_step
from groklab.tasks import build_task


@dataclass(frozen=True)
class SGLDSettings:
    """devinterp's sampler settings; n_beta None = n / log n for n training examples (β* = 1 / log n)."""

    lr: float = 1e-4
    n_beta: float | None = None
    localization: float = 100.0
    chains: int = 4
    draws: int = 200
    batch_size: int = 64
    seed: int = 0


def last_position_loss(model: nn.Module, input_ids: torch.Tensor) -> torch.Tensor:
    """Per-token loss for devinterp, (B, T - 1): the cross-entropy of the answer (the last token) given the
    rest, repeated at every position."""
    logits = model(input_ids[:, :-1])
    loss = F.cross_entropy(logits, input_ids[:, -1], reduction="none")
    return loss[:, None].expand(-1, input_ids.shape[1] - 1)


def estimate_llc(
    store: Store, run_id: str, steps: list[int] | None = None, settings: SGLDSettings = SGLDSettings()
) -> dict[int, tuple[float, float, float]]:
    """Per snapshot step (default: every one): (LLC mean over chains, its std, seconds); stored as `llc`, `llc_std`."""
    try:
        from datasets import Dataset
        from devinterp.slt.llc import llc
    except ImportError:
        raise GroklabError("the LLC estimate needs devinterp: pip install 'groklab[llc]'") from None
    cfg = from_dict(store.get(run_id).config)
    task = build_task(cfg.task)
    if task.spec.vocab_size == 0:
        raise GroklabError(f"the LLC estimate reads token sequences; run {run_id} trained on task {cfg.task.name!r} (vectors or images)")
    snapshot_step(store, run_id)  # a run without snapshots: say how to keep them
    steps = store.weight_steps(run_id) if steps is None else [snapshot_step(store, run_id, s) for s in steps]  # before any sampling
    data = task.build()
    sequences = torch.cat([data.train_x, data.train_y[:, None]], dim=1)  # (n, T + 1)
    dataset = Dataset.from_dict({"input_ids": sequences.tolist()}).with_format("torch")
    n = len(sequences)
    n_beta = settings.n_beta if settings.n_beta is not None else n / math.log(n)
    out: dict[int, tuple[float, float, float]] = {}
    for step in steps:
        model = model_at(store, run_id, step)  # eval mode: L_n(w) is the deterministic loss of the network
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = llc(
                model,
                dataset,
                {},
                lr=settings.lr,
                n_beta=n_beta,
                localization=settings.localization,
                num_chains=settings.chains,
                num_draws=settings.draws,
                batch_size=settings.batch_size,
                init_seed=settings.seed,
                loss_fn=last_position_loss,
                device="cpu",
                output_path=str(Path(tmp) / "samples.zarr"),
            )
        out[step] = (float(result.llc_mean), float(result.llc_std), time.perf_counter() - t0)
    store.set_metric_points(run_id, "llc", {s: v[0] for s, v in out.items()})
    store.set_metric_points(run_id, "llc_std", {s: v[1] for s, v in out.items()})
    return out
