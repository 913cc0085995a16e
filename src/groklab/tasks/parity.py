"""Sparse parity (Barak et al. 2022): n random bits, labelled by the parity of k of them.

Nothing here is modular or algebraic, yet an MLP sits at chance on the test set for a long plateau and then
jumps: the search for the k relevant bits among n is hidden progress (Barak et al.), and the task is reused
by Merrill et al. (2023) and Prieto et al. (2025). As in Prieto et al.'s code the inputs are distinct bit
vectors in {0, 1}, the label is the parity of the first k bits (which k does not matter to a network whose
init is symmetric in its inputs), and train and test are disjoint draws, seeded by task.seed alone.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import torch

from groklab.errors import ConfigError
from groklab.schema import ExperimentConfig, TaskConfig
from groklab.tasks.base import Task, TaskData, TaskSpec
from groklab.tasks.registry import TASKS


@dataclass
class ParityConfig(TaskConfig):
    """`n` bits per input, the label the parity of the first `k`; `n_train` and `n_test` distinct inputs."""

    name: str = "parity"
    n: int = 40
    k: int = 3
    n_train: int = 1000
    n_test: int = 1000

    def validate(self) -> None:
        if not 1 <= self.n <= 4096:
            raise ConfigError("task.n", f"must be in [1, 4096] bits, got {self.n}")
        if not 1 <= self.k <= self.n:
            raise ConfigError("task.k", f"must be in [1, task.n = {self.n}] (the parity of k of the n bits), got {self.k}")
        if self.n_train < 1 or self.n_test < 1:
            raise ConfigError("task.n_train" if self.n_train < 1 else "task.n_test", "must be >= 1")
        if self.n < 63 and self.n_train + self.n_test > 2**self.n:
            distinct = f"n_train + n_test = {self.n_train + self.n_test} exceeds the 2^{self.n} = {2**self.n} distinct inputs"
            raise ConfigError("task.n_train", distinct)
        if self.n_train + self.n_test > 10**6:
            raise ConfigError("task.n_train", f"n_train + n_test must be <= 10^6, got {self.n_train + self.n_test}")


def distinct_bit_vectors(n_bits: int, count: int, seed: int) -> torch.Tensor:
    """`count` distinct vectors of `n_bits` uniform random bits, (count, n_bits) in {0, 1}, in draw order."""
    rng = random.Random(seed)
    seen: dict[int, None] = {}
    while len(seen) < count:
        seen.setdefault(rng.getrandbits(n_bits), None)
    n_bytes = (n_bits + 7) // 8
    raw = np.frombuffer(b"".join(w.to_bytes(n_bytes, "little") for w in seen), dtype=np.uint8).reshape(count, n_bytes)
    return torch.from_numpy(np.unpackbits(raw, axis=1, bitorder="little")[:, :n_bits].astype(np.float32))  # bit i of word w


@TASKS.register("parity", config=ParityConfig, summary="sparse parity: n random bits, the label the parity of the first k")
class SparseParity(Task):
    """Distinct random bit vectors, labelled by the parity of their first k bits."""

    cfg: ParityConfig

    @classmethod
    def check_compatible(cls, cfg: ExperimentConfig) -> None:
        if cfg.model.name != "deep_mlp":
            raise ConfigError("model.name", f"task 'parity' needs a vector model; choose deep_mlp, got {cfg.model.name!r}")

    def n_examples(self) -> int:
        return self.cfg.n_train + self.cfg.n_test

    @property
    def spec(self) -> TaskSpec:
        return TaskSpec(n_classes=2, input_dim=self.cfg.n)

    def build(self) -> TaskData:
        c = self.cfg
        x = distinct_bit_vectors(c.n, c.n_train + c.n_test, c.seed)  # (N, n)
        y = (x[:, : c.k].sum(1) % 2).long()  # (N,)
        return TaskData(x[: c.n_train], y[: c.n_train], x[c.n_train :], y[c.n_train :])
