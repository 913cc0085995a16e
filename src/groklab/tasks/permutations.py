"""The permutation group S5 (Power et al. 2022): the non-abelian tasks of their list.

The 120 permutations of (0, 1, 2, 3, 4) are the tokens 0..119, in lexicographic order (itertools'), then
"=" (and `<eos>` and the operator in the power format). Three operations, as in their data.py:
  compose  a ∘ b : i -> b[a[i]]        (their `s5`: c = b[a] on arrays)
  conj     a b a⁻¹ : i -> a⁻¹[b[a[i]]]  (their `s5conj`: sympy's a*b*~a, which applies a first)
  aba      a b a : i -> a[b[a[i]]]      (their `s5aba`: sympy's a*b*a)
Every ordered pair (a, b) is an example (14,400); train_frac of them, drawn with task.seed, are the
training set.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch

from groklab.errors import ConfigError
from groklab.schema import ExperimentConfig, TaskConfig
from groklab.tasks.base import Task, TaskData, TaskSpec
from groklab.tasks.registry import TASKS

N_ELEMENTS = 120
S5_OPS = ("compose", "conj", "aba")
FORMATS = ("compact", "power")


def s5_elements() -> torch.Tensor:
    """(120, 5): the permutations of 0..4 as arrays p (p[i] = where i goes), in lexicographic order."""
    return torch.tensor(list(itertools.permutations(range(5))), dtype=torch.long)


def s5_table(op: str) -> torch.Tensor:
    """(120, 120) table of element ids: table[a, b] = a ∘ b for the operation `op`."""
    perms = s5_elements()
    index = {tuple(p): i for i, p in enumerate(perms.tolist())}
    inverse = torch.argsort(perms, dim=1)  # inverse[a][a[i]] = i
    a, b = perms.unsqueeze(1).expand(-1, N_ELEMENTS, -1), perms.unsqueeze(0).expand(N_ELEMENTS, -1, -1)  # (120, 120, 5)
    ba = torch.gather(b, 2, a)  # i -> b[a[i]]
    if op == "compose":
        out = ba
    elif op == "conj":
        out = torch.gather(inverse.unsqueeze(1).expand(-1, N_ELEMENTS, -1), 2, ba)  # a⁻¹[b[a[i]]]
    elif op == "aba":
        out = torch.gather(a, 2, ba)  # a[b[a[i]]]
    else:
        raise ValueError(f"unknown S5 operation {op!r}")
    return torch.tensor([[index[tuple(row)] for row in plane] for plane in out.tolist()], dtype=torch.long)


@dataclass
class PermutationsConfig(TaskConfig):
    """a∘b in S5. `op`: compose, conj (a b a⁻¹) or aba; `format`: compact ([a, b, =]) or power (<eos> a ∘ b =)."""

    name: str = "s5"
    op: str = "compose"
    train_frac: float = 0.5
    format: str = "compact"

    def validate(self) -> None:
        if self.op not in S5_OPS:
            raise ConfigError("task.op", f"unknown S5 operation {self.op!r}; choose one of {', '.join(S5_OPS)}")
        if self.format not in FORMATS:
            raise ConfigError("task.format", f"unknown format {self.format!r}; choose one of {', '.join(FORMATS)}")
        n_train = int(self.train_frac * N_ELEMENTS**2)
        if not 0.0 < self.train_frac < 1.0 or not 0 < n_train < N_ELEMENTS**2:
            raise ConfigError("task.train_frac", f"must be in (0, 1) and leave train and test pairs, got {self.train_frac}")


@TASKS.register("s5", config=PermutationsConfig, summary="the permutation group S5: a ∘ b, a b a⁻¹ or a b a on 120 element tokens")
class Permutations(Task):
    """Power et al.'s S5 tasks."""

    cfg: PermutationsConfig

    def n_examples(self) -> int:
        return N_ELEMENTS**2

    @classmethod
    def check_compatible(cls, cfg: ExperimentConfig) -> None:
        if cfg.model.name not in ("transformer", "mlp"):
            raise ConfigError("model.name", f"task 's5' needs a token model; choose transformer or mlp, got {cfg.model.name!r}")

    @property
    def spec(self) -> TaskSpec:
        power = self.cfg.format == "power"
        return TaskSpec(
            n_classes=N_ELEMENTS,
            vocab_size=N_ELEMENTS + (3 if power else 1),
            seq_len=5 if power else 3,
            operation=f"s5_{self.cfg.op}",
            operand_positions=(1, 3) if power else (0, 1),
        )

    def build(self) -> TaskData:
        table = s5_table(self.cfg.op)
        a, b = (t.reshape(-1) for t in torch.meshgrid(torch.arange(N_ELEMENTS), torch.arange(N_ELEMENTS), indexing="ij"))
        y = table[a, b]
        if self.cfg.format == "power":
            eq, eos, op = (torch.full_like(a, N_ELEMENTS + k) for k in range(3))
            x = torch.stack([eos, a, op, b, eq], dim=1)  # (N, 5): <eos> a ∘ b =
        else:
            x = torch.stack([a, b, torch.full_like(a, N_ELEMENTS)], dim=1)  # (N, 3): [a, b, =]
        gen = torch.Generator().manual_seed(self.cfg.seed)
        order = torch.randperm(len(y), generator=gen)
        n_train = int(self.cfg.train_frac * len(y))
        train, test = order[:n_train].sort().values, order[n_train:].sort().values
        return TaskData(x[train], y[train], x[test], y[test])
