"""The task registry; tasks register themselves on import of groklab.tasks."""

from groklab.registry import Registry
from groklab.tasks.base import Task

TASKS: Registry[type[Task]] = Registry("task")
