"""A name -> builder registry, filled by a decorator (the timm pattern)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from vaelab.errors import VaelabError

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to objects; ``get`` raises a one-line VaelabError listing the known names."""

    def __init__(self, kind: str, discover: Callable[[], None] | None = None,
                 hint: str = "") -> None:
        self.kind = kind
        self.hint = hint  # said after the known names when a name is unknown
        self._entries: dict[str, T] = {}
        # Called once, before the first lookup or listing: fills in entries found elsewhere
        # (installed plugins), so that finding them costs nothing until a name is needed.
        self._discover = discover

    def _discovered(self) -> dict[str, T]:
        discover, self._discover = self._discover, None
        if discover is not None:
            discover()
        return self._entries

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = obj
            return obj

        return decorator

    def add(self, name: str, obj: T) -> T:
        return self.register(name)(obj)

    def get(self, name: str) -> T:
        try:
            return self._discovered()[name]
        except KeyError:
            known = ", ".join(sorted(self._entries))
            raise VaelabError(f"unknown {self.kind} {name!r}; choose one of: {known}"
                              f"{self.hint}") from None

    def entries(self, discover: bool = True) -> dict[str, T]:
        """A copy of every entry; ``discover=False`` leaves entries not yet found alone."""
        return dict(self._discovered() if discover else self._entries)

    def discard(self, name: str) -> None:
        """Forget ``name`` (a plugin that failed halfway, or one loaded again)."""
        self._entries.pop(name, None)

    def names(self) -> list[str]:
        return sorted(self._discovered())

    def __contains__(self, name: object) -> bool:
        return name in self._discovered()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
