"""The checkpoint of one run, whichever backend trained it: the format `groklab resume` reads.

A vectorized ensemble writes one per member, in this same format, so any member resumes alone. Optimizer
state always goes through torch.optim's own state_dict: a member's moments are filled into the state a
torch optimizer lays out itself, so a torch that renames its state fails loudly here, not silently later.
"""

from __future__ import annotations

from typing import Any

import torch

from groklab.schema import OptimConfig
from groklab.training.optim import build_optimizer


def run_state(
    *,
    step: int,
    evals_done: int,
    stop_streak: int,
    model: dict[str, torch.Tensor],
    optimizer: dict[str, Any],
    grokfast: dict[str, Any],
    batch_acc: dict[str, Any],
    device: torch.device,
) -> dict[str, Any]:
    """A run's checkpoint: counters, weights, optimizer and filter state, and the RNG states (CUDA's too)."""
    state = {
        "step": step,
        "evals_done": evals_done,
        "stop_streak": stop_streak,
        "model": model,
        "optimizer": optimizer,
        "rng_cpu": torch.get_rng_state(),
        "grokfast": grokfast,
        "batch_acc": batch_acc,
    }
    if device.type == "cuda":
        state["rng_cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["rng_cpu"])
    if "rng_cuda" in state and device.type == "cuda":
        torch.cuda.set_rng_state(state["rng_cuda"], device)


def optimizer_state(
    cfg: OptimConfig, params: list[torch.Tensor], moments: list[dict[str, torch.Tensor]], updates: int, device: torch.device
) -> dict[str, Any]:
    """torch.optim's state_dict for `params` holding `moments` (per parameter, state name -> tensor) after
    `updates` Adam updates.

    A torch optimizer over copies of the parameters takes one update of zero gradients, so that torch
    builds its own per-parameter state (names, the step counter's type and device); the values are then
    replaced by name. Before the first update there are no moments and no state, as in torch."""
    copies = [p.detach().clone().requires_grad_(True) for p in params]
    opt = build_optimizer(cfg, copies, device)
    if any(moments):
        for c in copies:
            c.grad = torch.zeros_like(c)
        opt.step()
    state = opt.state_dict()
    for i, ours in enumerate(moments):
        theirs = state["state"].get(i, {})
        if set(theirs) - {"step"} != set(ours):
            raise RuntimeError(
                f"torch.optim's {cfg.name} keeps {sorted(theirs)} per parameter, groklab's stacked optimizer "
                f"{sorted(ours)}: this torch version changed its optimizer state; update training/checkpoint.py"
            )
        for name, value in theirs.items():
            theirs[name] = torch.full_like(value, updates) if name == "step" else ours[name].detach().clone()
    return state
