"""MNIST subsets: the small-data image task on which deep MLPs grok (Fan, Pascanu, Jaggi 2024)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from groklab.data import mnist
from groklab.errors import ConfigError
from groklab.schema import ExperimentConfig, TaskConfig
from groklab.tasks.base import Task, TaskData, TaskSpec
from groklab.tasks.registry import TASKS

SUBSETS = ("first", "random", "balanced")
MEAN, STD = 0.1307, 0.3081  # pixel mean and std over the 60,000 training images (the usual constants)


@dataclass
class MnistConfig(TaskConfig):
    """`n_train` images drawn by `subset`: the first N (the authors' code), a seeded random draw, or a
    seeded class-balanced draw; tested on all 10,000 test images, or a seeded subset of `n_test`."""

    name: str = "mnist"
    data_dir: str = ""  # the four IDX files; empty = $GROKLAB_DATA, else ~/.cache/groklab/mnist
    n_train: int = 1000
    subset: str = "first"
    n_test: int = 0  # 0 = all 10,000
    normalize: bool = False  # Fan et al. use raw pixels in [0, 1]; True standardizes them

    def validate(self) -> None:
        if not 1 <= self.n_train <= 60000:
            raise ConfigError("task.n_train", f"must be in [1, 60000] (the MNIST training set), got {self.n_train}")
        if self.subset not in SUBSETS:
            raise ConfigError("task.subset", f"unknown subset {self.subset!r}; choose one of {', '.join(SUBSETS)}")
        if not 0 <= self.n_test <= 10000:
            raise ConfigError("task.n_test", f"must be in [0, 10000] (0 = the whole test set), got {self.n_test}")


def draw(labels: torch.Tensor, n: int, mode: str, seed: int) -> torch.Tensor:
    """Sorted indices of `n` items: the first n, a random draw, or a class-balanced draw (n // classes
    of each class, the remainder to the first classes), seeded by `seed` alone."""
    if mode == "first":
        return torch.arange(n)
    gen = torch.Generator().manual_seed(seed)
    if mode == "random":
        return torch.randperm(len(labels), generator=gen)[:n].sort().values
    classes = int(labels.max()) + 1
    picked = []
    for c in range(classes):
        members = torch.nonzero(labels == c).squeeze(1)
        want = n // classes + (1 if c < n % classes else 0)
        if want > len(members):
            raise ConfigError("task.n_train", f"a balanced draw of {n} needs {want} images of class {c}, which has {len(members)}")
        picked.append(members[torch.randperm(len(members), generator=gen)[:want]])
    return torch.cat(picked).sort().values


@TASKS.register(
    "mnist",
    config=MnistConfig,
    summary="MNIST subsets of N training images (first N, random or class-balanced), flattened pixels",
)
class Mnist(Task):
    """MNIST digits, flattened to 784 pixels in [0, 1]."""

    cfg: MnistConfig

    @classmethod
    def check_compatible(cls, cfg: ExperimentConfig) -> None:
        if cfg.model.name != "deep_mlp":
            raise ConfigError("model.name", f"task 'mnist' needs a vector model; choose deep_mlp, got {cfg.model.name!r}")

    def n_examples(self) -> int:
        return self.cfg.n_train + (self.cfg.n_test or 10000)

    @property
    def spec(self) -> TaskSpec:
        return TaskSpec(n_classes=10, input_dim=28 * 28)

    def build(self) -> TaskData:
        files = mnist.load(mnist.resolve_dir(self.cfg.data_dir))
        train = draw(files["train_labels"], self.cfg.n_train, self.cfg.subset, self.cfg.seed)
        test = torch.arange(10000) if self.cfg.n_test == 0 else draw(files["test_labels"], self.cfg.n_test, "random", self.cfg.seed + 1)
        x_train, x_test = (self._pixels(files[k][idx]) for k, idx in (("train_images", train), ("test_images", test)))
        return TaskData(x_train, files["train_labels"][train].long(), x_test, files["test_labels"][test].long())

    def _pixels(self, images: torch.Tensor) -> torch.Tensor:
        x = images.reshape(len(images), -1).float() / 255.0  # (N, 784) in [0, 1]
        return (x - MEAN) / STD if self.cfg.normalize else x
