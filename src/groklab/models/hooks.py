"""Named hook points: every activation a researcher may ask for has a stable name.

A `HookPoint` is an identity module placed in a model's forward where an activation is formed; its
name is its module path (`blocks.0.mlp.hook_post`, `layers.3.hook_pre`), following TransformerLens's
names where it has one. `run_with_cache` returns the activations by name; measures ask for them by the
same names (measures/passes.py). The transformer's training path (models/transformer_fast.py) skips
them: asking for a hook point runs the plain forward.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

import torch
from torch import nn

from groklab.errors import ConfigError


class HookPoint(nn.Module):
    """The identity, at a named activation."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def hook_names(model: nn.Module) -> list[str]:
    """The model's hook points, in the order its forward reaches them (module order)."""
    return [name for name, m in model.named_modules() if isinstance(m, HookPoint)]


def check_hook_names(model: nn.Module, names: Iterable[str], field: str = "hook") -> list[str]:
    """`names` if every one is a hook point of the model; else a ConfigError listing the valid ones."""
    valid = hook_names(model)
    names = list(names)
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise ConfigError(field, f"{type(model).__name__} has no hook point {unknown[0]!r}; choose from {', '.join(valid)}")
    return names


@contextlib.contextmanager
def plain_forward(model: nn.Module) -> Iterator[None]:
    """While active, a model with a fast training path (`model.fast`) runs its plain forward, which reaches every hook point."""
    fast = getattr(model, "fast", None)
    if fast is not None:
        model.fast = False
    try:
        yield
    finally:
        if fast is not None:
            model.fast = fast


@torch.no_grad()
def run_with_cache(model: nn.Module, x: torch.Tensor, names: Iterable[str] | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The model's output on x and its activations at `names` (default: every hook point), by name."""
    wanted = check_hook_names(model, hook_names(model) if names is None else names)
    modules = dict(model.named_modules())
    cache: dict[str, torch.Tensor] = {}
    handles = [modules[n].register_forward_hook(lambda _m, _a, out, n=n: cache.__setitem__(n, out.detach())) for n in wanted]
    try:
        with plain_forward(model):
            out = model(x)
    finally:
        for h in handles:
            h.remove()
    return out, cache


class LayerHooks(nn.Module):
    """The hook points of one layer of an MLP: `hook_pre` its Linear's output, `hook_post` after its activation
    (the output layer has none)."""

    def __init__(self, post: bool) -> None:
        super().__init__()
        self.hook_pre = HookPoint()
        if post:
            self.hook_post = HookPoint()


def mlp_layer_hooks(net: nn.Sequential) -> nn.ModuleList:
    """One LayerHooks per Linear of `net`: `layers.{i}` is the i-th Linear (0-based)."""
    n = sum(isinstance(m, nn.Linear) for m in net)
    return nn.ModuleList(LayerHooks(post=i < n - 1) for i in range(n))


def run_hooked(net: nn.Sequential, layers: nn.ModuleList, x: torch.Tensor) -> torch.Tensor:
    """`net(x)` for a Sequential of Linear, activation and dropout modules, through each layer's hook points."""
    i = -1
    for module in net:
        if isinstance(module, nn.Linear):
            i += 1
            x = layers[i].hook_pre(module(x))
        elif isinstance(module, nn.Dropout):
            x = module(x)
        else:
            x = layers[i].hook_post(module(x))
    return x
