"""Tasks: datasets that grok. Each module registers one task class in TASKS."""

from groklab.tasks import mnist, modular, parity, permutations, polygons  # noqa: F401  (register every task)
from groklab.tasks.base import Task, TaskData, TaskSpec
from groklab.tasks.registry import TASKS


def build_task(cfg) -> Task:
    """The registered task object for a task config."""
    return TASKS.get(cfg.name, "task.name")(cfg)


__all__ = ["TASKS", "Task", "TaskData", "TaskSpec", "build_task"]
