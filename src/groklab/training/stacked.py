"""Vectorized ensembles: K runs of one shape trained together, in one pass, with stacked parameters.

Members may differ in their seeds (model init, batch order, data split), learning rate, weight decay and
init scale; everything else is shared (training/ensemble_keys.py), shapes included, except that
transformers of different widths may train together padded into the widest (models/width_padding.py).
The forward and backward passes run through torch.func.vmap over the stacked parameters, or through the
model's own `stacked_forward` where it has one (batched matmuls, for models so small that vmap's per-op
overhead dominates); the optimizer updates every member at once, from one flat buffer, with its own
learning rate and weight decay (training/stacked_optim.py). Each member is still its own run in the store,
with its own metrics, events and checkpoint, and that checkpoint has the single-run format: `groklab
resume` continues any member alone, and `load_states` continues the whole ensemble from its members'
checkpoints, bit for bit as if it had not stopped. Member k matches the same config trained alone up to float
reassociation; with dropout, members draw their own masks from the ensemble's generator, so each is a
faithful run of its config but not the bitwise twin of a lone run.
"""

from __future__ import annotations

import contextlib
import copy
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from groklab.losses import eval_chunk, loss_and_accuracy
from groklab.models.lookup import Summers, keeping_row_sums
from groklab.models.width_padding import HostTransformer, declared_axes, embed, extract, host_shape, host_state
from groklab.tasks import TaskData
from groklab.training.backend import Backend
from groklab.training.checkpoint import optimizer_state, restore_rng, run_state
from groklab.training.ensemble_keys import can_vectorize, pad_key, shape_key
from groklab.training.schedule import batch_indices
from groklab.training.setup import Prepared
from groklab.training.stacked_optim import StackedOptimizer


class StackedBackend(Backend):
    """K members' parameters stacked (K, ...), run in one vectorized pass."""

    stacked = True

    def __init__(self, preps: list[Prepared]) -> None:
        self.padded = len({shape_key(p.cfg) for p in preps}) > 1
        pad_keys = {pad_key(p.cfg) for p in preps}
        if not all(can_vectorize(p.cfg) for p in preps) or (self.padded and (len(pad_keys) != 1 or None in pad_keys)):
            raise ValueError("ensemble members must share one shape key (or one pad key: widths differ), without early stopping")
        device, dtype = preps[0].device, preps[0].dtype
        models = [p.model.to(device=device, dtype=dtype) for p in preps]  # member k's own module, for measures and checkpoints
        if self.padded:
            self.host = host_shape([m.shape for m in models])
            self.model = HostTransformer(self.host).to("meta")
            self.axes = declared_axes(self.model)
            states = [host_state(m, self.host) for m in models]
            stacked = {n: torch.stack([st[0][n] for st in states]) for n in states[0][0]}
            self.buffers = {n: torch.stack([st[1][n] for st in states]) for n in states[0][1]}
        else:
            self.model = copy.deepcopy(models[0]).to("meta")  # the template vmap calls with each member's tensors
            stacked, self.buffers = stack_module_state(models)
        self.opt = StackedOptimizer(stacked, preps[0].cfg.optim, [p.cfg.optim.lr for p in preps], [p.cfg.optim.weight_decay for p in preps])
        self.names, self.params = self.opt.names, self.opt.params  # each (K, ...), a leaf that requires grad
        stack = lambda name: torch.stack([getattr(p.data, name) for p in preps]).to(device)  # noqa: E731
        try:
            self.data = TaskData(stack("train_x"), stack("train_y"), stack("test_x"), stack("test_y"))  # (K, N, ...)
        except RuntimeError:
            raise ValueError("ensemble members' train/test sets differ in size") from None
        self.row_sums: Summers = {}  # the sparse structures of the embedding gradients (models/lookup.py), this ensemble's own
        super().__init__(preps, self.data.train_y.shape[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(K, B, ...) inputs -> (K, B, classes) logits, member k through its own parameters.

        A model that defines `stacked_forward(params, x)` runs its members itself; any other through vmap."""
        params = dict(zip(self.names, self.params, strict=True))
        if hasattr(self.model, "stacked_forward") and not self.buffers:
            return self.model.stacked_forward(params, x)

        def one(params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor], xs: torch.Tensor) -> torch.Tensor:
            return functional_call(self.model, (params, buffers), (xs,))

        return vmap(one, randomness="different")(params, self.buffers, x)

    def train_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.full_batch:
            return self.data.train_x, self.data.train_y
        n = self.data.train_y.shape[1]
        idx = torch.stack([batch_indices(p.cfg.run.seed, self.step, n, self.batch) for p in self.preps]).to(self.device)  # (K, b)
        rows = torch.arange(self.K, device=self.device)[:, None]
        return self.data.train_x[rows, idx], self.data.train_y[rows, idx]

    def optimizer_step(self, warmup: float) -> None:
        self.opt.step(warmup)

    def step_scope(self) -> contextlib.AbstractContextManager[Any]:
        return keeping_row_sums(self.row_sums)

    @torch.no_grad()
    def known_metrics(self, known: list[dict[str, float]]) -> list[dict[str, float]]:
        """Every member's test loss and accuracy (and train, unless the training pass gave them) in one vectorized pass."""
        self.model.eval()
        kind, chunk, dtype = self.cfg.optim.loss, eval_chunk(self.cfg.schedule.eval_batch_size), self.cfg.optim.loss_dtype
        d = self.data
        test_loss, test_acc = (t.tolist() for t in loss_and_accuracy(self.forward, d.test_x, d.test_y, kind, chunk, dtype))
        if "train_loss" not in known[0]:  # minibatches, or dropout: the train set was not seen whole as in evaluation
            pair = loss_and_accuracy(self.forward, d.train_x, d.train_y, kind, chunk, dtype)
            known = [{**kn, "train_loss": lo, "train_acc": a} for kn, lo, a in zip(known, *(t.tolist() for t in pair), strict=True)]
        return [{**kn, "test_loss": lo, "test_acc": a} for kn, lo, a in zip(known, test_loss, test_acc, strict=True)]

    def member_view(self, k: int, name: str, stacked: torch.Tensor) -> torch.Tensor:
        """Member k's part of a stacked parameter-shaped tensor (a parameter, an optimizer moment)."""
        if not self.padded:
            return stacked[k]
        return extract(self.axes[name], stacked[k], self.preps[k].model.shape, self.host)

    def member_embed(self, k: int, i: int, t: torch.Tensor) -> torch.Tensor:
        """Member k's own tensor for parameter i, in its place in the stack: the inverse of member_view."""
        if not self.padded:
            return t
        return embed(self.axes[self.names[i]], t, self.preps[k].model.shape, self.host, self.params[i].shape[1:])

    @torch.no_grad()
    def member_model(self, k: int) -> nn.Module:
        model = self.preps[k].model
        for name, p in zip(self.names, self.params, strict=True):
            model.get_parameter(name).copy_(self.member_view(k, name, p))
        return model

    def member_data(self, k: int) -> TaskData:
        d = self.data
        return TaskData(d.train_x[k], d.train_y[k], d.test_x[k], d.test_y[k])

    def member_state(self, k: int) -> dict[str, Any]:
        model = self.member_model(k)
        view = lambda name, t: self.member_view(k, name, t).clone()  # noqa: E731
        per_tensor = zip(self.names, self.opt.moment_views(), strict=True)
        moments = [{key: view(name, t) for key, t in state.items()} for name, state in per_tensor]
        grokfast = {}
        if self.filter:
            fs = self.filter.state_dict()
            grokfast = {
                "ema": [view(n, e) for n, e in zip(self.names, fs["ema"], strict=False)],  # [] before the first step
                "window": [[view(n, g) for n, g in zip(self.names, w, strict=True)] for w in fs["window"]],
            }
        return run_state(
            step=self.step,
            evals_done=self.evals_done,
            stop_streak=0,
            model={n: t.clone() for n, t in model.state_dict().items()},
            optimizer=optimizer_state(self.preps[k].cfg.optim, list(model.parameters()), moments, self.opt.t, self.device),
            grokfast=grokfast,
            batch_acc=self.batch_acc.state_dict(member=k),
            device=self.device,
        )

    @torch.no_grad()
    def load_states(self, states: list[dict[str, Any]]) -> None:
        """Continue every member from its own checkpoint, all taken at one step by this same ensemble: the
        inverse of member_state, so the ensemble goes on bit for bit as if it had not stopped."""
        if len({s["step"] for s in states}) != 1:
            raise ValueError(f"the members' checkpoints are at different steps: {[s['step'] for s in states]}")

        def stack(i: int, per_member: list[torch.Tensor]) -> torch.Tensor:
            like = self.params[i]
            return torch.stack([self.member_embed(k, i, t.to(like)) for k, t in enumerate(per_member)])

        models = [p.model for p in self.preps]
        for k, (model, state) in enumerate(zip(models, states, strict=True)):
            try:
                model.load_state_dict(state["model"])
            except (KeyError, RuntimeError) as exc:  # another model's shapes or keys: say whose
                exc.member = k  # type: ignore[attr-defined]
                raise
        for i, (name, p) in enumerate(zip(self.names, self.params, strict=True)):
            p.copy_(stack(i, [m.get_parameter(name) for m in models]))
        moments = [s["optimizer"]["state"] for s in states]
        if any(moments[0].values()):
            keys = [key for key in moments[0][0] if key != "step"]
            self.opt.moments = {key: torch.zeros_like(self.opt.flat) for key in keys}
            for key in keys:
                for i, view in enumerate(self.opt.views(self.opt.moments[key])):
                    view.copy_(stack(i, [m[i][key] for m in moments]))
            self.opt.t = int(moments[0][0].get("step", 0))
        if self.filter:
            filters = [s["grokfast"] for s in states]
            self.filter.ema = [stack(i, list(ts)) for i, ts in enumerate(zip(*(f["ema"] for f in filters), strict=True))] or None
            windows = zip(*(f["window"] for f in filters), strict=True)  # per remembered step, every member's gradients
            self.filter.window.clear()
            self.filter.window.extend([stack(i, list(ts)) for i, ts in enumerate(zip(*step, strict=True))] for step in windows)
        windows = zip(*(s.get("batch_acc", {}).get("window", []) for s in states), strict=True)
        self.batch_acc.load_state_dict({"window": [(torch.stack([c for c, _ in entries]), entries[0][1]) for entries in windows]})
        restore_rng(states[0], self.device)  # one generator for the ensemble: every member saved the same state
        self.step, self.evals_done = states[0]["step"], states[0]["evals_done"]
