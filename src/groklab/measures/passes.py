"""An evaluation's forward passes, shared by its measures.

A measure says what it reads (`Measure.taps`): a split, the activations it wants by module name (the
names of `model.named_modules()`, or LOGITS), whether it needs the split's loss and accuracy, and whether
it reads a float64 copy of the model. Each (split, copy) then goes through the model once, in chunks, for
every measure that asked, and each tap's sink sees its activations chunk by chunk, inside the forward
hook (before an in-place activation can overwrite them).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from groklab.losses import loss_and_accuracy
from groklab.models.hooks import HookPoint, plain_forward

LOGITS = "logits"  # the model's output, as an activation name
Sink = Callable[[str, torch.Tensor], None]


@dataclass
class Tap:
    """What one measure reads of the pass over one split; the pass fills `loss_acc` and `invalid`."""

    split: str  # "train" | "test"
    names: tuple[str, ...] = ()  # hook points or other module names whose outputs the sink receives, or LOGITS
    sink: Sink | None = None  # (name, activation (rows, ...)) for each chunk, in order
    loss: bool = False  # also wants the split's mean loss and accuracy (the run's own dtype only)
    float64: bool = False  # read a float64 copy of the model (the model itself if it is float64 already)
    chunk: int | None = None  # rows per forward when the pass computes no loss (None: the evaluation chunk)
    loss_acc: tuple[float, float] | None = field(default=None, init=False)
    invalid: set[str] = field(default_factory=set, init=False)  # modules not called once per chunk with one row per example


def needs_float64_copy(model: nn.Module) -> bool:
    """Float64 activations need a copy unless the model is float64 already (or on MPS, which has no float64:
    there the float32 model is used as it is)."""
    p = next(model.parameters(), None)
    return not (p is None or p.dtype == torch.float64 or p.device.type == "mps")


def in_float64(model: nn.Module, x: torch.Tensor) -> tuple[nn.Module, torch.Tensor]:
    """The model and inputs to take activations from in float64 (see needs_float64_copy)."""
    if not needs_float64_copy(model):
        return model, x
    return copy.deepcopy(model).double(), x.double() if x.is_floating_point() else x


def run_taps(
    model: nn.Module,
    splits: dict[str, tuple[torch.Tensor, torch.Tensor]],
    taps: Sequence[Tap],
    loss: str,
    eval_chunk: int,
    loss_dtype: str = "auto",
) -> Sequence[Tap]:
    """One pass per split and model copy that any tap asks for, feeding every tap of it; returns `taps`."""
    groups: dict[tuple[str, bool], list[Tap]] = {}
    for tap in taps:
        groups.setdefault((tap.split, tap.float64 and needs_float64_copy(model)), []).append(tap)
    for (split, copied), group in groups.items():
        x, y = splits[split]
        net, x = in_float64(model, x) if copied else (model, x)
        _one_pass(net, x, y, group, loss, eval_chunk, loss_dtype)
    return taps


@torch.no_grad()
def _one_pass(model: nn.Module, x: torch.Tensor, y: torch.Tensor, taps: list[Tap], loss: str, eval_chunk: int, loss_dtype: str) -> None:
    wanted = {name for tap in taps for name in tap.names}
    modules = dict(model.named_modules())
    calls: dict[str, int] = {}
    rows = [0]
    invalid: set[str] = set()

    def feed(name: str, out: torch.Tensor) -> None:
        calls[name] = calls.get(name, 0) + 1
        if calls[name] != 1 or out.shape[0] != rows[0] or name in invalid:
            invalid.add(name)
            return
        for tap in taps:
            if tap.sink is not None and name in tap.names:
                tap.sink(name, out.detach())

    def forward(chunk: torch.Tensor) -> torch.Tensor:
        rows[0] = len(chunk)
        calls.clear()
        out = model(chunk)
        invalid.update(n for n in wanted - {LOGITS} if calls.get(n, 0) != 1)
        if LOGITS in wanted:
            feed(LOGITS, out)
        return out

    handles = [modules[n].register_forward_hook(lambda _m, _a, out, n=n: feed(n, out)) for n in wanted - {LOGITS} if n in modules]
    invalid.update(n for n in wanted - {LOGITS} if n not in modules)
    # a transformer's training path skips its hook points: asking for one runs the plain forward
    scope = plain_forward(model) if any(isinstance(modules.get(n), HookPoint) for n in wanted) else contextlib.nullcontext()
    try:
        with scope:
            if any(tap.loss for tap in taps):
                result = tuple(t.item() for t in loss_and_accuracy(forward, x, y, loss, eval_chunk, loss_dtype))
                for tap in taps:
                    tap.loss_acc = result if tap.loss else None
            else:
                chunk = min(tap.chunk or eval_chunk for tap in taps)
                for s in range(0, len(x), chunk):
                    forward(x[s : s + chunk])
    finally:
        for h in handles:
            h.remove()
    for tap in taps:
        tap.invalid = invalid & set(tap.names)
