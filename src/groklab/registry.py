"""Name -> implementation tables, so adding a task, model or measure is one module plus one decorator."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from groklab.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named table of implementations of one kind (tasks, models, measures).

    Lookups of unknown names raise a ConfigError that lists the known names, so
    a typo on the command line gets a one-line answer.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(item: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = item
            return item

        return add

    def get(self, name: str, field: str = "name") -> T:
        try:
            return self._items[name]
        except KeyError:
            raise ConfigError(field, f"unknown {self.kind} {name!r}; choose one of {', '.join(self.names())}") from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
