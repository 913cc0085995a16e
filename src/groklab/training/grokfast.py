"""Grokfast gradient filters (Lee et al. 2024): amplify the slow component of the gradient.

After backward(), each gradient g becomes g + λ·h where h is an exponential
moving average of past gradients (`ema`) or the mean of the last w gradients
(`ma`, applied once the window is full, as in the authors' code).
"""

from __future__ import annotations

from collections import deque
from typing import Any

import torch

from groklab.schema import GrokfastConfig


class GradFilter:
    """Stateful in-place gradient filter over a fixed list of parameters."""

    def __init__(self, params: list[torch.nn.Parameter], cfg: GrokfastConfig) -> None:
        self.params, self.cfg = params, cfg
        self.ema: list[torch.Tensor] | None = None
        self.window: deque[list[torch.Tensor]] = deque(maxlen=cfg.window)

    @torch.no_grad()
    def apply(self) -> None:
        grads = [p.grad for p in self.params if p.grad is not None]
        if not grads or self.cfg.kind == "none":
            return
        if self.cfg.kind == "ema":
            if self.ema is None:
                self.ema = [g.clone() for g in grads]
            else:
                torch._foreach_lerp_(self.ema, grads, 1.0 - self.cfg.alpha)  # ema = α·ema + (1-α)·g
            torch._foreach_add_(grads, self.ema, alpha=self.cfg.lamb)
        else:
            self.window.append([g.clone() for g in grads])
            if len(self.window) == self.cfg.window:
                avg = [torch.stack(gs).mean(0) for gs in zip(*self.window, strict=True)]
                torch._foreach_add_(grads, avg, alpha=self.cfg.lamb)

    def state_dict(self) -> dict[str, Any]:
        return {"ema": self.ema or [], "window": [list(w) for w in self.window]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.ema = list(state["ema"]) or None
        self.window = deque((list(w) for w in state["window"]), maxlen=self.cfg.window)
