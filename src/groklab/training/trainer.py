"""The training loop: data resident on the device, evaluation on a schedule, metrics committed per evaluation.

A run is resumable from its last checkpoint (model, optimizer, filter and RNG
states), and on the CPU a resumed run ends bit-identical to an uninterrupted
one: metric rows after the checkpoint are deleted and recomputed, never
duplicated. A non-finite loss ends the run as `diverged`.
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch
import yaml

from groklab import __version__
from groklab.analysis.double_descent import loss_dd_events
from groklab.analysis.events import grokking_events
from groklab.analysis.stages import stage_events
from groklab.config.loading import to_dict
from groklab.config.presets import preset_baseline
from groklab.config.schema import ExperimentConfig
from groklab.measures import EvalContext
from groklab.store import Store
from groklab.training.allocator import tune_malloc
from groklab.training.batch_accuracy import BatchAccuracy
from groklab.training.grokfast import GradFilter
from groklab.training.interrupts import stop_requests
from groklab.training.objectives import correct_count, loss_fn, train_mode_differs
from groklab.training.optim import build_optimizer
from groklab.training.reporter import Reporter, SilentReporter
from groklab.training.schedule import batch_indices, eval_steps, warmup_factor
from groklab.training.setup import Prepared

__all__ = ["Trainer", "create_run", "events_of", "resume_run", "start_run"]


class Trainer:
    """Trains one stored run to completion (or divergence, early stop, interruption)."""

    def __init__(self, prep: Prepared, store: Store, run_id: str, reporter: Reporter | None = None) -> None:
        tune_malloc()
        self.p, self.cfg, self.store, self.run_id = prep, prep.cfg, store, run_id
        self.reporter = reporter or SilentReporter()
        self.device = prep.device
        self.model = prep.model.to(device=self.device, dtype=prep.dtype)
        self.data = prep.data.to(self.device)
        self.params = [q for q in self.model.parameters() if q.requires_grad]
        self.opt = build_optimizer(self.cfg.optim, self.params, self.device)
        self.filter = GradFilter(self.params, self.cfg.optim.grokfast) if self.cfg.optim.grokfast.kind != "none" else None
        self.step = 0
        self.evals_done = 0  # evaluations so far: measure cadences count in evaluations
        self.stop_streak = 0
        s = self.cfg.schedule
        n = len(self.data.train_y)
        self.batch = n if s.batch_size == 0 or s.batch_size >= n else s.batch_size
        self.full_batch = self.batch == n
        self.shares_train_pass = not train_mode_differs(self.model)  # the training forward is also the train-set evaluation
        self.eval_at = set(eval_steps(s))
        self.batch_acc = BatchAccuracy(math.ceil(n / self.batch))

    # ----- state --------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state = {
            "step": self.step,
            "evals_done": self.evals_done,
            "stop_streak": self.stop_streak,
            "model": self.model.state_dict(),
            "optimizer": self.opt.state_dict(),
            "rng_cpu": torch.get_rng_state(),
            "grokfast": self.filter.state_dict() if self.filter else {},
            "batch_acc": self.batch_acc.state_dict(),
        }
        if self.device.type == "cuda":
            state["rng_cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng_cpu"])
        if "rng_cuda" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["rng_cuda"], self.device)
        if self.filter:
            self.filter.load_state_dict(state["grokfast"])
        self.batch_acc.load_state_dict(state.get("batch_acc", {}))  # checkpoints from before it start with an empty window
        self.step, self.evals_done, self.stop_streak = state["step"], state["evals_done"], state["stop_streak"]

    def checkpoint(self) -> None:
        self.store.save_checkpoint(self.run_id, self.state_dict(), self.step, keep=self.cfg.schedule.keep_checkpoints)

    def restore(self) -> None:
        """Continue from the last checkpoint (or from scratch); drop metrics it will recompute."""
        state = self.store.load_checkpoint(self.run_id, map_location=self.device)
        if state is not None:  # else: start over, from the same state `prepare` left the RNG in
            self.load_state_dict(state)
        self.store.truncate_metrics(self.run_id, self.step)

    # ----- one step -----------------------------------------------------------------------------
    def _batch_indices(self) -> torch.Tensor | None:
        if self.full_batch:
            return None
        return batch_indices(self.cfg.run.seed, self.step, len(self.data.train_y), self.batch).to(self.device)

    def train_step(self, record: bool) -> tuple[torch.Tensor, dict[str, Any]]:
        """One optimizer update. If `record`, also return the pre-update train metrics when the batch is the train set."""
        self.model.train()
        idx = self._batch_indices()
        x, y = (self.data.train_x, self.data.train_y) if idx is None else (self.data.train_x[idx], self.data.train_y[idx])
        logits = self.model(x)
        loss = loss_fn(logits, y, self.cfg.optim.loss)
        loss.backward()
        correct = correct_count(logits.detach(), y)
        self.batch_acc.add(correct, len(y))
        shared: dict[str, Any] = {}
        if record and idx is None and self.shares_train_pass:
            shared = {"train_loss": loss.detach().double().item(), "train_acc": correct.item() / len(y)}
        return loss.detach(), shared

    def apply_update(self) -> None:
        if self.filter:
            self.filter.apply()
        lr = self.cfg.optim.lr * warmup_factor(self.step, self.cfg.optim.warmup_steps)
        for group in self.opt.param_groups:
            group["lr"] = lr
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        self.step += 1

    # ----- evaluation ---------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, cache: dict[str, Any]) -> dict[str, float]:
        self.model.eval()
        ctx = EvalContext(self.step, self.model, self.data, self.p.spec, self.cfg, cache)
        out: dict[str, float] = {}
        for measure, every in self.p.measures:
            if self.evals_done % every == 0:
                out.update(measure.compute(ctx))
        self.evals_done += 1
        return out

    # ----- the loop -----------------------------------------------------------------------------
    def run(self) -> str:
        s = self.cfg.schedule
        self.reporter.start(self.run_id, s.steps, self.step)
        status, message = "running", ""
        start_step = self.step
        t0 = time.perf_counter()
        sync_every = 1 if self.device.type == "cpu" else 100  # a finiteness check syncs a GPU
        with stop_requests() as stop_requested:
            try:
                while True:
                    if self.step % s.checkpoint_every == 0 and self.step != start_step:
                        self.checkpoint()
                    if stop_requested():
                        status, message = "interrupted", f"interrupted at step {self.step}; continue with `groklab resume {self.run_id}`"
                        break
                    record = self.step in self.eval_at
                    shared: dict[str, Any] = {}
                    if self.step < s.steps:
                        loss, shared = self.train_step(record)
                        if (record or self.step % sync_every == 0) and not bool(torch.isfinite(loss)):
                            status, message = "diverged", f"loss became {loss.item()} at step {self.step}"
                            break
                    if record:
                        batch_acc = self.batch_acc.value(self.step)
                        if batch_acc is not None:
                            shared["train_acc_batches"] = batch_acc.item()
                        metrics = self.evaluate(shared)
                        self.store.log_metrics(self.run_id, self.step, metrics)
                        self.reporter.evaluated(self.step, metrics)
                        if not all(math.isfinite(metrics[k]) for k in ("train_loss", "test_loss")):
                            status, message = "diverged", f"non-finite loss at step {self.step}"
                            break
                        if self._should_stop(metrics):
                            status, message = "stopped", f"test accuracy held >= {s.stop_test_acc} for {s.stop_patience} evaluations"
                            break
                    if self.step >= s.steps:
                        status = "finished"
                        break
                    self.apply_update()
                    self.reporter.step(self.step)
            except KeyboardInterrupt:  # a second Ctrl-C: the state may be mid-update, keep the last checkpoint
                self.store.set_status(self.run_id, "interrupted", self.step, f"continue with `groklab resume {self.run_id}`")
                raise
            finally:
                self.reporter.close()
        if status != "diverged":
            self.checkpoint()
        if status == "finished":
            message = f"{self.step - start_step} steps in {time.perf_counter() - t0:.1f}s"
        self.store.set_events(self.run_id, events_of(self.store, self.run_id, self.cfg))
        self.store.set_status(self.run_id, status, self.step, message)
        return status

    def _should_stop(self, metrics: dict[str, float]) -> bool:
        target = self.cfg.schedule.stop_test_acc
        if target is None or "test_acc" not in metrics:
            return False
        self.stop_streak = self.stop_streak + 1 if metrics["test_acc"] >= target else 0
        return self.stop_streak >= self.cfg.schedule.stop_patience


def events_of(store: Store, run_id: str, cfg: ExperimentConfig) -> dict[str, tuple[int | None, float | None]]:
    """The grokking events of a stored run, from its curves: t_fit, t_grok and the delay; the
    generalization stages (test-accuracy surges); per layer, rank double descent and the lag between
    the rank's fall and the test-accuracy rise; the test loss's double descent (dd_*), if it has one."""
    m = store.metrics(run_id)
    empty: tuple[list[int], list[float]] = ([], [])
    e = cfg.events
    events = grokking_events(m.get("train_acc", empty), m.get("test_acc", empty), e.fit_threshold, e.grok_threshold)
    curves = {k: v for k, v in m.items() if k == "test_acc" or k.startswith("rank/")}
    dd = loss_dd_events(m.get("test_loss", empty), e.loss_peak_prominence, peak_before=events["t_grok"][0], train=m.get("train_loss"))
    return {**events, **stage_events(curves, e.surge_rise, e.surge_window, e.rank_prominence), **dd}


PRESET_FILE = "preset.yaml"  # beside config.yaml: the run's preset as it resolved when the run was created


def create_run(prep: Prepared, store: Store, sweep: tuple[str, int] | None = None) -> str:
    """The run's row (linked to point `sweep[1]` of sweep `sweep[0]`, if given) and its resolved config.yaml."""
    cfg = prep.cfg
    run_id = store.create_run(to_dict(cfg), cfg.run.name, cfg.preset, __version__, str(prep.device), sweep)
    store.write_file(run_id, "config.yaml", yaml.safe_dump(to_dict(cfg), sort_keys=False))
    baseline = preset_baseline(cfg.preset)
    if baseline is not None:  # the preset as it is today, so `groklab runs` shows this run's own changes later
        store.write_file(run_id, PRESET_FILE, yaml.safe_dump(baseline, sort_keys=False))
    return run_id


def start_run(prep: Prepared, store: Store, reporter: Reporter | None = None, sweep: tuple[str, int] | None = None) -> tuple[str, str]:
    """Create the run in the store and train it. Returns (run_id, status)."""
    run_id = create_run(prep, store, sweep)
    return run_id, _guarded(Trainer(prep, store, run_id, reporter))


def resume_run(prep: Prepared, store: Store, run_id: str, reporter: Reporter | None = None) -> str:
    """Continue a stored run from its last checkpoint."""
    store.claim(run_id, str(prep.device))
    trainer = Trainer(prep, store, run_id, reporter)
    trainer.restore()
    return _guarded(trainer)


def _guarded(trainer: Trainer) -> str:
    try:
        return trainer.run()
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # a crash is recorded, then re-raised
        trainer.store.set_status(trainer.run_id, "failed", trainer.step, f"{type(exc).__name__}: {exc}")
        raise
