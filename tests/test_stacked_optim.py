"""The flat-buffer ensemble optimizer takes, for each member, torch.optim's step with that member's lr and weight decay."""

from __future__ import annotations

import pytest
import torch

from groklab.schema import OptimConfig
from groklab.training.stacked_optim import StackedOptimizer

SHAPES = {"w": (3, 5), "b": (3,), "e": (4, 2, 2)}


@pytest.mark.parametrize(
    ("name", "momentum", "warmup"),
    [("adamw", 0.0, [1.0]), ("adamw", 0.0, [0.25, 0.5, 1.0]), ("adam", 0.0, [1.0]), ("sgd", 0.9, [0.5, 1.0]), ("sgd", 0.0, [1.0])],
)
def test_each_member_takes_torch_optims_step(name, momentum, warmup):
    torch.manual_seed(0)
    K, lrs, wds = 3, [1e-2, 3e-2, 1e-1], [0.0, 0.5, 2.0]
    cfg = OptimConfig(name=name, momentum=momentum, betas=(0.9, 0.98))
    stacked = {n: torch.randn(K, *s, dtype=torch.float64) for n, s in SHAPES.items()}
    opt = StackedOptimizer(stacked, cfg, lrs, wds)
    lone = []
    for k in range(K):
        params = [t[k].clone().requires_grad_(True) for t in stacked.values()]
        kw = {"momentum": momentum} if name == "sgd" else {"betas": cfg.betas, "eps": cfg.eps}
        cls = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam, "sgd": torch.optim.SGD}[name]
        lone.append((params, cls(params, lr=lrs[k], weight_decay=wds[k], foreach=False, **kw)))
    for w in [*warmup, 1.0, 1.0]:
        grads = [torch.randn(K, *s, dtype=torch.float64) for s in SHAPES.values()]
        for p, g in zip(opt.params, grads, strict=True):
            p.grad.add_(g)  # as backward accumulates into the flat gradient
        opt.step(w)
        for k, (params, o) in enumerate(lone):
            for p, g in zip(params, grads, strict=True):
                p.grad = g[k].clone()
            for group in o.param_groups:
                group["lr"] = lrs[k] * w
            o.step()
    assert opt.grad.abs().max() == 0  # zeroed for the next backward
    for k, (params, _) in enumerate(lone):
        for stacked_p, p in zip(opt.params, params, strict=True):
            torch.testing.assert_close(stacked_p[k], p.detach(), rtol=1e-12, atol=1e-12)


def test_parameters_are_views_of_one_buffer_and_state_splits_per_tensor():
    stacked = {n: torch.randn(2, *s) for n, s in SHAPES.items()}
    opt = StackedOptimizer(stacked, OptimConfig(), [1e-3, 1e-3], [1.0, 1.0])
    assert [p.shape for p in opt.params] == [t.shape for t in stacked.values()]
    assert all(p.is_leaf and p.requires_grad for p in opt.params)
    with torch.no_grad():
        opt.flat.zero_()
    assert all(p.abs().sum() == 0 for p in opt.params)
    for p in opt.params:
        p.grad.fill_(1.0)
    opt.step(1.0)
    views = opt.moment_views()
    assert [sorted(v) for v in views] == [["exp_avg", "exp_avg_sq"]] * 3
    assert [v["exp_avg"].shape for v in views] == [t.shape for t in stacked.values()]
    torch.testing.assert_close(views[0]["exp_avg"], torch.full_like(views[0]["exp_avg"], 0.1))
