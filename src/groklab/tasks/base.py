"""What a task hands the trainer: tensors, and the shape of inputs and outputs a model must fit."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from groklab.schema import ExperimentConfig, TaskConfig


@dataclass(frozen=True)
class TaskSpec:
    """Input/output shape of a task, all a model builder needs to know.

    Sequence tasks give `vocab_size` and `seq_len` (inputs are token ids of
    shape (N, seq_len)); vector tasks give `input_dim` (inputs (N, input_dim)).
    """

    n_classes: int
    vocab_size: int = 0
    seq_len: int = 0
    input_dim: int = 0
    n_operand_tokens: int = 0  # the first tokens of the vocabulary that stand for numbers (MED uses them)
    image_shape: tuple[int, ...] = ()  # (C, H, W) for image tasks (inputs (N, C, H, W))
    operation: str = ""  # modular arithmetic: task.op ("add", "div", ...); "" for tasks without one
    operand_positions: tuple[int, ...] = (0, 1)  # modular arithmetic: where a and b stand in an input sequence
    operand_token_offsets: tuple[int, ...] = (0, 0)  # modular arithmetic: the token id of the number 0 for a and for b


@dataclass
class TaskData:
    """A task's train and test sets as tensors, moved to the training device once."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor

    def to(self, device: torch.device | str) -> TaskData:
        return TaskData(*(t.to(device) for t in (self.train_x, self.train_y, self.test_x, self.test_y)))


class Task:
    """Base class of registered tasks: a config class, a spec, and the data."""

    input_itemsize: int | None = None  # bytes per input element as `build` makes them; None: int64 tokens, float32 vectors

    def __init__(self, cfg: TaskConfig) -> None:
        self.cfg = cfg

    @classmethod
    def check_compatible(cls, cfg: ExperimentConfig) -> None:
        """Cross-section checks (which models this task can feed); raise ConfigError."""

    @property
    def spec(self) -> TaskSpec:
        raise NotImplementedError

    def build(self) -> TaskData:
        """Generate or load the data on the CPU; deterministic in cfg (task.seed included)."""
        raise NotImplementedError

    def n_examples(self) -> int | None:
        """Train plus test examples `build` will make, known before it runs (the memory check's data size);
        None if it cannot be told."""
        return None
