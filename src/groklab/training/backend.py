"""What the run loop drives: K >= 1 members that take their steps together. A lone model is K = 1
(training/lone.py); a vectorized ensemble holds its members' parameters stacked (training/stacked.py).

The step and the evaluation are written here once; a backend says only how it holds its members: how
they run forward, where a batch comes from, how the optimizer updates them, and what member k's own
module, data and checkpoint are.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import torch
from torch import nn

from groklab.losses import correct_count, mean_loss
from groklab.measures import EvalContext, measure_all
from groklab.models import train_mode_differs
from groklab.tasks import TaskData
from groklab.training.batch_accuracy import BatchAccuracy
from groklab.training.fixed_norm import member_norms, rescale_to_
from groklab.training.grokfast import GradFilter
from groklab.training.orthograd import orthogonalize_
from groklab.training.schedule import eval_steps, snapshot_steps, warmup_factor
from groklab.training.setup import Prepared


class Backend:
    """K members of one config shape. Subclasses set up `model` (the module whose train/eval mode the pass
    follows), `params` (the tensors the optimizer owns) and `data`, then call `Backend.__init__`."""

    model: nn.Module
    params: list[torch.Tensor]
    data: TaskData
    stacked = False  # the params hold K members along dimension 0

    def __init__(self, preps: list[Prepared], n_train: int) -> None:
        self.preps = preps
        self.cfg = cfg = preps[0].cfg
        self.K = len(preps)
        self.device, self.dtype = preps[0].device, preps[0].dtype
        self.step = 0
        self.evals_done = 0  # evaluations so far: measure cadences count in evaluations
        self.stop_streak = [0] * self.K
        s = cfg.schedule
        self.batch = n_train if s.batch_size == 0 or s.batch_size >= n_train else s.batch_size
        self.full_batch = self.batch == n_train
        self.eval_at = set(eval_steps(s))
        self.snapshot_at = snapshot_steps(s)
        self.shares_train_pass = not train_mode_differs(self.model)  # the training forward is also the train-set evaluation
        self.batch_acc = BatchAccuracy(math.ceil(n_train / self.batch))
        self.filter = GradFilter(self.params, cfg.optim.grokfast) if cfg.optim.grokfast.kind != "none" else None
        # optim.fixed_norm: each member's target, from its weights at initialization (before any checkpoint is loaded)
        self.norm_target = None if cfg.optim.fixed_norm is None else cfg.optim.fixed_norm * member_norms(self.params, self.stacked)

    # ----- what a backend defines ---------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Inputs -> logits: (B, ...) -> (B, C) for one model, (K, B, ...) -> (K, B, C) for a stack."""
        raise NotImplementedError

    def train_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The inputs and labels of this step's minibatch (the whole train set when full-batch)."""
        raise NotImplementedError

    def optimizer_step(self, warmup: float) -> None:
        """Update every member with its learning rate times `warmup`, then clear the gradients."""
        raise NotImplementedError

    def step_scope(self) -> contextlib.AbstractContextManager[Any]:
        """What a training step's forward and backward run inside (a stack keeps its lookup structures)."""
        return contextlib.nullcontext()

    def known_metrics(self, known: list[dict[str, float]]) -> list[dict[str, float]]:
        """Per member, the metrics already known before its measures run (loss_acc reads them)."""
        return known

    def member_model(self, k: int) -> nn.Module:
        """Member k's own module, holding its current weights."""
        raise NotImplementedError

    def member_data(self, k: int) -> TaskData:
        raise NotImplementedError

    def member_state(self, k: int) -> dict[str, Any]:
        """Member k's checkpoint, in the single-run format (training/checkpoint.py)."""
        raise NotImplementedError

    def member_weights(self, k: int) -> dict[str, torch.Tensor]:
        """Member k's weights as its own module's state dict (a snapshot)."""
        return {n: t.detach().clone() for n, t in self.member_model(k).state_dict().items()}

    # ----- one step -----------------------------------------------------------------------------
    def train_step(self, record: bool) -> tuple[torch.Tensor, list[dict[str, float]]]:
        """Forward and backward on this step's batch: each member's loss (K,), and, when `record` and the
        batch is the whole train set seen as in evaluation, each member's train loss and accuracy."""
        self.model.train()
        x, y = self.train_batch()
        with self.step_scope():
            logits = self.forward(x)
            losses = mean_loss(logits, y, self.cfg.optim.loss, self.cfg.optim.loss_dtype)  # () or (K,)
            losses.sum().backward()  # members share no parameters: each gets its own gradient
        n = y.shape[-1]
        correct = correct_count(logits.detach(), y)
        self.batch_acc.add(correct, n)
        known: list[dict[str, float]] = [{} for _ in range(self.K)]
        if record and self.full_batch and self.shares_train_pass:
            loss_values = losses.detach().double().reshape(-1).tolist()
            accs = (correct.reshape(-1).double() / n).tolist()
            known = [{"train_loss": lo, "train_acc": a} for lo, a in zip(loss_values, accs, strict=True)]
        return losses.detach().reshape(-1), known

    def apply_update(self) -> None:
        if self.filter:
            self.filter.apply()
        if self.cfg.optim.orthograd:  # after any filter, on the gradient the optimizer will see
            orthogonalize_(self.params, stacked=self.stacked)
        self.optimizer_step(warmup_factor(self.step, self.cfg.optim.warmup_steps))
        if self.norm_target is not None:
            rescale_to_(self.params, self.norm_target, stacked=self.stacked)
        self.step += 1

    # ----- evaluation ---------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, known: list[dict[str, float]]) -> list[dict[str, float]]:
        """Every member's measures due at this evaluation, each reading its own module and data."""
        known = self.known_metrics(known)
        out = []
        for k, prep in enumerate(self.preps):
            model = self.member_model(k).eval()
            ctx = EvalContext(self.step, model, self.member_data(k), prep.spec, prep.cfg, known[k])
            out.append(measure_all(ctx, [measure for measure, every in prep.measures if self.evals_done % every == 0]))
        self.evals_done += 1
        return out

    def should_stop(self, k: int, metrics: dict[str, float]) -> bool:
        """Early stopping: member k's test accuracy has held the target for `stop_patience` evaluations."""
        s = self.cfg.schedule
        if s.stop_test_acc is None or "test_acc" not in metrics:
            return False
        self.stop_streak[k] = self.stop_streak[k] + 1 if metrics["test_acc"] >= s.stop_test_acc else 0
        return self.stop_streak[k] >= s.stop_patience
