"""What the benchmark scripts share: device syncs, the machine's matmul throughput, the cost of a training step."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from groklab.schema import ExperimentConfig
from groklab.training.lone import LoneBackend
from groklab.training.setup import prepare


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


@dataclass
class StepCost:
    """A training step timed in rounds, each right after a burst of square matmuls: on a shared host whose
    speed drifts by 2x within minutes, the step's share of the matmul rate measured beside it is stable
    where the step time and a peak measured minutes apart are not."""

    flops: float  # per step, counted by FlopCounterMode (matmuls, forward and backward)
    batch: int
    step_s: list[float]  # median seconds per step, one per round
    peak: list[float]  # square-matmul FLOP/s measured just before each round

    @property
    def seconds(self) -> float:
        return statistics.median(self.step_s)

    @property
    def fractions(self) -> list[float]:
        """Per round: achieved FLOP/s over the matmul rate of the same moment."""
        return sorted(self.flops / s / p for s, p in zip(self.step_s, self.peak, strict=True))

    @property
    def fraction(self) -> float:
        return statistics.median(self.fractions)


def best_square(device: torch.device, dtype: torch.dtype = torch.float32, sizes: tuple[int, ...] = (1024, 2048, 4096)) -> tuple[int, float]:
    """(the square size at which `dtype` matmuls run fastest here, their FLOP/s there): the size the paired
    rounds measure the peak at, and the machine's throughput to print."""
    rates = {n: matmul_throughput(device, dtype, (n,)) for n in sizes}
    best = max(rates, key=rates.__getitem__)
    return best, rates[best]


def matmul_burst(n: int, device: torch.device, dtype: torch.dtype, seconds: float = 0.1) -> float:
    """FLOP/s of (n, n) @ (n, n) matmuls over about `seconds`, operands made once and reused."""
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    sync(device)
    reps, t = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - t) < seconds or reps < 2:
        a @ b
        sync(device)
        reps += 1
    return 2 * n**3 * reps / elapsed


def step_cost(cfg: ExperimentConfig, device: torch.device, reps: int, rounds: int = 24, peak_size: int = 2048) -> StepCost:
    """The real trainer's step on a config's model, timed in `rounds` rounds of `reps` steps, each round
    after a matmul burst at `peak_size` in the config's dtype (see StepCost for why)."""
    prep = prepare(cfg)
    trainer = LoneBackend(prep)

    def one_step() -> None:
        trainer.train_step(record=False)
        trainer.apply_update()

    with FlopCounterMode(display=False) as counter:
        one_step()
    step_s, peak = [], []
    for _ in range(rounds):
        peak.append(matmul_burst(peak_size, device, prep.dtype))
        for _ in range(2):  # the burst evicted the model from cache: a run's steps follow steps, not matmuls
            one_step()
        sync(device)
        times = []
        for _ in range(reps):
            t = time.perf_counter()
            one_step()
            sync(device)
            times.append(time.perf_counter() - t)
        step_s.append(statistics.median(times))
    return StepCost(counter.get_total_flops(), trainer.batch, step_s, peak)
