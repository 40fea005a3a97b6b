"""A small generic plugin registry (one per plugin kind), after timm's ``_registry.py``.

A plugin is one module plus one ``@REGISTRY.register("name")`` line; callers only use
:meth:`Registry.create` and :meth:`Registry.names`, never an if/elif chain.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from fakescope.errors import ConfigError

__all__ = ["DECLARED_ROLES", "Registry"]

T = TypeVar("T")

DECLARED_ROLES = ("baseline", "embedder")
"""Roles a registration may declare: ``baseline`` (kept to compare against, never a default),
``embedder`` (shipped because another model reads its embedding: the catalogue names which).
The catalogue derives the others (default, member or float twin of the default, alternative).
Earlier generations are not kept in the package (CHANGELOG.md says how to get them back)."""


class Registry(Generic[T]):
    """Maps names to factories that build objects of one kind."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}
        self._twins: dict[str, str] = {}
        self._roles: dict[str, str] = {}

    def register(
        self, name: str, *, float_twin: str | None = None, role: str | None = None
    ) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator registering ``factory`` under ``name`` (names are unique). An int8
        weight names its ``float_twin``: the same network in float, on the same calibrated
        scale, which the family's factory builds instead where the int8 network is not exact
        (:mod:`fakescope._cpu`). ``role`` is one of :data:`DECLARED_ROLES` or None."""
        if role is not None and role not in DECLARED_ROLES:
            raise ValueError(f"role must be one of {DECLARED_ROLES}, got {role!r}")

        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._factories:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._factories[name] = factory
            if float_twin is not None:
                self._twins[name] = float_twin
            if role is not None:
                self._roles[name] = role
            return factory

        return decorator

    def declared_role(self, name: str) -> str | None:
        """The role ``name`` was registered with (None when it declared none)."""
        return self._roles.get(name)

    def float_twin(self, name: str) -> str | None:
        """The float twin ``name`` was registered with (None for float weights)."""
        return self._twins.get(name)

    def resolve(self, name: str) -> tuple[str, str | None]:
        """The name to build for ``name`` on this machine and why it is another one: its
        float twin where the int8 network is not exact or ``FAKESCOPE_INT8=never``
        (``(twin, reason)``), else ``(name, None)``. An invalid ``FAKESCOPE_INT8`` raises
        :class:`ConfigError`."""
        from fakescope._cpu import int8_reason

        twin = self._twins.get(name)
        reason = int8_reason(name, twin)
        return (name, None) if twin is None or reason is None else (twin, reason)

    def create(self, name: str, **kwargs: Any) -> T:
        """Build the plugin registered as ``name``; unknown names raise :class:`ConfigError`."""
        try:
            factory = self._factories[name]
        except KeyError:
            known = ", ".join(sorted(self._factories)) or "none"
            raise ConfigError(f"unknown {self.kind} {name!r} (known: {known})") from None
        return factory(**kwargs)

    def describe(self, name: str) -> str:
        """The first sentence-paragraph of ``name``'s factory docstring, on one line ("" when
        it has none)."""
        if name not in self._factories:
            raise ConfigError(f"unknown {self.kind} {name!r}")
        doc = self._factories[name].__doc__ or ""
        return " ".join(doc.strip().split("\n\n")[0].split())

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._factories)

    def __contains__(self, name: object) -> bool:
        return name in self._factories
