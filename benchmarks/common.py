"""What the benchmark scripts share: device syncs, the machine's matmul throughput, the cost of a training step."""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from groklab.config.schema import ExperimentConfig
from groklab.store import Store
from groklab.training.setup import prepare
from groklab.training.trainer import Trainer


def sync(device: torch.device | str) -> None:
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(step: Callable[[], object], reps: int, device: torch.device | str, warmup: int = 3) -> float:
    """Seconds per call of `step`, after `warmup` calls, with the device synchronized around the timing."""
    for _ in range(warmup):
        step()
    sync(device)
    t = time.perf_counter()
    for _ in range(reps):
        step()
    sync(device)
    return (time.perf_counter() - t) / reps


def matmul_throughput(device: torch.device, dtype: torch.dtype = torch.float32, sizes: tuple[int, ...] = (1024, 2048, 4096)) -> float:
    """Best FLOP/s of square matmuls in `dtype` (TF32 off: the honest float32 rate)."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
    best = 0.0
    for n in sizes:
        a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
        for _ in range(3):
            a @ b
        sync(device)
        reps = max(3, int(2e10 / (2 * n**3)))
        t = time.perf_counter()
        for _ in range(reps):
            a @ b
        sync(device)
        best = max(best, 2 * n**3 * reps / (time.perf_counter() - t))
    return best


def step_cost(cfg: ExperimentConfig, device: torch.device, reps: int) -> tuple[float, float, int]:
    """(median seconds per training step, FLOPs per step, batch size) of the real trainer on a config's model.

    FLOPs are counted by torch's FlopCounterMode (matmuls, forward and backward)."""
    with tempfile.TemporaryDirectory() as tmp, Store(tmp) as store:
        trainer = Trainer(prepare(cfg), store, "bench")

        def one_step() -> None:
            trainer.train_step(record=False)
            trainer.apply_update()

        with FlopCounterMode(display=False) as counter:
            one_step()
        for _ in range(5):
            one_step()
        sync(device)
        times = []
        for _ in range(reps):
            t = time.perf_counter()
            one_step()
            sync(device)
            times.append(time.perf_counter() - t)
        return statistics.median(times), counter.get_total_flops(), trainer.batch
