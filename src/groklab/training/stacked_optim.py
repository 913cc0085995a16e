"""AdamW / Adam / SGD for an ensemble's stacked parameters, all held in one flat buffer.

An ensemble of small models is bound by the number of ops, not their size: updating each
stacked tensor on its own costs ~10 element-wise ops per tensor per step. Here every
parameter is a view into one flat buffer (and every gradient into another), so the whole
update is ~10 ops whatever the model, with each member's own learning rate and weight decay
carried per element. The arithmetic is that of torch.optim's single-tensor implementations.
"""

from __future__ import annotations

import math

import torch

from groklab.schema import OptimConfig


class StackedOptimizer:
    """Owns K members' stacked (K, ...) parameters: `params` are leaf views of one flat buffer, `names` theirs."""

    def __init__(self, stacked: dict[str, torch.Tensor], cfg: OptimConfig, lr: list[float], weight_decay: list[float]) -> None:
        self.cfg = cfg
        self.names = list(stacked)
        first = next(iter(stacked.values()))
        K, device, dtype = first.shape[0], first.device, first.dtype
        self.shapes = [t.shape for t in stacked.values()]
        self.flat = torch.cat([t.detach().reshape(-1) for t in stacked.values()])  # each tensor's (K, ...) block in turn
        self.grad = torch.zeros_like(self.flat)
        self.params = self.views(self.flat)
        for p, g in zip(self.params, self.views(self.grad), strict=True):
            p.requires_grad_(True)
            p.grad = g  # backward accumulates into the flat gradient in place
        member = torch.cat([torch.arange(K, device=device).repeat_interleave(t[0].numel()) for t in stacked.values()])
        self.lr = torch.tensor(lr, device=device, dtype=dtype)[member]  # (numel,) each element's member's lr
        self.wd = torch.tensor(weight_decay, device=device, dtype=dtype)[member]
        self.decay = self.lr * self.wd
        self.keep = 1 - self.decay  # AdamW's decoupled decay factor once warm-up is over
        self.moments: dict[str, torch.Tensor] = {}  # exp_avg, exp_avg_sq or momentum_buffer, each flat
        self.t = 0  # updates taken: Adam's bias correction

    def views(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """A flat buffer (parameters, gradients, a moment) as one (K, ...) view per parameter tensor."""
        out, offset = [], 0
        for shape in self.shapes:
            n = math.prod(shape)
            out.append(flat[offset : offset + n].view(shape))
            offset += n
        return out

    def moment_views(self) -> list[dict[str, torch.Tensor]]:
        """Per parameter tensor, its optimizer state as (K, ...) views: what a member's checkpoint takes apart."""
        per = {name: self.views(m) for name, m in self.moments.items()}
        return [{name: v[i] for name, v in per.items()} for i in range(len(self.shapes))]

    @torch.no_grad()
    def step(self, warmup: float) -> None:
        """One update with every learning rate scaled by `warmup`, then the gradients are zeroed.

        Per-element rates cost memory passes, so each is read once: a fused op where torch has one."""
        o, p, g = self.cfg, self.flat, self.grad
        if o.name in ("adam", "sgd"):
            g = g.addcmul(p, self.wd)  # coupled L2
        if o.name == "sgd":
            if o.momentum:
                buf = self.moments.get("momentum_buffer")
                self.moments["momentum_buffer"] = buf = g.clone() if buf is None else buf.mul_(o.momentum).add_(g)
                g = buf
            p.addcmul_(self.lr, g, value=-warmup)
        else:
            if o.name == "adamw":
                p.mul_(self.keep if warmup == 1.0 else 1 - warmup * self.decay)
            if not self.moments:
                self.moments = {"exp_avg": torch.zeros_like(p), "exp_avg_sq": torch.zeros_like(p)}
            self.t += 1
            b1, b2 = o.betas
            m, v = self.moments["exp_avg"], self.moments["exp_avg_sq"]
            m.lerp_(g, 1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            denom = v.sqrt().div_(math.sqrt(1 - b2**self.t)).add_(o.eps)
            p.addcdiv_(m * self.lr, denom, value=-warmup / (1 - b1**self.t))
        self.grad.zero_()
