"""Optimizers: AdamW, Adam, SGD, with the fastest implementation the device offers."""

from __future__ import annotations

import torch

from groklab.schema import OptimConfig


def build_optimizer(cfg: OptimConfig, params: list[torch.nn.Parameter], device: torch.device) -> torch.optim.Optimizer:
    """Weight decay applies to every parameter, as in the reference grokking setups.

    Adam's `weight_decay` is the coupled L2 penalty; AdamW's is decoupled.
    """
    impl = {"fused": True} if device.type in ("cpu", "cuda") else {"foreach": True}
    if cfg.name == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay, **impl)
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay, **impl)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, **impl)
