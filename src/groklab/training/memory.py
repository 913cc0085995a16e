"""Will a run, or a vectorized ensemble, fit? A lower bound of its memory, made before anything is allocated:
the data from the task's example count, the parameters (with gradients and optimizer state) and one step's
activations from the model built and run on the meta device, against what the device has free. What cannot
fit is refused with both numbers, instead of failing in the allocator minutes later or pushing the machine
into swap."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import torch

from groklab.dtypes import dtype_of
from groklab.errors import ConfigError
from groklab.losses import eval_chunk
from groklab.measures import MEASURES
from groklab.models import build_model
from groklab.schema import ExperimentConfig
from groklab.tasks import Task, TaskSpec, build_task
from groklab.training.device import resolve_device

GiB = 1 << 30
STATE_COPIES = 4  # weights, gradients and two Adam moments (SGD keeps fewer; an upper bound)
BUILD_COPIES = 2  # a task builds its tensors, then casts or moves them: two copies at the peak


def available_bytes(device: torch.device) -> int:
    """Free memory on `device`: the GPU's free memory, else the host's MemAvailable."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def data_bytes(task: Task, spec: TaskSpec) -> int | None:
    """The task's tensors: every example's input and label (int64 tokens or labels, float32 vectors, or the
    task's own `input_itemsize`), None if the task cannot tell its example count before building."""
    n = task.n_examples()
    if n is None:
        return None
    width = spec.seq_len or spec.input_dim or math.prod(spec.image_shape) or 1
    itemsize = task.input_itemsize or (8 if spec.seq_len else 4)
    return n * (width * itemsize + 8) * BUILD_COPIES


@dataclass(frozen=True)
class ModelSizes:
    """What the model on the meta device tells of a run's memory."""

    params: int
    activations: int  # every leaf output of one training step: what the backward keeps
    largest_output: int  # the largest single leaf output of that step: what an evaluation pass holds at least
    measures: int  # the enabled measures' own buffers at an evaluation


def model_bytes(
    cfg: ExperimentConfig, spec: TaskSpec, batch: int, dtype: torch.dtype, split: tuple[int, int] = (0, 0)
) -> ModelSizes | None:
    """The model built and run on the meta device (shapes only, no memory) on one training step of `batch`
    examples, the output of every leaf module and of the model counted once, and the enabled measures' buffers
    for a (train, test) `split`: lower bounds, so that only runs that cannot fit are refused. None if the
    model cannot be built or run there."""
    try:
        with torch.device("meta"):
            model: Any = build_model(cfg.model, spec).to(dtype)
        params = sum(p.numel() for p in model.parameters())
        if spec.seq_len:
            x = torch.empty((batch, spec.seq_len), dtype=torch.long, device="meta")
        else:
            x = torch.empty((batch, *(spec.image_shape or (spec.input_dim,))), dtype=dtype, device="meta")
        seen, largest = [0], [0]

        def count(_module: Any, _inputs: Any, output: Any) -> None:
            for t in output if isinstance(output, tuple | list) else (output,):
                if isinstance(t, torch.Tensor):
                    seen[0] += t.numel() * t.element_size()
                    largest[0] = max(largest[0], t.numel() * t.element_size())

        leaves = [m for m in model.modules() if m is model or not any(True for _ in m.children())]  # containers repeat their parts
        hooks = [m.register_forward_hook(count) for m in leaves]
        try:
            model(x)
        finally:
            for h in hooks:
                h.remove()
        measures = sum(MEASURES.get(name).memory(model, spec, *split) for name in cfg.measures.enabled)
    except ConfigError:
        raise
    except Exception as exc:  # a builder or forward that needs real tensors: the check then covers the data alone
        if "overflow" in str(exc).lower():  # a tensor whose size does not fit in 64 bits, which no device builds
            raise _TooLargeError(largest_size(cfg, spec)) from None
        return None
    return ModelSizes(params, seen[0], largest[0], measures)


class _TooLargeError(Exception):
    """The model has a tensor too large to build; its argument is the setting that made it."""


def largest_size(cfg: ExperimentConfig, spec: TaskSpec) -> str:
    """The setting that overflows a tensor's size: the model's largest integer key, or `task` where the task's
    vocabulary, classes or inputs (task.p, ...) outgrow it."""
    sizes = {f"model.{k}": v for k, v in vars(cfg.model).items() if type(v) is int}
    sizes["task"] = max(spec.vocab_size, spec.n_classes, spec.input_dim)
    return max(sizes, key=lambda k: sizes[k])


@dataclass(frozen=True)
class Need:
    """A run's memory, at least: its data, its parameters with gradients and optimizer state, one step's activations."""

    data: int
    state: int
    activations: int  # of a training step, or of an evaluation pass where that holds more
    params: int
    examples: int | None
    batch: int
    filter: int = 0  # Grokfast's gradient history
    filter_copies: int = 0
    overflow: str = ""  # the setting that makes a tensor too large to build at all, if one does
    measures: int = 0  # the enabled measures' own buffers at an evaluation (a width² covariance, probe features)
    eval_rows: int = 0  # the rows of an evaluation pass, where its activations are the larger

    @property
    def total(self) -> int:
        return self.data + self.state + self.activations + self.filter + self.measures

    @property
    def _activations_of(self) -> str:
        return f"a {self.eval_rows:,}-row evaluation pass" if self.eval_rows else f"a {self.batch:,}-example step"

    def parts(self) -> str:
        return ", ".join(
            text
            for text, size in (
                (f"data {self.data / GiB:.3g} GiB ({self.examples or 0:,} examples)", self.data),
                (f"parameters, gradients and optimizer state {self.state / GiB:.3g} GiB ({self.params:,} parameters)", self.state),
                (f"activations of {self._activations_of} {self.activations / GiB:.3g} GiB", self.activations),
                (f"Grokfast's {self.filter_copies:,} stored gradients {self.filter / GiB:.3g} GiB", self.filter),
                (f"the measures' buffers {self.measures / GiB:.3g} GiB", self.measures),
            )
            if size
        )


def estimate(cfg: ExperimentConfig, task: Task, spec: TaskSpec, dtype: torch.dtype) -> Need:
    """What one run of `cfg` needs at least, from its config alone."""
    n = task.n_examples()
    train = getattr(cfg.task, "n_train", None)  # parity, MNIST; the others have a fraction of their examples
    if train is None and n is not None and hasattr(cfg.task, "train_frac"):
        train = int(n * cfg.task.train_frac)
    batch = cfg.schedule.batch_size or int(train or 1)  # full batch: every training example at once
    split = (int(train or 0), max(0, (n or 0) - int(train or 0)))
    try:
        sizes, overflow = model_bytes(cfg, spec, batch, dtype, split), ""
    except _TooLargeError as exc:
        sizes, overflow = None, str(exc)
    sizes = sizes or ModelSizes(0, 0, 0, 0)
    rows = min(eval_chunk(cfg.schedule.eval_batch_size), max(split))  # rows of one evaluation forward pass
    eval_acts = sizes.largest_output // max(batch, 1) * rows
    acts, eval_rows = (eval_acts, rows) if eval_acts > sizes.activations else (sizes.activations, 0)
    itemsize = torch.finfo(dtype).bits // 8
    copies = filter_copies(cfg)
    state, filt = sizes.params * STATE_COPIES * itemsize, sizes.params * copies * itemsize
    data = data_bytes(task, spec) or 0
    return Need(data, state, acts, sizes.params, n, batch, filt, copies, overflow, sizes.measures, eval_rows)


OVERFLOW = "makes a tensor too large to build (its size overflows 64 bits)"


def filter_copies(cfg: ExperimentConfig) -> int:
    """The gradients Grokfast's filter keeps: its EMA, or the whole MA window, which it must hold before it
    applies at all (a window longer than the run never applies and is counted in full all the same)."""
    gf = cfg.optim.grokfast
    return {"none": 0, "ema": 1, "ma": gf.window}[gf.kind]


def check_fits(cfg: ExperimentConfig, task: Task, spec: TaskSpec, device: torch.device, dtype: torch.dtype) -> None:
    """Refuse a run whose data, parameters (with gradients and optimizer state) and one training step's
    activations need more memory than `device` has free."""
    need, have = estimate(cfg, task, spec, dtype), available_bytes(device)
    if need.total <= have:
        if need.overflow:
            raise ConfigError(need.overflow, OVERFLOW)
        return
    acts = "schedule.eval_batch_size" if need.eval_rows else "schedule.batch_size"
    parts = {"task": need.data, "model": need.state, acts: need.activations, "optim.grokfast.window": need.filter}
    parts["measures.enabled"] = need.measures
    field = max(parts, key=lambda k: parts[k])
    raise ConfigError(
        field, f"the run needs at least {need.total / GiB:.3g} GiB ({need.parts()}); {device.type} has {have / GiB:.3g} GiB free"
    )


def check_ensemble_fits(cfgs: list[ExperimentConfig], members: int, field: str) -> None:
    """Refuse a vectorized ensemble of `members` members, each of the shape of one of `cfgs` (one device, one
    dtype), that cannot fit: every member holds its own data, state and activations in the stack, padded to
    the widest. `field`: the option that sized the ensemble."""
    if members < 2:
        return
    device, dtype = resolve_device(cfgs[0].run.device), dtype_of(cfgs[0].run.dtype)
    needs = [estimate(c, task, task.spec, dtype) for c in cfgs for task in (build_task(c.task),)]
    widest = max(needs, key=lambda n: n.total)
    need, have = members * widest.total, available_bytes(device)
    overflow = next((n.overflow for n in needs if n.overflow), "")
    if overflow and need <= have:
        raise ConfigError(overflow, OVERFLOW)
    if need > have:
        raise ConfigError(
            field,
            f"an ensemble of {members} members needs at least {need / GiB:.3g} GiB ({widest.total / GiB:.3g} GiB each: "
            f"{widest.parts()}); {device.type} has {have / GiB:.3g} GiB free; allow fewer members",
        )
