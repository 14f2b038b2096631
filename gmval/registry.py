"""Name-keyed registries of components (encoders, distances, quality models).

Components are chosen by name, as in open_clip's ``list_models()`` or pyiqa's
``create_metric(name)``; factories are registered lazily so that importing gmval
never imports an optional heavy dependency.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """A mapping from names to factories that build components of one kind.

    Args:
        kind: What the registry holds, used in error messages ("encoder", ...).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}
        self._docs: dict[str, str] = {}

    def register(self, name: str, doc: str = "") -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator that registers ``factory`` under ``name``."""

        def wrap(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._factories:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._factories[name] = factory
            summary = (factory.__doc__ or "").strip().splitlines()
            self._docs[name] = doc or (summary[0] if summary else "")
            return factory

        return wrap

    def names(self) -> list[str]:
        """All registered names, sorted."""
        return sorted(self._factories)

    def describe(self) -> dict[str, str]:
        """Name -> one-line description."""
        return {name: self._docs[name] for name in self.names()}

    def create(self, name: str, **kwargs: object) -> T:
        """Build the component registered as ``name`` with ``kwargs``.

        Raises:
            KeyError: if ``name`` is unknown; the message lists the known names.
        """
        try:
            factory = self._factories[name]
        except KeyError:
            raise KeyError(f"unknown {self.kind} {name!r}; available: {', '.join(self.names())}") from None
        return factory(**kwargs)
