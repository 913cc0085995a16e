"""Name -> implementation tables, so adding a task, model, measure is one module plus one registration.

Every registry has the same shape: `REGISTRY.register(name, config=..., summary=...)` on the implementation
(a task class, a model builder, a measure class), with the dataclass of the config keys it adds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from groklab.errors import ConfigError

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """A registered implementation, the dataclass of its config keys (None: it adds none), a one-line summary."""

    impl: T
    config: type[Any] | None
    summary: str


class Registry(Generic[T]):
    """A named table of implementations of one kind (tasks, models, measures).

    Lookups of unknown names raise a ConfigError that lists the known names, so
    a typo on the command line gets a one-line answer.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, Entry[T]] = {}

    def register(self, name: str, config: type[Any] | None = None, summary: str = "") -> Callable[[T], T]:
        def add(item: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = Entry(item, config, summary)
            return item

        return add

    def entry(self, name: str, field: str = "name") -> Entry[T]:
        try:
            return self._items[name]
        except KeyError:
            raise ConfigError(field, f"unknown {self.kind} {name!r}; choose one of {', '.join(self.names())}") from None

    def get(self, name: str, field: str = "name") -> T:
        """The implementation registered as `name`; `field` names the config key for the error message."""
        return self.entry(name, field).impl

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
