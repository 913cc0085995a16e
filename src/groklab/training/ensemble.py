"""Vectorized ensembles: K runs of one shape trained together, in one pass, with stacked parameters.

Members may differ in their seeds (model init, batch order, data split), learning rate, weight
decay and init scale; everything else is shared (`shape_key`), shapes included, except that
transformers of different widths may train together padded into the widest (`pad_key`,
models/width_padding.py). The forward and backward passes run through torch.func.vmap over the
stacked parameters, or through the model's own `stacked_forward` where it has one (batched matmuls,
for models so small that vmap's per-op overhead dominates); the optimizer updates every member at
once, from one flat buffer, with its own learning rate and weight decay (training/stacked_optim.py). Each member is still
its own run in the store, with its own metrics, events and checkpoint, and that checkpoint has the
single-run format: `groklab resume` continues any member alone. Member k matches the same config
trained alone up to float reassociation; with dropout, members draw their own masks from the
ensemble's generator, so each is a faithful run of its config but not the bitwise twin of a lone run.
"""

from __future__ import annotations

import copy
import json
import math
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch.func import functional_call, stack_module_state, vmap

from groklab.config.loading import to_dict
from groklab.config.schema import ExperimentConfig
from groklab.measures import EvalContext
from groklab.measures.loss_acc import eval_chunk
from groklab.models.transformer import Transformer
from groklab.models.width_padding import PADDED_FIELDS, extract, host_shape, host_state
from groklab.store import Store
from groklab.tasks import TaskData
from groklab.training.allocator import tune_malloc
from groklab.training.batch_accuracy import BatchAccuracy
from groklab.training.grokfast import GradFilter
from groklab.training.interrupts import stop_requests
from groklab.training.objectives import train_mode_differs
from groklab.training.optim import build_optimizer
from groklab.training.reporter import Reporter, SilentReporter
from groklab.training.schedule import batch_indices, eval_steps, warmup_factor
from groklab.training.setup import Prepared
from groklab.training.stacked_optim import StackedOptimizer
from groklab.training.trainer import create_run, events_of

# Config keys that may differ between the members of one ensemble.
MEMBER_KEYS = (
    ("run", "seed"),
    ("run", "name"),
    ("run", "notes"),
    ("task", "seed"),
    ("optim", "lr"),
    ("optim", "weight_decay"),
    ("model", "init_scale"),
    ("preset",),
)


def shape_key(cfg: ExperimentConfig) -> str:
    """Configs with equal keys can train in one ensemble."""
    data = to_dict(cfg)
    for path in MEMBER_KEYS:
        node = data
        for part in path[:-1]:
            node = node[part]
        node.pop(path[-1], None)
    return json.dumps(data, sort_keys=True)


def pad_key(cfg: ExperimentConfig) -> str | None:
    """Transformer configs with equal keys can train in one ensemble padded to the widest; None: not paddable."""
    if cfg.model.name != "transformer":
        return None
    data = json.loads(shape_key(cfg))
    for name in PADDED_FIELDS:
        data["model"].pop(name, None)
    return json.dumps(data, sort_keys=True)


def can_vectorize(cfg: ExperimentConfig) -> bool:
    """Early stopping would end members at different steps."""
    return cfg.schedule.stop_test_acc is None


class EnsembleTrainer:
    """Trains K stored runs of one shape in one vectorized pass."""

    def __init__(self, preps: list[Prepared], store: Store, run_ids: list[str], reporter: Reporter | None = None) -> None:
        self.padded = len({shape_key(p.cfg) for p in preps}) > 1
        pad_keys = {pad_key(p.cfg) for p in preps}
        if not all(can_vectorize(p.cfg) for p in preps) or (self.padded and (len(pad_keys) != 1 or None in pad_keys)):
            raise ValueError("ensemble members must share one shape key (or one pad key: widths differ), without early stopping")
        tune_malloc()
        self.preps, self.store, self.run_ids = preps, store, run_ids
        self.reporter = reporter or SilentReporter()
        self.cfg = cfg = preps[0].cfg
        self.K = len(preps)
        self.device, self.dtype = preps[0].device, preps[0].dtype
        models = [p.model.to(device=self.device, dtype=self.dtype) for p in preps]  # member k's own module, for measures and checkpoints
        if self.padded:
            self.host = host_shape([m.shape for m in models])
            self.template = Transformer(self.host).to("meta")
            states = [host_state(m, self.host) for m in models]
            params = {n: torch.stack([st[0][n] for st in states]) for n in states[0][0]}
            self.buffers = {n: torch.stack([st[1][n] for st in states]) for n in states[0][1]}
            for t in params.values():
                t.requires_grad_(True)
        else:
            self.template = copy.deepcopy(models[0]).to("meta")
            params, self.buffers = stack_module_state(models)
        self.opt = StackedOptimizer(params, cfg.optim, [p.cfg.optim.lr for p in preps], [p.cfg.optim.weight_decay for p in preps])
        self.names, self.params = self.opt.names, self.opt.params  # each (K, ...), a leaf that requires grad
        stack = lambda name: torch.stack([getattr(p.data, name) for p in preps]).to(self.device)  # noqa: E731
        try:
            self.data = TaskData(stack("train_x"), stack("train_y"), stack("test_x"), stack("test_y"))  # (K, N, ...)
        except RuntimeError:
            raise ValueError("ensemble members' train/test sets differ in size") from None
        self.filter = GradFilter(self.params, cfg.optim.grokfast) if cfg.optim.grokfast.kind != "none" else None
        self.step = self.evals_done = 0
        s = cfg.schedule
        n = self.data.train_y.shape[1]
        self.batch = n if s.batch_size == 0 or s.batch_size >= n else s.batch_size
        self.full_batch = self.batch == n
        self.eval_at = set(eval_steps(s))
        self.shares_train_pass = not train_mode_differs(self.template)  # see Trainer
        self.batch_acc = BatchAccuracy(math.ceil(n / self.batch))  # each entry (K,)
        self.diverged: list[str] = [""] * self.K

    # ----- forward ------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(K, B, ...) inputs -> (K, B, classes) logits, member k through its own parameters.

        A model that defines `stacked_forward(params, x)` runs its members itself; any other through vmap."""
        params = dict(zip(self.names, self.params, strict=True))
        if hasattr(self.template, "stacked_forward") and not self.buffers:
            return self.template.stacked_forward(params, x)

        def one(params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor], xs: torch.Tensor) -> torch.Tensor:
            return functional_call(self.template, (params, buffers), (xs,))

        return vmap(one, randomness="different")(params, self.buffers, x)

    def losses(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-member mean loss, (K,)."""
        K, B, C = logits.shape
        if self.cfg.optim.loss == "ce":
            return F.cross_entropy(logits.reshape(K * B, C), y.reshape(K * B), reduction="none").view(K, B).mean(1)
        return F.mse_loss(logits, F.one_hot(y, C).to(logits.dtype), reduction="none").mean(dim=(1, 2))

    # ----- one step -----------------------------------------------------------------------------
    def _batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.full_batch:
            return self.data.train_x, self.data.train_y
        n = self.data.train_y.shape[1]
        idx = torch.stack([batch_indices(p.cfg.run.seed, self.step, n, self.batch) for p in self.preps]).to(self.device)  # (K, b)
        rows = torch.arange(self.K, device=self.device)[:, None]
        return self.data.train_x[rows, idx], self.data.train_y[rows, idx]

    def train_step(self, record: bool) -> tuple[torch.Tensor, list[dict[str, float]]]:
        self.template.train()
        x, y = self._batch()
        logits = self.forward(x)
        losses = self.losses(logits, y)
        losses.sum().backward()  # members share no parameters: each gets its own gradient
        correct = (logits.detach().argmax(-1) == y).sum(1)  # (K,)
        self.batch_acc.add(correct, y.shape[1])
        shared: list[dict[str, float]] = [{} for _ in range(self.K)]
        if record and self.full_batch and self.shares_train_pass:
            acc = (correct.double() / y.shape[1]).tolist()
            shared = [{"train_loss": lo, "train_acc": a} for lo, a in zip(losses.detach().double().tolist(), acc, strict=True)]
        return losses.detach(), shared

    def apply_update(self) -> None:
        """The optimizer step for every member at once, each with its own lr and weight decay (StackedOptimizer)."""
        if self.filter:
            self.filter.apply()
        self.opt.step(warmup_factor(self.step, self.cfg.optim.warmup_steps))
        self.step += 1

    # ----- evaluation ---------------------------------------------------------------------------
    @torch.no_grad()
    def _loss_acc(self, x: torch.Tensor, y: torch.Tensor) -> tuple[list[float], list[float]]:
        """Every member's mean loss and accuracy on its own (N, ...) set, in one vectorized pass per chunk."""
        self.template.eval()
        total = torch.zeros(self.K, dtype=torch.float64, device=self.device)
        correct = torch.zeros(self.K, dtype=torch.long, device=self.device)
        chunk = eval_chunk(self.cfg)
        for i in range(0, y.shape[1], chunk):
            logits = self.forward(x[:, i : i + chunk])
            yc = y[:, i : i + chunk]
            total += self.losses(logits, yc).double() * yc.shape[1]
            correct += (logits.argmax(-1) == yc).sum(1)
        n = y.shape[1]
        return (total / n).tolist(), (correct.double() / n).tolist()

    def member_view(self, k: int, name: str, stacked: torch.Tensor) -> torch.Tensor:
        """Member k's part of a stacked parameter-shaped tensor (a parameter, an optimizer moment)."""
        if not self.padded:
            return stacked[k]
        return extract(name, stacked[k], self.preps[k].model.shape, self.host)

    @torch.no_grad()
    def load_member(self, k: int) -> torch.nn.Module:
        """Member k's own module, holding its current weights."""
        model = self.preps[k].model
        for name, p in zip(self.names, self.params, strict=True):
            model.get_parameter(name).copy_(self.member_view(k, name, p))
        return model

    @torch.no_grad()
    def evaluate(self, shared: list[dict[str, float]]) -> list[dict[str, float]]:
        test_loss, test_acc = self._loss_acc(self.data.test_x, self.data.test_y)
        if "train_loss" not in shared[0]:  # minibatches: the train set was not seen whole in this step
            train_loss, train_acc = self._loss_acc(self.data.train_x, self.data.train_y)
            shared = [{**sh, "train_loss": lo, "train_acc": a} for sh, lo, a in zip(shared, train_loss, train_acc, strict=True)]
        out = []
        for k, prep in enumerate(self.preps):
            model = self.load_member(k).eval()
            data = TaskData(self.data.train_x[k], self.data.train_y[k], self.data.test_x[k], self.data.test_y[k])
            cache = {**shared[k], "test_loss": test_loss[k], "test_acc": test_acc[k]}
            ctx = EvalContext(self.step, model, data, prep.spec, prep.cfg, cache)
            metrics: dict[str, float] = {}
            for measure, every in prep.measures:
                if self.evals_done % every == 0:
                    metrics.update(measure.compute(ctx))
            out.append(metrics)
        self.evals_done += 1
        return out

    # ----- checkpoints: one per member, in the single-run format -----------------------------------
    def member_state(self, k: int) -> dict[str, Any]:
        model = self.load_member(k)
        prep = self.preps[k]
        opt = build_optimizer(prep.cfg.optim, list(model.parameters()), self.device)
        view = lambda name, t: self.member_view(k, name, t).clone()  # noqa: E731
        for name, p, state in zip(self.names, model.parameters(), self.opt.moment_views(), strict=True):
            if "exp_avg" in state:
                opt.state[p] = {
                    "step": torch.tensor(float(self.opt.t), dtype=torch.float32, device=p.device),
                    "exp_avg": view(name, state["exp_avg"]),
                    "exp_avg_sq": view(name, state["exp_avg_sq"]),
                }
            elif "momentum_buffer" in state:
                opt.state[p] = {"momentum_buffer": view(name, state["momentum_buffer"])}
        grokfast = {}
        if self.filter:
            fs = self.filter.state_dict()
            grokfast = {
                "ema": [view(n, e) for n, e in zip(self.names, fs["ema"], strict=False)],  # [] before the first step
                "window": [[view(n, g) for n, g in zip(self.names, w, strict=True)] for w in fs["window"]],
            }
        return {
            "step": self.step,
            "evals_done": self.evals_done,
            "stop_streak": 0,
            "model": {n: t.clone() for n, t in model.state_dict().items()},
            "optimizer": opt.state_dict(),
            "rng_cpu": torch.get_rng_state(),
            "grokfast": grokfast,
            "batch_acc": self.batch_acc.state_dict(member=k),
        }

    def checkpoint(self) -> None:
        for k, rid in enumerate(self.run_ids):
            if not self.diverged[k]:
                self.store.save_checkpoint(rid, self.member_state(k), self.step, keep=self.cfg.schedule.keep_checkpoints)

    # ----- the loop -----------------------------------------------------------------------------
    def run(self) -> list[str]:
        s = self.cfg.schedule
        self.reporter.start(",".join(self.run_ids), s.steps, self.step)
        start, t0 = self.step, time.perf_counter()
        interrupted = False
        with stop_requests() as stop_requested:
            try:
                while True:
                    if self.step % s.checkpoint_every == 0 and self.step != start:
                        self.checkpoint()
                    if stop_requested():
                        interrupted = True
                        break
                    record = self.step in self.eval_at
                    shared: list[dict[str, float]] = [{} for _ in range(self.K)]
                    if self.step < s.steps:
                        losses, shared = self.train_step(record)
                        for k, bad in enumerate((~torch.isfinite(losses)).tolist()):
                            if bad and not self.diverged[k]:
                                self.diverged[k] = f"loss became {losses[k].item()} at step {self.step}"
                    if record:
                        batch_acc = self.batch_acc.value(self.step)
                        if batch_acc is not None:
                            for k, a in enumerate(batch_acc.tolist()):
                                shared[k]["train_acc_batches"] = a
                        for k, metrics in enumerate(self.evaluate(shared)):
                            if not self.diverged[k]:
                                self.store.log_metrics(self.run_ids[k], self.step, metrics)
                                if not all(math.isfinite(metrics[n]) for n in ("train_loss", "test_loss")):
                                    self.diverged[k] = f"non-finite loss at step {self.step}"
                        self.reporter.evaluated(self.step, metrics)
                    if self.step >= s.steps or all(self.diverged):
                        break
                    self.apply_update()
                    self.reporter.step(self.step)
            finally:
                self.reporter.close()
        self.checkpoint()
        statuses = []
        for k, rid in enumerate(self.run_ids):
            if self.diverged[k]:
                status, message = "diverged", self.diverged[k]
            elif interrupted:
                status, message = "interrupted", f"interrupted at step {self.step}; continue with `groklab resume {rid}`"
            else:
                status, message = "finished", f"{self.step - start} steps in {time.perf_counter() - t0:.1f}s (ensemble of {self.K})"
            self.store.set_events(rid, events_of(self.store, rid, self.preps[k].cfg))
            self.store.set_status(rid, status, self.step, message)
            statuses.append(status)
        return statuses


def start_ensemble(
    preps: list[Prepared], store: Store, reporter: Reporter | None = None, sweep: tuple[str, list[int]] | None = None
) -> tuple[list[str], list[str]]:
    """Create one stored run per member (linked to sweep points `sweep[1]` if given) and train them together."""
    run_ids = [create_run(p, store, None if sweep is None else (sweep[0], sweep[1][k])) for k, p in enumerate(preps)]
    trainer = EnsembleTrainer(preps, store, run_ids, reporter)
    try:
        return run_ids, trainer.run()
    except Exception as exc:  # a crash is recorded on every member, then re-raised
        for rid in run_ids:
            store.set_status(rid, "failed", trainer.step, f"{type(exc).__name__}: {exc}")
        raise
