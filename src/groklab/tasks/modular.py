"""Binary operations modulo a prime p: the canonical grokking task (Power et al. 2022).

Each example is the token sequence [a, b, =] (format `compact`) or Power et al.'s
equation `<eos> a ∘ b =` (format `power`, as in their and Davies et al.'s code),
with tokens 0..p-1 for numbers, p for "=", then `<eos>` and the operator; the
label is a∘b mod p, read at the last position. Format `onehot` gives a vector model the two operands
as concatenated one-hot vectors of length 2p instead (Prieto et al.'s MLP input). `b_offset` > 0 gives b the tokens
b_offset..b_offset+p-1 and "=" the token after them (Gu et al.'s str.py: 60), so
under a strip holdout tokens 0..b_offset-1 are never seen in training. `n_tokens` pads the vocabulary
and the output classes (the authors' code: 2,000 of each). Division is built as
Power et al. do: a / b = c where a = b·c mod p and b ≠ 0, so every pair has an
answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from groklab.errors import ConfigError
from groklab.schema import ExperimentConfig, TaskConfig
from groklab.tasks.base import Task, TaskData, TaskSpec
from groklab.tasks.registry import TASKS

Op = Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]


def _div(a: torch.Tensor, b: torch.Tensor, p: int) -> torch.Tensor:
    inv = torch.tensor([pow(int(x), -1, p) if x else 0 for x in range(p)], dtype=torch.long)
    return a * inv[b] % p


OPS: dict[str, Op] = {
    "add": lambda a, b, p: (a + b) % p,
    "sub": lambda a, b, p: (a - b) % p,
    "mul": lambda a, b, p: a * b % p,
    "div": _div,
    "x2y2": lambda a, b, p: (a * a + b * b) % p,
    "x2xyy2": lambda a, b, p: (a * a + a * b + b * b) % p,
    "x3xy": lambda a, b, p: (a * a % p * a + a * b) % p,
    "x3xyy3": lambda a, b, p: (a * a % p * a + a * b + b * b % p * b) % p,
    "x3y3": lambda a, b, p: (a * a % p * a + b * b % p * b) % p,
    "x2xyy2x": lambda a, b, p: (a * a + a * b + b * b + a) % p,
    "x3xy2y": lambda a, b, p: (a * a % p * a + a * (b * b % p) + b) % p,
    "divsub": lambda a, b, p: torch.where(b % 2 == 1, _div(a, b, p), (a - b) % p),
}


FORMATS = ("compact", "power", "infix", "onehot")
POWER_OPS = ("add", "sub", "mul", "div", "divsub", "x2y2", "x2xyy2", "x2xyy2x", "x3xy", "x3xy2y")  # Power et al.'s list (S5: task s5)


def is_prime(n: int) -> bool:
    """Miller-Rabin with the first twelve primes as bases: exact for every n < 3.3e24, in microseconds
    (trial division hangs on a 19-digit p)."""
    if n < 2:
        return False
    bases = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37)
    if n in bases:
        return True
    if any(n % b == 0 for b in bases):
        return False
    d, r = n - 1, 0
    while d % 2 == 0:
        d, r = d // 2, r + 1
    for a in bases:
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


@dataclass
class ModularConfig(TaskConfig):
    """a∘b mod p. `split`: `random`, `square:k` (a, b <= k held out) or `strip:t` (a <= t held out).
    `format`: compact ([a, b, =]), power (<eos> a ∘ b =), infix (a ∘ b =, Lee et al.'s main.py) or onehot (the
    vector one_hot(a) ‖ one_hot(b)); `nonzero_b`: b runs over 1..p-1 only (Lee et al.'s data; division always does);
    `n_tokens`: vocabulary and classes padded to this, 0 = unpadded.
    `b_offset`: b's tokens start at this id (compact format); 0 = one token table shared by a and b."""

    name: str = "modular"
    p: int = 97
    op: str = "add"
    train_frac: float = 0.3
    split: str = "random"
    format: str = "compact"
    n_tokens: int = 0
    b_offset: int = 0
    nonzero_b: bool = False

    @property
    def vocab_needed(self) -> int:
        """Numbers (b's shifted by b_offset), "=", then <eos> and the operator (power) or the operator (infix)."""
        return self.p + self.b_offset + {"power": 3, "infix": 2}.get(self.format, 1)

    @property
    def n_pairs(self) -> int:
        return self.p * (self.p - 1) if self.op == "div" or self.nonzero_b else self.p * self.p

    def validate(self) -> None:
        if self.p < 3 or not is_prime(self.p):
            raise ConfigError("task.p", f"must be a prime >= 3, got {self.p}")
        if self.op not in OPS:
            raise ConfigError("task.op", f"unknown operation {self.op!r}; choose one of {', '.join(OPS)}")
        if self.format not in FORMATS:
            raise ConfigError("task.format", f"unknown format {self.format!r}; choose one of {', '.join(FORMATS)}")
        if self.format == "power" and self.op not in POWER_OPS:
            ops = ", ".join(POWER_OPS)
            raise ConfigError("task.op", f"{self.op} is not in Power et al.'s task list (task.format=power); choose one of {ops}")
        if self.b_offset < 0:
            raise ConfigError("task.b_offset", f"must be >= 0 (0: a and b share tokens 0..p-1), got {self.b_offset}")
        if self.b_offset and self.format != "compact":
            raise ConfigError("task.b_offset", f"applies to task.format=compact only (Gu et al.'s layout), got format {self.format}")
        if self.n_tokens and self.format == "onehot":
            raise ConfigError("task.n_tokens", "pads a token vocabulary; task.format=onehot has none (set it to 0)")
        if self.n_tokens and self.n_tokens < self.vocab_needed:
            need = f"{self.vocab_needed} (the {self.format} format's tokens at p={self.p})"
            raise ConfigError("task.n_tokens", f"must be 0 or >= {need}, got {self.n_tokens}")
        if not 0.0 < self.train_frac < 1.0:
            raise ConfigError("task.train_frac", f"must be in (0, 1), got {self.train_frac}")
        kind, _bound = parse_split(self.split, self.p)
        n_pairs = self.n_pairs
        n_train = int(self.train_frac * n_pairs)
        if kind == "random" and not 0 < n_train < n_pairs:
            raise ConfigError("task.train_frac", f"{self.train_frac} of {n_pairs} pairs leaves an empty train or test set")
        if kind != "random" and n_train < 1:
            raise ConfigError("task.train_frac", f"{self.train_frac} of {n_pairs} pairs gives no training pair")


def parse_split(split: str, p: int) -> tuple[str, int]:
    """`random` -> ("random", -1); `square:k` / `strip:t` -> (kind, bound), range-checked against p."""
    if split == "random":
        return "random", -1
    kind, _, arg = split.partition(":")
    if kind not in ("square", "strip") or not re.fullmatch(r"-?[0-9]+", arg):
        raise ConfigError("task.split", f"unknown split {split!r}; choose random, square:k or strip:t")
    bound = int(arg)
    if not 0 <= bound <= p - 2:
        letter = "k" if kind == "square" else "t"
        raise ConfigError("task.split", f"{split} is out of range; need 0 <= {letter} <= p-2 = {p - 2} to leave training pairs")
    return kind, bound


@TASKS.register(
    "modular",
    config=ModularConfig,
    summary="a∘b mod p on tokens [a, b, =], <eos> a ∘ b = or one-hot vectors (add sub mul div divsub and polynomials)",
)
class ModularArithmetic(Task):
    """Modular arithmetic over a prime: add, sub, mul, div and polynomials."""

    cfg: ModularConfig

    @classmethod
    def check_compatible(cls, cfg: ExperimentConfig) -> None:
        if getattr(cfg.task, "nonzero_b", False) and "fourier_circuit" in cfg.measures.enabled:
            raise ConfigError("task.nonzero_b", "leaves out the pairs (a, 0), which measure fourier_circuit needs; set it to false")
        if getattr(cfg.task, "format", "") == "onehot":
            if cfg.model.name != "deep_mlp":
                raise ConfigError("model.name", f"task.format=onehot gives vectors; choose deep_mlp, got {cfg.model.name!r}")
        elif cfg.model.name not in ("transformer", "mlp"):
            raise ConfigError("model.name", f"task 'modular' needs a token model; choose transformer or mlp, got {cfg.model.name!r}")

    def n_examples(self) -> int:
        return self.cfg.n_pairs

    @property
    def spec(self) -> TaskSpec:
        c = self.cfg
        if c.format == "onehot":
            return TaskSpec(n_classes=c.p, input_dim=2 * c.p, operation=c.op)
        seq_len, positions = {"power": (5, (1, 3)), "infix": (4, (0, 2))}.get(c.format, (3, (0, 1)))
        return TaskSpec(
            n_classes=c.n_tokens or c.p,
            vocab_size=c.n_tokens or c.vocab_needed,
            seq_len=seq_len,
            n_operand_tokens=c.p,
            operation=c.op,
            operand_positions=positions,
            operand_token_offsets=(0, c.b_offset),
        )

    def pairs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All operand pairs (a, b) in row-major order; for div, b runs over 1..p-1."""
        p = self.cfg.p
        b_values = torch.arange(1 if self.cfg.op == "div" or self.cfg.nonzero_b else 0, p)
        a, b = torch.meshgrid(torch.arange(p), b_values, indexing="ij")
        return a.reshape(-1), b.reshape(-1)

    def split_indices(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Indices of train and test pairs, drawn with task.seed only.

        Holdout splits put the held-out region in test, then draw
        int(train_frac · #pairs) training pairs from the rest (all of the rest
        if fewer remain), as in Gu et al.'s code; every other pair is test.
        """
        kind, bound = parse_split(self.cfg.split, self.cfg.p)
        if kind == "square":
            held = (a <= bound) & (b <= bound)
        elif kind == "strip":
            held = a <= bound
        else:
            held = torch.zeros_like(a, dtype=torch.bool)
        n_train = int(self.cfg.train_frac * a.numel())
        candidates = torch.nonzero(~held).squeeze(1)
        gen = torch.Generator().manual_seed(self.cfg.seed)
        order = candidates[torch.randperm(candidates.numel(), generator=gen)]
        train = order[:n_train].sort().values
        is_train = torch.zeros_like(held)
        is_train[train] = True
        test = torch.nonzero(~is_train).squeeze(1)
        return train, test

    def build(self) -> TaskData:
        p = self.cfg.p
        a, b = self.pairs()
        y = OPS[self.cfg.op](a, b, p)
        if self.cfg.format == "power":
            eq, eos, op = (torch.full_like(a, p + k) for k in range(3))
            x = torch.stack([eos, a, op, b, eq], dim=1)  # (N, 5): <eos> a ∘ b =
        elif self.cfg.format == "infix":
            eq, op = (torch.full_like(a, p + k) for k in range(2))
            x = torch.stack([a, op, b, eq], dim=1)  # (N, 4): a ∘ b =, Lee et al.'s tokens (= is p, ∘ is p + 1)
        elif self.cfg.format == "onehot":
            x = torch.cat([F.one_hot(a, p), F.one_hot(b, p)], dim=1).float()  # (N, 2p): one_hot(a) ‖ one_hot(b)
        else:
            off = self.cfg.b_offset
            x = torch.stack([a, b + off, torch.full_like(a, p + off)], dim=1)  # (N, 3): [a, b + b_offset, =]
        train, test = self.split_indices(a, b)
        return TaskData(x[train], y[train], x[test], y[test])
