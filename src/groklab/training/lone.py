"""One model trained on its own: torch.optim, data resident on the device, resumable from its checkpoint."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from groklab.tasks import TaskData
from groklab.training.backend import Backend
from groklab.training.checkpoint import restore_rng, run_state
from groklab.training.optim import build_optimizer
from groklab.training.schedule import batch_indices
from groklab.training.setup import Prepared


class LoneBackend(Backend):
    """A single run: K = 1."""

    def __init__(self, prep: Prepared) -> None:
        self.model = prep.model.to(device=prep.device, dtype=prep.dtype)
        self.data = prep.data.to(prep.device)
        self.params = [q for q in self.model.parameters() if q.requires_grad]
        self.opt = build_optimizer(prep.cfg.optim, self.params, prep.device)
        super().__init__([prep], len(self.data.train_y))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def train_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.full_batch:
            return self.data.train_x, self.data.train_y
        idx = batch_indices(self.cfg.run.seed, self.step, len(self.data.train_y), self.batch).to(self.device)
        return self.data.train_x[idx], self.data.train_y[idx]

    def optimizer_step(self, warmup: float) -> None:
        for group in self.opt.param_groups:
            group["lr"] = self.cfg.optim.lr * warmup
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)

    def member_model(self, k: int) -> nn.Module:
        return self.model

    def member_data(self, k: int) -> TaskData:
        return self.data

    def member_state(self, k: int) -> dict[str, Any]:
        return run_state(
            step=self.step,
            evals_done=self.evals_done,
            stop_streak=self.stop_streak[0],
            model=self.model.state_dict(),
            optimizer=self.opt.state_dict(),
            grokfast=self.filter.state_dict() if self.filter else {},
            batch_acc=self.batch_acc.state_dict(),
            device=self.device,
        )

    def load_state(self, state: dict[str, Any]) -> None:
        """Continue from a checkpoint (either backend's: they share the format)."""
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        restore_rng(state, self.device)
        if self.filter:
            self.filter.load_state_dict(state["grokfast"])
        self.batch_acc.load_state_dict(state.get("batch_acc", {}))  # checkpoints from before it start with an empty window
        self.step, self.evals_done, self.stop_streak = state["step"], state["evals_done"], [state["stop_streak"]]
